"""Seed aggregation of every analysis and summary table on a case small enough to work out by
hand, the sensitivity table, and the seeded command line end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_analysis_cli import assert_png, run  # tests/ is on sys.path

from sps.analysis import bench, ceiling, summary
from sps.analysis.diversity import METRICS
from sps.analysis.sensitivity import cell_settings, grid_cells
from sps.runs import parse_method

IDS = ["q0", "q1", "q2", "q3"]
# correct samples out of n = 2 per problem; q3 is never solved
C = {
    ("base", None): [2, 1, 0, 0],
    ("grpo", 1): [2, 2, 0, 0],  # Pass@1 1, 1, 0, 0 -> 0.5; Pass@2 0.5; coverage 0.5
    ("grpo", 2): [2, 1, 1, 0],  # Pass@1 1, .5, .5, 0 -> 0.5; Pass@2 0.75
    ("sps-p2-lr1", 1): [1, 1, 1, 0],  # Pass@1 0.375; Pass@2 0.75
    ("sps-p2-lr1", 2): [2, 0, 1, 0],  # Pass@1 0.375; Pass@2 0.5
    ("grpo-step1", 1): [1, 1, 0, 0],  # Pass@1 0.25
    ("grpo-step1", 2): [2, 1, 0, 0],  # Pass@1 0.375
}
DISTINCT = {  # distinct correct completions per problem
    ("grpo", 1): [2, 1, 0, 0],
    ("grpo", 2): [2, 2, 1, 0],
    ("sps-p2-lr1", 1): [1, 1, 1, 0],
    ("sps-p2-lr1", 2): [2, 0, 1, 0],
}
FINAL = {("grpo", 1): (0.4, 0.6), ("grpo", 2): (0.6, 0.2)}  # (reward, distinct ratio)
ENTROPY = {1: 1.0, 2: 0.5}  # at step 0, then 0.05 lower every step
IRL = {"lr_scale": 0.1, "steps": 1, "tau": 1.0, "demos": "group"}


def tables() -> dict[str, dict[object, pd.DataFrame]]:
    out: dict[str, dict[object, pd.DataFrame]] = {}
    for (model, seed), c in C.items():
        out.setdefault(model, {})[seed] = pd.DataFrame({"problem_id": IDS, "n": 2, "c": c})
    return out


def metrics_frame(seed: int, reward: float, ratio: float, irl: bool = False) -> pd.DataFrame:
    step = np.arange(10)
    phase = np.where(irl & (step % 3 == 2), "irl", "rl")
    return pd.DataFrame(
        {"step": step, "phase": phase, "reward_mean": reward, "distinct_ratio": ratio,
         "entropy": ENTROPY[seed] - 0.05 * step}
    )  # fmt: skip


def metrics() -> dict[str, dict[object, pd.DataFrame]]:
    out = {"grpo": {s: metrics_frame(s, *FINAL["grpo", s]) for s in (1, 2)}}
    out["sps-p2-lr1"] = {s: metrics_frame(s, 0.5, 0.5, irl=True) for s in (1, 2)}
    return out


def diversity_frame(model: str, seed: int) -> pd.DataFrame:
    frame = pd.DataFrame({"problem_id": IDS, "n": 2, "c": C[model, seed]})
    for metric in METRICS:
        frame[metric] = 1.0
    frame["distinct_correct"] = DISTINCT[model, seed]
    return frame.assign(ngram_unit="char")


def diversity() -> dict[str, dict[object, pd.DataFrame]]:
    return {m: {s: diversity_frame(m, s) for s in (1, 2)} for m in ("grpo", "sps-p2-lr1")}


@pytest.fixture(scope="module")
def found() -> dict[str, pd.DataFrame]:
    settings = bench.Settings(bootstrap=200, irl=IRL)
    return bench.analyze("toy", tables(), metrics(), diversity(), final_step=10, settings=settings)


def test_passk_coverage_and_differences_are_means_over_seeds(found) -> None:
    passk = found["passk"].set_index(["model", "k"])
    assert passk.loc[("grpo", 1), "pass_at_k"] == pytest.approx(0.5)
    assert passk.loc[("grpo", 2), "pass_at_k"] == pytest.approx(0.625)
    assert passk.loc[("grpo", 2), "seed_sd"] == pytest.approx(np.std([0.5, 0.75], ddof=1))
    assert passk.loc[("sps-p2-lr1", 1), "pass_at_k"] == pytest.approx(0.375)
    assert passk.loc[("base", 1), "n_seeds"] == 1 and passk.loc[("grpo", 1), "n_seeds"] == 2
    cov = found["coverage"].set_index("model")
    assert cov.loc["grpo", "coverage"] == pytest.approx(0.625)  # (0.5 + 0.75) / 2
    assert cov.loc["grpo", "n_solved"] == 3  # by any seed
    assert cov.loc["union", "coverage"] == pytest.approx(0.75)
    assert found["unsolved"]["problem_id"].tolist() == ["q3"]
    diff = found["diff"].set_index(["model", "reference", "k"])
    # paired by seed: (0.375 - 0.5) for each seed; Pass@2: (0.75 - 0.5 + 0.5 - 0.75) / 2
    assert diff.loc[("sps-p2-lr1", "grpo", 1), "diff"] == pytest.approx(-0.125)
    assert diff.loc[("sps-p2-lr1", "grpo", 2), "diff"] == pytest.approx(0.0)
    assert diff.loc[("grpo", "base", 1), "diff"] == pytest.approx(0.125)  # base shared
    assert diff.loc[("grpo", "base", 1), "n_seeds"] == 2
    row = diff.loc[("sps-p2-lr1", "grpo", 1)]
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert found["asymptote"].set_index("model").loc["grpo", "n_seeds"] == 2
    assert found["crossover"].set_index("model").loc["grpo", "n_seeds"] == 2


def test_checkpoints_entropy_and_diversity_are_means_over_seeds(found) -> None:
    ckpt = found["checkpoints"]
    grpo = ckpt[(ckpt["method"] == "grpo") & (ckpt["k"] == 1)].set_index("step")
    assert grpo["pass_at_k"].to_dict() == pytest.approx({0: 0.375, 1: 0.3125, 10: 0.5})
    assert grpo.loc[1, "n_seeds"] == 2 and grpo.loc[0, "n_seeds"] == 1
    # seed mean 0.75 - 0.05 step, averaged over steps (s - 5, s]; the final model ends at step 9
    assert grpo["entropy"].tolist() == pytest.approx([0.75, 0.725, 0.375])
    fits = found["entropy_fit"].set_index(["method", "target"])
    expected = ceiling.entropy_fit(np.array([0.75, 0.725, 0.375]), np.array([0.375, 0.3125, 0.5]))
    for key in ("a", "b", "r2", "n_points"):
        assert fits.loc[("grpo", "pass_at_1"), key] == pytest.approx(expected[key])
    assert fits.loc[("grpo", "reward_mean"), "n_seeds"] == 2
    assert fits.loc[("grpo", "reward_mean"), "n_points"] == 2  # blocks of 5 steps: no fit
    div = found["diversity"].set_index(["model", "metric"])
    assert div.loc[("grpo", "distinct_correct"), "value"] == pytest.approx(1.0)  # .75, 1.25
    assert div.loc[("grpo", "distinct_correct"), "seed_sd"] == pytest.approx(np.sqrt(0.125))
    solved = np.mean([(2 + 1) / 2, (2 + 2 + 1) / 3])
    assert div.loc[("grpo", "distinct_correct_solved"), "value"] == pytest.approx(solved)


def test_sensitivity_cell(found) -> None:
    sens = found["sensitivity"].set_index("method")
    assert sens.index.tolist() == ["sps-p2-lr1"]
    cell = sens.loc["sps-p2-lr1"]
    assert (cell["period"], cell["lr_scale"], cell["steps"], cell["tau"]) == (2, 1.0, 1, 1.0)
    assert cell["demos"] == "group" and cell["overrides"] == "lr_scale=1"
    assert cell["d_pass1"] == pytest.approx(-0.125) and cell["d_passn"] == pytest.approx(0.0)
    assert cell["n"] == 2 and cell["n_seeds"] == 2
    assert cell["d_coverage"] == pytest.approx(0.0)
    assert cell["d_distinct_correct"] == pytest.approx(-0.25)  # (0 - 0.5) / 2
    low, high = cell["d_pass1_low"], cell["d_pass1_high"]
    assert cell["pass1_excludes_0"] == (low > 0 or high < 0)
    # the seeds' share of each interval's variance is the diff table's, and a dominated one
    # is flagged in the summary
    diff = found["diff"].set_index(["model", "reference", "k"])
    assert cell["pass1_seed_share"] == diff.loc[("sps-p2-lr1", "grpo", 1), "seed_share"]
    assert cell["passn_seed_share"] == diff.loc[("sps-p2-lr1", "grpo", 2), "seed_share"]
    dominated = found["sensitivity"].assign(pass1_seed_share=0.9, passn_seed_share=0.1)
    row = summary.sensitivity_markdown(dominated).splitlines()[-1].split(" | ")
    assert row[7].endswith("†") and not row[8].endswith("†")


def test_summary_tables_are_means_over_seeds(found) -> None:
    table = summary.bench_table(found["passk"], found["coverage"], metrics(), found, [1])
    grpo = table.set_index("model").loc["grpo"]
    assert grpo["n_seeds"] == 2 and grpo["final_seeds"] == 2
    assert grpo["pass_at_1"] == pytest.approx(0.5) and grpo["pass_at_n"] == pytest.approx(0.625)
    assert grpo["coverage_at_n"] == pytest.approx(0.625)
    assert grpo["final_reward"] == pytest.approx(0.5)
    assert grpo["final_reward_sd"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert grpo["final_distinct_ratio"] == pytest.approx(0.4)
    assert grpo["final_distinct_ratio_sd"] == pytest.approx(np.std([0.6, 0.2], ddof=1))
    assert grpo["distinct_correct"] == pytest.approx(1.0)
    assert np.isnan(table.set_index("model").loc["base", "final_reward"])
    csv = summary.csv_tables(table, found)
    ckpt = csv["checkpoints"].set_index(["method", "measure"])
    assert ckpt.loc[("grpo", "Pass@1"), 1] == pytest.approx(0.3125)
    assert ckpt.loc[("grpo", "entropy"), 10] == pytest.approx(0.375)
    wide = csv["diversity"].set_index("model")
    assert wide.loc["sps-p2-lr1", "distinct_correct"] == pytest.approx(0.75)
    assert csv["sensitivity"]["d_distinct_correct"].tolist() == pytest.approx([-0.25])
    text = summary.bench_section("toy", table, found["coverage"], found)
    assert "| grpo | 2 | 0.500 [" in text and "0.500 ± 0.141" in text
    assert "### SPS sensitivity" in text and "`sps-p2-lr1`" in text


def test_headline_flags_intervals_the_seeds_dominate(found) -> None:
    passk = found["passk"].copy()
    passk["seed_share"] = np.where(passk["model"] == "grpo", 0.9, 0.1)
    table = summary.bench_table(passk, found["coverage"], metrics(), found, [1])
    rows = {line.split(" | ")[0][2:]: line for line in summary.markdown_table(table).splitlines()}
    assert rows["grpo"].count("] †") == 2  # Pass@1 and Pass@n
    assert "†" not in rows["base"] and "†" not in rows["sps-p2-lr1"]


def test_dynamics_band_is_the_mean_and_range_over_seeds() -> None:
    from sps.plots.dynamics import seed_band

    frames = {1: pd.DataFrame({"step": [0, 1, 2], "x": [1.0, 2.0, 3.0]}),
              2: pd.DataFrame({"step": [0, 1], "x": [3.0, 0.0]})}  # fmt: skip
    band = seed_band(frames, "x", window=1)
    assert band["mean"].tolist() == [2.0, 1.0, 3.0]
    assert band["low"].tolist() == [1.0, 0.0, 3.0] and band["high"].tolist() == [3.0, 2.0, 3.0]


def test_grid_cells_need_an_override() -> None:
    assert grid_cells(["base", "grpo", "sps-p1", "sps-p4"]) == {}
    cells = grid_cells(["grpo", "sps-p1", "sps-p4-lr0.3-m2", "sps-a0.5-lr1", "sps-p1-lr1-buf"])
    assert list(cells) == ["sps-p1", "sps-p4-lr0.3-m2", "sps-p1-lr1-buf"]
    buf = cell_settings(parse_method("sps-p1-lr1-buf"), None)
    assert buf["demos"] == "buffer" and np.isnan(buf["steps"]) and buf["lr_scale"] == 1.0
    assert cell_settings(parse_method("sps-p4-m2"), IRL)["lr_scale"] == 0.1


def test_a_seed_in_the_model_id_is_refused() -> None:
    with pytest.raises(ValueError, match="grpo-step5@2"):
        bench.split_checkpoint("grpo-s2-step5")


def write(path: Path, frame: pd.DataFrame) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return str(path)


def test_seeded_command_line(tmp_path: Path) -> None:
    """`sps analyze` with MODEL@SEED keys for tables, snapshots, metrics and diversity, every
    figure (the sensitivity heatmap too), and the summary with METHOD@SEED metrics."""
    passk = [
        f"{model}{'' if seed is None else f'@{seed}'}="
        + write(tmp_path / f"passk/{model}-{seed}.parquet", frame)
        for model, seeds in tables().items()
        for seed, frame in seeds.items()
    ]
    runs = [
        f"{m}@{s}=" + write(tmp_path / f"runs/{m}/toy/seed{s}/metrics.parquet", frame)
        for m, seeds in metrics().items()
        for s, frame in seeds.items()
    ]
    div = [
        f"{m}@{s}=" + write(tmp_path / f"div/{m}-{s}.parquet", frame)
        for m, seeds in diversity().items()
        for s, frame in seeds.items()
    ]
    adir, figs = tmp_path / "analysis", tmp_path / "figures"
    cfg = '{"analysis": {"bootstrap": 100}, "irl": {"lr_scale": 0.1}}'
    run("analyze", "--bench", "toy", "--passk", *passk, "--metrics", *runs, "--diversity", *div,
        "--final-step", 10, "--cfg", cfg, "--out-dir", adir)  # fmt: skip
    sens = pd.read_parquet(adir / "sensitivity.parquet")
    assert sens["lr_scale"].tolist() == [1.0] and sens["steps"].tolist() == [1]  # schema default
    style = '{"formats": ["png"], "dpi": 60}'
    for kind in ("passk", "diff", "ceiling", "checkpoints", "entropy", "diversity", "sensitivity"):
        run("plot", kind, "--analysis-dir", adir, "--style", style, "--out-prefix", figs / kind)
        assert_png(figs / f"{kind}.png")
    run("plot", "dynamics", "--metrics", *runs, "--style", style, "--out-prefix", figs / "dyn")
    assert_png(figs / "dyn.png")
    run("summary", "--analysis-dir", adir, "--metrics", *runs, "--out", tmp_path / "summary.md")
    csv = pd.read_csv(tmp_path / "summary_toy.csv").set_index("model")
    assert csv.loc["grpo", "final_reward"] == pytest.approx(0.5)
    assert (tmp_path / "summary_toy_sensitivity.csv").is_file()
    with pytest.raises(ValueError, match="whole number"):
        bad = next(p for p in passk if p.startswith("grpo@1=")).replace("grpo@1", "grpo@x")
        run("analyze", "--bench", "toy", "--passk", bad, "--out-dir", adir)


def test_over_training_says_when_there_are_no_snapshots(found) -> None:
    """With snapshots (grpo-step1 here) the section names them; with base and final only it
    says there are none, and why the entropy fits of Pass@1 are blank."""
    table = summary.bench_table(found["passk"], found["coverage"], metrics(), found, [1])
    with_snapshots = summary.bench_section("toy", table, found["coverage"], found)
    ckpt = found["checkpoints"]
    no_snapshots = {**found, "checkpoints": ckpt[ckpt["step"].isin([0, 10])]}
    without = summary.bench_section("toy", table, found["coverage"], no_snapshots)
    assert "evaluation snapshots by training step" in with_snapshots
    assert "rl.eval_steps is empty" not in with_snapshots
    assert "the base and final models (no evaluation snapshots: rl.eval_steps is empty)" in without
    assert "| 0 | 10 |" in without and "| 0 | 1 | 10 |" in with_snapshots
