"""End to end through the `sps` parser: passk, diversity -> analyze -> plot (every kind) ->
summary."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sps.analysis.cli

MODELS = {"base": 0.15, "grpo": 0.45, "sps-p4": 0.35}  # per-sample success rate scale
SNAPSHOTS = {"grpo-step30": 0.3, "sps-p4-step30": 0.25}  # evaluation snapshots after step 30
TABLE_PLOTS = ("passk", "sweep", "diff", "ceiling", "diversity", "checkpoints", "entropy",
               "sensitivity")  # fmt: skip
N_PROBLEMS, N_SAMPLES, N_STEPS = 40, 32, 60
STYLE = '{"formats": ["png", "svg"], "dpi": 80, "width": 6.0, "height": 4.0}'


def run(*argv: str) -> None:
    """As src/sps/cli.py will: one parser, each area registers its subcommands."""
    parser = argparse.ArgumentParser(prog="sps")
    sub = parser.add_subparsers(dest="command", required=True)
    sps.analysis.cli.register(sub)
    args = parser.parse_args([str(a) for a in argv])
    args.func(args)


def write_samples(root: Path, model: str, rate: float, rng: np.random.Generator) -> list[Path]:
    """Two shards of per-sample rows; problem difficulty shared across models."""
    difficulty = np.linspace(0, 1, N_PROBLEMS) ** 2
    paths = []
    for shard, idx in enumerate((range(0, 16), range(16, N_SAMPLES))):
        rows = [
            {"problem_id": f"q{p:03d}", "sample_idx": i, "completion": f"x{i % 3}\n", "pred": "1",
             "correct": bool(rng.random() < rate * 2 * (1 - difficulty[p])), "n_tokens": 5,
             "logprob": -1.0, "finish_reason": "stop"}
            for p in range(N_PROBLEMS) for i in idx
        ]  # fmt: skip
        path = root / "samples" / model / "toy" / f"shard{shard}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(path)
        paths.append(path)
    return paths


def write_metrics(path: Path, model: str, rng: np.random.Generator) -> Path:
    step = np.arange(N_STEPS)
    phase = np.where((model == "sps-p4") & (step % 5 == 4), "irl", "rl")
    frame = pd.DataFrame(
        {"step": step, "phase": phase, "reward_mean": 0.2 + 0.4 * step / N_STEPS,
         "entropy": 1.5 * np.exp(-step / 30) + rng.random(N_STEPS) * 0.05,
         "distinct_ratio": 0.9 - 0.5 * step / N_STEPS, "frac_all_correct": 0.1,
         "frac_all_wrong": 0.2, "score_mean": -0.5,
         "irl_skipped": np.where(phase == "irl", 0, np.nan),
         "kl": np.nan, "grad_norm": 1.0, "loss": 0.1, "lr": 1e-5, "tokens_per_s": 100.0,
         "time_s": 1.0}
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return path


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1024, path


def test_pipeline(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    res = tmp_path / "results"
    tables, metrics, diversity = [], [], []
    for model, rate in {**MODELS, **SNAPSHOTS}.items():
        out = res / "passk" / model / "toy.parquet"
        shards = write_samples(res, model, rate, rng)
        run("passk", "--samples", *shards, "--out", out)
        tables.append(f"{model}={out}")
        if model in MODELS:
            div = res / "diversity" / model / "toy.parquet"
            run("diversity", "--samples", *shards, "--cfg", '{"analysis": {}}', "--out", div)
            diversity.append(f"{model}={div}")
        if model in MODELS and model != "base":
            path = write_metrics(
                res / "runs" / model / "toy" / "seed0" / "metrics.parquet", model, rng
            )
            metrics.append(f"{model}={path}")
    adir = res / "analysis" / "toy"
    cfg = '{"analysis": {"bootstrap": 200, "seed": 1}}'
    run("analyze", "--bench", "toy", "--passk", *tables, "--metrics", *metrics, "--diversity",
        *diversity, "--final-step", N_STEPS, "--cfg", cfg, "--out-dir", adir)  # fmt: skip
    figs = res / "figures" / "toy"
    for kind in TABLE_PLOTS:
        run("plot", kind, "--analysis-dir", adir, "--style", STYLE, "--out-prefix", figs / kind)
    run("plot", "training", "--analysis-dir", adir, "--method", "grpo", "--style", STYLE,
        "--out-prefix", figs / "training_grpo")  # fmt: skip
    run(
        "plot",
        "dynamics",
        "--metrics",
        *metrics,
        "--style",
        STYLE,
        "--out-prefix",
        figs / "dynamics",
    )
    run("summary", "--analysis-dir", adir, "--metrics", *metrics, "--out", res / "summary.md")

    table = pd.read_parquet(res / "passk" / "grpo" / "toy.parquet")
    assert list(table.columns) == ["problem_id", "n", "c"] and (table["n"] == N_SAMPLES).all()
    passk = pd.read_parquet(adir / "passk.parquet")
    assert {"model", "bench", "k", "pass_at_k", "n"} <= set(passk.columns)
    assert passk["pass_at_k"].between(0, 1).all() and set(passk["model"]) == set(MODELS)
    cov = pd.read_parquet(adir / "coverage.parquet").set_index("model")
    assert {"bench", "n", "coverage"} <= set(cov.columns) and "union" in cov.index
    assert (cov.loc["union", "coverage"] >= cov["coverage"]).all()
    assert "grpo-step30" in cov.index and cov.loc["grpo-step30", "kind"] == "checkpoint"
    assert set(passk["model"]) == set(MODELS)  # snapshots are not final curves
    steps = pd.read_parquet(adir / "checkpoints.parquet")
    assert sorted(steps["step"].unique()) == [0, 30, N_STEPS]
    assert {"grpo", "base"} == set(pd.read_parquet(adir / "diff.parquet")["reference"])
    fit = pd.read_parquet(adir / "asymptote.parquet").set_index("model")
    assert (fit["U"] >= fit["pass_at_n"] - 1e-12).all() and (fit["U"] <= 1).all()
    assert (pd.read_parquet(adir / "diversity.parquet")["n"] == N_SAMPLES).all()
    assert pd.read_parquet(adir / "sensitivity.parquet").empty  # no IRL overrides: no grid
    for name in (*TABLE_PLOTS, "dynamics", "training_grpo"):
        assert_png(figs / f"{name}.png")
        assert (figs / f"{name}.svg").stat().st_size > 1024
    text = (res / "summary.md").read_text()
    assert "## toy" in text and "Union coverage" in text and "| sps-p4 |" in text
    assert "Paired differences" in text and "Over training" in text
    csv = pd.read_csv(res / "summary_toy.csv")
    assert csv["final_distinct_ratio"].isna().tolist() == [True, False, False]  # base blank
    assert {"pass_at_1_low", "U", "U_low", "U_high", "k_cross", "distinct_correct"} <= set(csv)
    for table in ("diff", "checkpoints", "entropy", "diversity", "unsolved"):
        assert (res / f"summary_toy_{table}.csv").is_file()
    assert not list(res.rglob(".*.tmp*")), "temporary files left behind"


def test_passk_names_file_missing_column(tmp_path: Path) -> None:
    bad = tmp_path / "shard0.parquet"
    pd.DataFrame({"problem_id": ["a"], "sample_idx": [0]}).to_parquet(bad)
    with pytest.raises(ValueError, match=r"'correct'.*shard0\.parquet"):
        run("passk", "--samples", bad, "--out", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_bad_pair_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run("analyze", "--bench", "toy", "--passk", "no-equals-sign", "--out-dir", tmp_path)


def test_style_file_and_fixed_colours(tmp_path: Path) -> None:
    from sps.plots import style

    path = tmp_path / "style.yaml"
    path.write_text("formats: [pdf]\ndpi: 100\n")
    assert style.load_style(f"@{path}") == {**style.DEFAULT_STYLE, "formats": ["pdf"], "dpi": 100}
    with pytest.raises(ValueError, match="unknown style keys"):
        style.load_style('{"colour": "red"}')
    blues = [style.color_for(f"sps-p{n}") for n in (1, 4, 16)]
    assert len(set(blues)) == 3 and style.color_for("grpo") not in blues
    assert style.model_order(["sps-p16", "grpo", "sps-p4", "base"]) == [
        "base", "grpo", "sps-p4", "sps-p16"
    ]  # fmt: skip


def test_metrics_matched_to_bench_by_path() -> None:
    from sps.analysis.cli import metrics_for

    pairs = [
        ("grpo", Path("results/runs/grpo/countdown/seed0/metrics.parquet")),
        ("grpo", Path("results/runs/grpo/gsm8k/seed0/metrics.parquet")),
        ("gsm8k:sps-p4", Path("elsewhere/m.parquet")),
    ]
    assert metrics_for("countdown", pairs, 2) == {"grpo": {None: pairs[0][1]}}
    assert metrics_for("gsm8k", pairs, 2) == {
        "grpo": {None: pairs[1][1]}, "sps-p4": {None: pairs[2][1]}
    }  # fmt: skip
    seeded = [("gsm8k:grpo@1", Path("a")), ("gsm8k:grpo@2", Path("b")), ("math:grpo@1", Path("c"))]
    assert metrics_for("gsm8k", seeded, 2) == {"grpo": {1: Path("a"), 2: Path("b")}}
    with pytest.raises(ValueError, match="given twice"):
        metrics_for("gsm8k", [*seeded, ("gsm8k:grpo@2", Path("d"))], 2)


def test_passk_rejects_shard_given_twice(tmp_path: Path) -> None:
    (shard, _) = write_samples(tmp_path, "base", 0.3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="duplicate sample"):
        run("passk", "--samples", shard, shard, "--out", tmp_path / "out.parquet")


def test_analyze_takes_several_seeds(tmp_path: Path) -> None:
    """A table with a seed column (or MODEL@SEED pairs) gives the mean curve and its spread."""
    rng = np.random.default_rng(3)
    ids = [f"q{i}" for i in range(20)]
    p = rng.random(20)
    two = pd.concat(
        pd.DataFrame({"problem_id": ids, "n": 8, "c": rng.binomial(8, p), "seed": s})
        for s in (0, 1)
    )
    two.to_parquet(tmp_path / "grpo.parquet")
    one = pd.DataFrame({"problem_id": ids, "n": 8, "c": rng.binomial(8, p)})
    one.to_parquet(tmp_path / "base.parquet")
    for seed in (0, 1):
        one.to_parquet(tmp_path / f"sps{seed}.parquet")
    run("analyze", "--bench", "toy", "--passk", f"base={tmp_path / 'base.parquet'}",
        f"grpo={tmp_path / 'grpo.parquet'}", f"sps-p2@0={tmp_path / 'sps0.parquet'}",
        f"sps-p2@1={tmp_path / 'sps1.parquet'}", "--out-dir", tmp_path / "out")  # fmt: skip
    passk = pd.read_parquet(tmp_path / "out" / "passk.parquet").set_index(["model", "k"])
    assert passk.loc[("grpo", 1), "n_seeds"] == 2 and passk.loc[("base", 1), "n_seeds"] == 1
    assert passk.loc[("sps-p2", 1), "seed_sd"] == 0.0  # two identical seeds
    per_seed = two.groupby("seed")["c"].mean() / 8
    assert passk.loc[("grpo", 1), "pass_at_k"] == pytest.approx(per_seed.mean())
    assert passk.loc[("grpo", 1), "seed_sd"] == pytest.approx(per_seed.std(ddof=1))


@pytest.mark.parametrize("steps", [[0, 160], [0, 80, 160]])
def test_entropy_title_says_when_there_is_no_fit(tmp_path: Path, monkeypatch, steps) -> None:
    """Without evaluation snapshots (base and final only) no method can be fitted: the
    figure's title must not promise the fitted curves it does not draw."""
    from sps.analysis.ceiling import entropy_fit
    from sps.plots import entropy, style

    h = np.linspace(0.17, 0.07, len(steps))
    pass1 = 1.2 - np.exp(h)  # exactly R = -a exp(H) + b: fitted wherever a fit is possible
    ckpt = pd.DataFrame(
        {
            "method": "grpo",
            "bench": "countdown",
            "step": steps,
            "k": 1,
            "pass_at_k": pass1,
            "ci_low": pass1 - 0.02,
            "ci_high": pass1 + 0.02,
            "entropy": h,
        }
    )
    fit = {"method": "grpo", "target": "pass_at_1", **entropy_fit(h, pass1)}
    titles = []

    def save(fig, *args):
        titles.append(fig.axes[0].get_title())

    monkeypatch.setattr(entropy, "save_figure", save)
    tables = {"checkpoints": ckpt, "entropy_fit": pd.DataFrame([fit])}
    entropy.plot(tables, style.DEFAULT_STYLE, tmp_path / "entropy")
    assert (entropy.TOO_FEW in titles[0]) == (len(steps) < 3), titles
    assert ("exp(H)" in titles[0]) == (len(steps) >= 3), titles
