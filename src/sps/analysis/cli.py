"""`sps passk | diversity | analyze | plot KIND | summary`: the analysis commands.

passk reads the grade shards (`sps grade`), diversity the sample shards with their grades;
analyze turns their small tables (and the training metrics) into every table of
results/analysis/{bench}; plot and summary read only those.

Every output is written under a temporary name in its directory and renamed when complete.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import pandas as pd

from sps.analysis import bench, ceiling, diversity, io, summary
from sps.config import parse_cfg_arg
from sps.io import write_parquet_atomic, write_text_atomic

SUMMARY_METRICS = ("step", "reward_mean", "distinct_ratio")
ENTROPY_METRICS = ("step", "entropy", "reward_mean")
SUMMARY_TABLES = (
    "passk",
    "coverage",
    "asymptote",
    "crossover",
    "diff",
    "checkpoints",
    "entropy_fit",
    "diversity",
    "unsolved",
    "grading",
    "sensitivity",
)
TABLE_PLOTS = {  # figure kind -> (analysis tables it reads, help)
    "passk": (("passk", "coverage"), "Pass@k vs k with 95%% bands and the union ceiling"),
    "sweep": (("passk",), "Pass@1 and Pass@n vs SPS period"),
    "diff": (("diff",), "Pass@k difference to GRPO (and base) with paired intervals"),
    "ceiling": (("coverage", "asymptote", "crossover", "passk"), "coverage, fitted U, union"),
    "diversity": (("diversity",), "distinct answers, correct completions, distinct-n"),
    "checkpoints": (("checkpoints",), "Pass@1 and Pass@large k vs training step"),
    "entropy": (("checkpoints", "entropy_fit"), "Pass@1 vs entropy with R = -a exp(H) + b"),
    "training": (("checkpoints",), "one method's Pass@k curves at each evaluated step"),
    "sensitivity": (("sensitivity",), "heatmap of SPS minus GRPO per grid cell (N x IRL)"),
}


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
    write_parquet_atomic(io.count_samples(args.grades, args.data, args.n), args.out)


def seed_key(key: str, what: str) -> tuple[str, int | None]:
    """(model, seed) of a MODEL or MODEL@SEED key; the seed is an integer (None if absent)."""
    model, sep, seed = key.partition("@")
    if model == ceiling.UNION:
        raise ValueError(f"{what}: {model!r} is reserved for the union of all models")
    if sep and not seed.isdigit():
        raise ValueError(f"{what}: {key!r}: the seed after @ must be a whole number")
    return model, int(seed) if sep else None


def seeded_pairs(
    pairs: list[tuple[str, Path]], what: str = "--passk"
) -> dict[str, dict[object, Path]]:
    """MODEL=PATH or MODEL@SEED=PATH pairs as model -> seed -> path (seed None if not given);
    a model with several seeds gets the mean over seeds and their spread in every table."""
    out: dict[str, dict[object, Path]] = {}
    for key, path in pairs:
        model, seed = seed_key(key, what)
        seeds = out.setdefault(model, {})
        if seed in seeds or (seeds and (seed is None or None in seeds)):
            raise ValueError(f"{what}: {key!r} given twice or with and without a seed")
        seeds[seed] = path
    return out


def read_seeded_columns(
    paths: dict[str, dict[object, Path]], columns: tuple[str, ...]
) -> dict[str, dict[object, pd.DataFrame]]:
    return {m: {s: io.read_columns(p, columns) for s, p in by_seed.items()}
            for m, by_seed in paths.items()}  # fmt: skip


def analysis_settings(cfg_text: str | None) -> tuple[bench.Settings, dict]:
    """The `analysis` section of --cfg (defaults filled) and the Settings it gives."""
    cfg = parse_cfg_arg(cfg_text or "{}")
    section = cfg.get("analysis") or parse_cfg_arg('{"analysis": {}}')["analysis"]
    keys = {f: section[f] for f in ("bootstrap", "seed", "level", "entropy_window")}
    irl = cfg.get("irl")  # the runs' IRL settings, for the sensitivity table's cells
    irl = {k: irl[k] for k in ("lr_scale", "steps", "tau", "demos")} if irl else None
    return bench.Settings(**keys, irl=irl), section


def cmd_diversity(args: argparse.Namespace) -> None:
    _, section = analysis_settings(args.cfg)
    samples = diversity.read_samples(args.samples, args.grades, args.data, args.n)
    write_parquet_atomic(diversity.problem_table(samples, section["ngram_unit"]), args.out)


def check_budgets(metric_paths: dict[str, str], allow_mismatch: bool) -> None:
    """Refuse (or, when allowed, warn about) trained runs whose budgets differ; each run's
    run.json sits beside its metrics.parquet."""
    from sps.train.parity import check_parity, read_budget

    budgets = {}
    for model, path in metric_paths.items():
        info = Path(path).with_name("run.json")
        if info.is_file():
            budgets[model] = read_budget(info)
    for line in check_parity(budgets, allow_mismatch):
        print(f"warning: {line}", file=sys.stderr)


def cmd_analyze(args: argparse.Namespace) -> None:
    settings, section = analysis_settings(args.cfg)
    tables: dict[str, dict[object, pd.DataFrame]] = {}
    for model, seeds in seeded_pairs(args.passk).items():
        for seed_key, path in seeds.items():
            for seed, table in io.read_seeded(path, seed_key).items():
                if seed in tables.setdefault(model, {}):
                    raise ValueError(f"--passk: seed {seed} of {model!r} given twice")
                tables[model][seed] = table
    metric_paths = seeded_pairs(args.metrics, "--metrics")
    flat = {f"{m}@{s}": p for m, by_seed in metric_paths.items() for s, p in by_seed.items()}
    check_budgets(flat, section["allow_budget_mismatch"])
    metrics = read_seeded_columns(metric_paths, ENTROPY_METRICS)
    per_problem = {
        m: {s: pd.read_parquet(p) for s, p in by_seed.items()}
        for m, by_seed in seeded_pairs(args.diversity, "--diversity").items()
    }
    out = Path(args.out_dir)
    found = bench.analyze(args.bench, tables, metrics, per_problem, args.final_step, settings)
    for name, frame in found.items():
        write_parquet_atomic(frame, out / f"{name}.parquet")


def cmd_plot(args: argparse.Namespace) -> None:
    # Imported here so that the non-plot commands never load matplotlib.
    from sps.plots import style

    spec = style.load_style(args.style)
    if args.kind == "dynamics":
        from sps.plots import dynamics

        paths = seeded_pairs(args.metrics, "--metrics")
        frames = read_seeded_columns(paths, dynamics.METRIC_COLUMNS)
        dynamics.plot_dynamics(frames, spec, args.out_prefix)
        return
    names = TABLE_PLOTS[args.kind][0]
    tables = {name: pd.read_parquet(Path(args.analysis_dir) / f"{name}.parquet") for name in names}
    if args.kind == "passk":
        from sps.plots import passk

        passk.plot_passk(tables["passk"], tables["coverage"], spec, args.out_prefix)
    elif args.kind == "sweep":
        from sps.plots import sweep

        sweep.plot_sweep(tables["passk"], spec, args.out_prefix)
    elif args.kind == "training":
        from sps.plots import training

        training.plot(tables, spec, args.out_prefix, args.method)
    else:
        module = importlib.import_module(f"sps.plots.{args.kind}")
        module.plot(tables, spec, args.out_prefix)


def metrics_for(
    bench: str, pairs: list[tuple[str, Path]], n_benches: int
) -> dict[str, dict[object, Path]]:
    """Metrics files of one bench as model -> seed -> path. A key is "bench:model[@seed]", or
    "model[@seed]" when its path names the bench as a directory
    (results/runs/{method}/{bench}/...) or there is only one bench."""
    mine = []
    for key, path in pairs:
        key_bench, _, model = key.rpartition(":")
        if key_bench == bench or (not key_bench and (bench in path.parts or n_benches == 1)):
            mine.append((model, path))
    try:
        return seeded_pairs(mine, "--metrics")
    except ValueError as exc:
        raise ValueError(f"{exc} (bench {bench!r})") from None


def cmd_summary(args: argparse.Namespace) -> None:
    _, section = analysis_settings(args.cfg)
    sections = ["# SPS results summary\n"]
    for directory in map(Path, args.analysis_dir):
        tables = {
            name: pd.read_parquet(directory / f"{name}.parquet")
            for name in SUMMARY_TABLES
            if (directory / f"{name}.parquet").exists() or name in ("passk", "coverage")
        }
        passk, cov = tables["passk"], tables["coverage"]
        bench = str(passk["bench"].iloc[0])
        paths = metrics_for(bench, args.metrics, len(args.analysis_dir))
        frames = read_seeded_columns(paths, SUMMARY_METRICS)
        table = summary.bench_table(passk, cov, frames, tables, section["summary_ks"])
        sections.append(summary.bench_section(bench, table, cov, tables))
        for name, frame in summary.csv_tables(table.assign(bench=bench), tables).items():
            csv = frame.to_csv(index=False, float_format="%.6g")
            write_text_atomic(csv, summary.summary_path_for(args.out, bench, name))
    write_text_atomic("\n".join(sections), args.out)


def cmd_grading(args: argparse.Namespace) -> None:
    from sps.analysis.grading import grading_table

    samples = shards_by_model(args.samples) if args.samples else None
    table = grading_table(args.bench, args.data_dir, shards_by_model(args.grades), args.n, samples)
    write_parquet_atomic(table, args.out)


def shards_by_model(pairs: list[tuple[str, Path]]) -> dict[str, list[str]]:
    """MODEL=SHARD pairs grouped by model, shards in the order given."""
    out: dict[str, list[str]] = {}
    for model, path in pairs:
        out.setdefault(model, []).append(str(path))
    return out


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
    data_help = "test problems parquet: every shard must hold exactly its problems"
    n_help = "samples per problem: sample_idx 0..n-1 across the shards (default: inferred)"
    p = subparsers.add_parser("passk", help="per-problem (n, c) table from grade shards")
    p.add_argument(
        "--grades", "--samples", nargs="+", required=True, help="one model's grade shards"
    )
    p.add_argument("--data", help=data_help)
    p.add_argument("--n", type=int, help=n_help)
    p.add_argument("--out", required=True, help="results/passk/{model}/{bench}.parquet")
    p.set_defaults(func=cmd_passk)

    p = subparsers.add_parser("diversity", help="per-problem diversity of one model's samples")
    p.add_argument("--samples", nargs="+", required=True, help="one model's sample shards")
    p.add_argument(
        "--grades",
        nargs="+",
        help="their grade shards, in the same order (default: the "
        "sample files carry pred and correct)",
    )
    p.add_argument("--data", help=data_help)
    p.add_argument("--n", type=int, help=n_help)
    p.add_argument("--cfg", help='JSON or @file: {"analysis": {"ngram_unit": "char"}}')
    p.add_argument("--out", required=True, help="results/diversity/{model}/{bench}.parquet")
    p.set_defaults(func=cmd_diversity)

    p = subparsers.add_parser("analyze", help="every analysis table of one bench")
    p.add_argument("--bench", required=True)
    p.add_argument(
        "--passk",
        nargs="+",
        type=pair,
        required=True,
        metavar="MODEL[@SEED]=PATH",
        help="(n, c) tables; snapshots are {method}-step{k}[@SEED]; a table with a seed column "
        "or several @SEED entries gives the model's mean over seeds",
    )
    p.add_argument(
        "--metrics", nargs="*", type=pair, default=[], metavar="METHOD[@SEED]=PATH",
        help="training metrics.parquet of each run (entropy near each snapshot, entropy fit)",
    )  # fmt: skip
    p.add_argument(
        "--diversity", nargs="*", type=pair, default=[], metavar="MODEL[@SEED]=PATH",
        help="per-problem diversity tables (sps diversity)",
    )  # fmt: skip
    p.add_argument("--final-step", type=int, help="training step of the final models (rl.steps)")
    p.add_argument(
        "--cfg", help='JSON or @file: {"analysis": {"bootstrap": 1000, ...}, "irl": {...}}; '
        "irl (optional) gives the settings of SPS runs whose id carries no override",
    )  # fmt: skip
    p.add_argument("--out-dir", required=True, help=f"writes {', '.join(bench.TABLES)} .parquet")
    p.set_defaults(func=cmd_analyze)

    plot = subparsers.add_parser("plot", help="figures from the cached tables")
    kinds = plot.add_subparsers(dest="kind", required=True)
    for kind, (names, text) in TABLE_PLOTS.items():
        p = _add_plot(kinds, kind, text)
        p.add_argument("--analysis-dir", required=True, help=f"reads {', '.join(names)} .parquet")
        if kind == "training":
            p.add_argument("--method", required=True, help="a trained method id, e.g. grpo")
    p = _add_plot(kinds, "dynamics", "reward, entropy, distinct ratio vs step")
    p.add_argument("--metrics", nargs="+", type=pair, required=True, metavar="METHOD[@SEED]=PATH")
    plot.set_defaults(func=cmd_plot)

    p = subparsers.add_parser("grading", help="problems loaded and grader health per model")
    p.add_argument("--bench", required=True)
    p.add_argument(
        "--data-dir",
        required=True,
        help="results/data/{bench}: tables (the grade shards must cover test.parquet), load.json",
    )
    p.add_argument("--grades", nargs="+", type=pair, required=True, metavar="MODEL=SHARD")
    p.add_argument(
        "--samples",
        nargs="+",
        type=pair,
        metavar="MODEL=SHARD",
        help="the same models' sample shards: the length-limit rate and the mean length",
    )
    p.add_argument("--n", type=int, help=n_help)
    p.add_argument("--out", required=True, help="results/analysis/{bench}/grading.parquet")
    p.set_defaults(func=cmd_grading)

    p = subparsers.add_parser("summary", help="results/summary.md and summary_{bench}.csv")
    p.add_argument("--analysis-dir", nargs="+", required=True)
    p.add_argument(
        "--metrics", nargs="*", type=pair, default=[], metavar="[BENCH:]METHOD[@SEED]=PATH"
    )
    p.add_argument("--cfg", help='JSON or @file: {"analysis": {"summary_ks": [1, 4, 16, 64]}}')
    p.add_argument("--out", required=True, help="summary.md; the CSVs are written beside it")
    p.set_defaults(func=cmd_summary)
