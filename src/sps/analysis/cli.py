"""`sps passk | analyze | plot {passk,dynamics,sweep} | summary`: the analysis commands.

Every output is written under a temporary name in its directory and renamed when complete.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from sps.analysis import ceiling, io, summary
from sps.analysis.passk import curve

SUMMARY_METRICS = ("step", "reward_mean", "distinct_ratio")


def pair(text: str) -> tuple[str, Path]:
    """argparse type for NAME=PATH."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def pairs_to_dict(pairs: list[tuple[str, Path]], what: str) -> dict[str, Path]:
    """Mapping from the pairs, refusing a name given twice or the reserved name "union"."""
    out: dict[str, Path] = {}
    for name, path in pairs:
        if name == ceiling.UNION:
            raise ValueError(f"{what}: {name!r} is reserved for the union of all models")
        if name in out:
            raise ValueError(f"{what}: {name!r} given twice")
        out[name] = path
    return out


def cmd_passk(args: argparse.Namespace) -> None:
    io.write_parquet(io.count_samples(args.samples), args.out)


def cmd_analyze(args: argparse.Namespace) -> None:
    tables = {m: io.read_table(p) for m, p in pairs_to_dict(args.passk, "--passk").items()}
    curves = [curve(t).assign(model=m, bench=args.bench) for m, t in tables.items()]
    passk = pd.concat(curves, ignore_index=True)
    first = ["model", "bench", "k", "pass_at_k"]
    passk = passk[first + [c for c in passk.columns if c not in first]]
    unsolved = pd.DataFrame({"problem_id": ceiling.unsolved(tables), "bench": args.bench})
    out = Path(args.out_dir)
    io.write_parquet(passk, out / "passk.parquet")
    io.write_parquet(ceiling.coverage_table(tables, args.bench), out / "coverage.parquet")
    io.write_parquet(unsolved, out / "unsolved.parquet")


def cmd_plot(args: argparse.Namespace) -> None:
    # Imported here so that the non-plot commands never load matplotlib.
    from sps.plots import dynamics, passk, style, sweep

    spec = style.load_style(args.style)
    if args.kind == "dynamics":
        paths = pairs_to_dict(args.metrics, "--metrics")
        frames = {m: io.read_columns(p, dynamics.METRIC_COLUMNS) for m, p in paths.items()}
        dynamics.plot_dynamics(frames, spec, args.out_prefix)
        return
    table = pd.read_parquet(Path(args.analysis_dir) / "passk.parquet")
    if args.kind == "passk":
        cov = pd.read_parquet(Path(args.analysis_dir) / "coverage.parquet")
        passk.plot_passk(table, cov, spec, args.out_prefix)
    else:
        sweep.plot_sweep(table, spec, args.out_prefix)


def metrics_for(bench: str, pairs: list[tuple[str, Path]], n_benches: int) -> dict[str, Path]:
    """Metrics files of one bench. A key is "bench:model", or "model" when its path names the
    bench as a directory (results/runs/{method}/{bench}/...) or there is only one bench."""
    out: dict[str, Path] = {}
    for key, path in pairs:
        key_bench, _, model = key.rpartition(":")
        if key_bench == bench or (not key_bench and (bench in path.parts or n_benches == 1)):
            if model in out:
                raise ValueError(f"--metrics: two files for {model!r} on {bench!r}")
            out[model] = path
    return out


def cmd_summary(args: argparse.Namespace) -> None:
    sections = ["# SPS results summary\n"]
    for directory in map(Path, args.analysis_dir):
        passk = pd.read_parquet(directory / "passk.parquet")
        cov = pd.read_parquet(directory / "coverage.parquet")
        bench = str(passk["bench"].iloc[0])
        paths = metrics_for(bench, args.metrics, len(args.analysis_dir))
        frames = {m: io.read_columns(p, SUMMARY_METRICS) for m, p in paths.items()}
        table = summary.bench_table(passk, cov, frames)
        sections.append(summary.bench_section(bench, table, cov, passk))
        csv = table.assign(bench=bench).to_csv(index=False, float_format="%.6g")
        io.write_text(csv, summary.summary_path_for(args.out, bench))
    io.write_text("\n".join(sections), args.out)


def _add_plot(
    sub: argparse._SubParsersAction, kind: str, help_text: str
) -> argparse.ArgumentParser:
    p = sub.add_parser(kind, help=help_text)
    p.add_argument(
        "--style", help='JSON or @file: {"formats":[...],"dpi":..,"width":..,"height":..}'
    )
    p.add_argument("--out-prefix", required=True, help="path without extension; adds .{fmt}")
    return p


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the passk, analyze, plot and summary subcommands to the `sps` parser."""
    p = subparsers.add_parser("passk", help="per-problem (n, c) table from sample shards")
    p.add_argument("--samples", nargs="+", required=True, help="sample shard parquet files")
    p.add_argument("--out", required=True, help="results/passk/{model}/{bench}.parquet")
    p.set_defaults(func=cmd_passk)

    p = subparsers.add_parser("analyze", help="Pass@k curves and coverage for one bench")
    p.add_argument("--bench", required=True)
    p.add_argument("--passk", nargs="+", type=pair, required=True, metavar="MODEL=PATH")
    p.add_argument("--out-dir", required=True, help="writes passk, coverage, unsolved .parquet")
    p.set_defaults(func=cmd_analyze)

    plot = subparsers.add_parser("plot", help="figures from the cached tables")
    kinds = plot.add_subparsers(dest="kind", required=True)
    for kind, text in (("passk", "Pass@k vs k"), ("sweep", "Pass@1 and Pass@n vs SPS period")):
        _add_plot(kinds, kind, text).add_argument("--analysis-dir", required=True)
    p = _add_plot(kinds, "dynamics", "reward, entropy, distinct ratio vs step")
    p.add_argument("--metrics", nargs="+", type=pair, required=True, metavar="MODEL=PATH")
    plot.set_defaults(func=cmd_plot)

    p = subparsers.add_parser("summary", help="results/summary.md and summary_{bench}.csv")
    p.add_argument("--analysis-dir", nargs="+", required=True)
    p.add_argument("--metrics", nargs="*", type=pair, default=[], metavar="[BENCH:]MODEL=PATH")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_summary)
