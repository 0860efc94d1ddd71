"""The Snakemake workflow: every config builds a clean DAG, and config/ci.yaml runs end to end."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sps.analysis.passk import pass_at_k

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.name for p in (ROOT / "config").glob("*.yaml"))
MODEL_RULES = {
    "prepare_countdown",
    "prepare_benchmark",
    "pretrain_base",
    "convert_base",
    "train",
    "sample",
}
SAMPLE_READERS = {"grade", "passk", "diversity", "grading"}  # read samples or their grades
SAMPLE_COLUMNS = ["problem_id", "sample_idx", "completion", "n_tokens", "logprob", "finish_reason"]
FIGURES = ("passk", "diff", "ceiling", "dynamics", "sweep", "diversity", "checkpoints", "entropy")
PLOT_RULES = {f"plot_{name}" for name in FIGURES} | {"plot_training"}  # training: per method


def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=1800)


def jobs(output: str) -> dict[str, int]:
    """Rule -> count from Snakemake's 'Job stats' table."""
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    return {
        m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"
    }


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_and_lint_are_clean(name):
    dry = snakemake("-n", "--cores", "1", "--configfile", f"config/{name}", cwd=ROOT)
    assert dry.returncode == 0, dry.stderr[-3000:]
    lint = snakemake("--lint", "--configfile", f"config/{name}", cwd=ROOT)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, (
        lint.stdout[-3000:] + lint.stderr[-3000:]
    )


def test_bad_config_names_the_key():
    out = snakemake("-n", "--cores", "1", "--config", "rl={stepz: 3}", cwd=ROOT)
    assert out.returncode != 0 and "stepz" in out.stdout + out.stderr


def test_eval_step_at_the_end_is_refused():
    out = snakemake(
        "-n", "--cores", "1", "--configfile", "config/ci.yaml", "--config",
        "rl={eval_steps: [2, 6]}", cwd=ROOT,
    )  # fmt: skip
    assert out.returncode != 0 and "rl.eval_steps [6]" in out.stdout + out.stderr


@pytest.mark.slow
def test_outputs_make_sense(ci_run):
    analysis = ci_run / "results/analysis/countdown"
    curves = pd.read_parquet(analysis / "passk.parquet")
    assert curves["pass_at_k"].between(0, 1).all()
    for model, curve in curves.groupby("model"):
        values = curve.sort_values("k")["pass_at_k"].to_numpy()
        assert (values[1:] >= values[:-1] - 1e-12).all(), model
        shards = sorted((ci_run / f"results/samples/{model}/countdown").glob("shard*.parquet"))
        samples = pd.concat(map(pd.read_parquet, shards))
        assert list(samples.columns) == SAMPLE_COLUMNS  # completions only, no grades
        assert samples.groupby("problem_id").size().eq(16).all()  # n = 16 per problem
        grades = pd.concat(pd.read_parquet(str(p).replace("/samples/", "/grades/")) for p in shards)
        assert grades[["problem_id", "sample_idx"]].equals(samples[["problem_id", "sample_idx"]])
        pass1 = curve.loc[curve["k"] == 1, "pass_at_k"].item()
        assert pass1 == pytest.approx(grades["correct"].mean())
        table = pd.read_parquet(ci_run / f"results/passk/{model}/countdown.parquet")
        assert pass_at_k(table["n"].to_numpy(), table["c"].to_numpy(), 1).mean() == pytest.approx(
            pass1
        )
    coverage = pd.read_parquet(analysis / "coverage.parquet").set_index("model")["coverage"]
    assert (coverage["union"] >= coverage.drop("union") - 1e-12).all()
    assert coverage["base"] > 0  # the ci base model solves some problems: the checks bite
    base = curves[curves["model"] == "base"].set_index("k")["pass_at_k"]
    assert base[16] > base[1]
    metrics = pd.read_parquet(ci_run / "results/runs/sps-p1/countdown/seed0/metrics.parquet")
    assert list(metrics["phase"]) == ["rl", "irl"] * 3
    # the snapshot after step 3 (config/ci.yaml rl.eval_steps), sampled 8 times per problem
    snapshot = pd.read_parquet(ci_run / "results/samples/grpo-step3/countdown/shard0.parquet")
    assert snapshot.groupby("problem_id").size().eq(8).all()
    steps = pd.read_parquet(analysis / "checkpoints.parquet")
    assert sorted(steps.loc[steps["method"] == "grpo", "step"].unique()) == [0, 3, 6]
    assert "grpo-step3" in set(pd.read_parquet(analysis / "coverage.parquet")["model"])
    diversity = pd.read_parquet(analysis / "diversity.parquet")
    assert set(diversity["model"]) == set(curves["model"])
    for fig in [*FIGURES, "training_grpo", "training_sps-p2"]:
        png = (ci_run / f"results/figures/countdown/{fig}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "| base" in (ci_run / "results/summary.md").read_text()


@pytest.mark.slow
def test_plot_option_reruns_only_figures(ci_run):
    out = snakemake(
        "-n",
        "--cores",
        "1",
        "--configfile",
        "config/ci.yaml",
        "--config",
        "plots={dpi: 80}",
        cwd=ci_run,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert set(jobs(out.stdout + out.stderr)) == PLOT_RULES | {"all"}


@pytest.mark.slow
def test_figures_redraw_from_cached_tables(ci_run):
    shutil.rmtree(ci_run / "results/figures")
    (ci_run / "results/summary.md").unlink()
    # the cached tables suffice: samples and grades move aside, and come back for the tests
    # that share this run (a grader change regrades them, it does not resample)
    aside = [(ci_run / "results" / d, ci_run / f"{d}.aside") for d in ("samples", "grades")]
    for path, moved in aside:
        path.rename(moved)
    try:
        out = snakemake("figures", "--cores", "1", "--configfile", "config/ci.yaml", cwd=ci_run)
    finally:
        for path, moved in aside:
            moved.rename(path)
    assert out.returncode == 0, out.stderr[-3000:]
    ran = jobs(out.stdout + out.stderr)
    assert ran and not set(ran) & (MODEL_RULES | SAMPLE_READERS | {"analyze"}), ran
    assert set(ran) == PLOT_RULES | {"summary", "figures"}, ran  # figure and report jobs only
    assert (ci_run / "results/figures/countdown/passk.png").stat().st_size > 5000
    assert (ci_run / "results/summary.md").is_file()
    assert (ci_run / "results/summary_countdown_diff.csv").is_file()


@pytest.mark.slow
def test_html_report(ci_run):
    out = snakemake("--report", "report.html", "--configfile", "config/ci.yaml", cwd=ci_run)
    assert out.returncode == 0, out.stderr[-3000:]
    html = (ci_run / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "passk" in html


def test_seeds_fan_out_training_and_sampling():
    out = snakemake(
        "-n",
        "-p",
        "--cores",
        "1",
        "--configfile",
        "config/ci.yaml",
        "--config",
        "seeds=[0, 3]",
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert jobs(text)["train"] == 2 * 3  # grpo and two SPS periods, twice
    assert "results/runs/sps-p2/countdown/seed3/final" in text
    assert "grpo@3=results/passk/grpo-s3/countdown.parquet" in text


def test_per_bench_settings_reach_only_that_benchmarks_jobs():
    """per_bench.svamp replaces rl and sampling keys in svamp's train, sample and analyze
    jobs; countdown's keep the sections' values."""
    override = (
        "per_bench={svamp: {rl: {steps: 3, max_new_tokens: 96}, sampling: {max_new_tokens: 80}}}"
    )
    out = snakemake(
        "-n", "-p", "--cores", "1", "--configfile", "config/ci.yaml",
        "--config", "benchmarks=[countdown, svamp]", "rl={eval_steps: []}", override, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = (out.stdout + out.stderr).splitlines()

    def commands(rule: str, bench: str) -> list[str]:
        return [x for x in lines if f"sps {rule} " in x and f"/{bench}/" in x + " "]

    train = {bench: commands("train", bench) for bench in ("countdown", "svamp")}
    assert train["svamp"] and train["countdown"]
    assert all('"steps": 3' in x and '"max_new_tokens": 96' in x for x in train["svamp"])
    assert not any('"steps": 3' in x for x in train["countdown"])
    samples = commands("sample", "svamp")
    assert samples and all('"max_new_tokens": 80' in x for x in samples)
    assert not any('"max_new_tokens": 80' in x for x in commands("sample", "countdown"))
    analyze = [x for x in lines if "sps analyze --bench svamp" in x]
    assert analyze and "--final-step 3 " in analyze[0]


def test_all_five_benchmarks_build_the_full_dag():
    """config/paper.yaml selects every benchmark: data, training on each train split,
    sampling, analysis, grading report and figures, per benchmark."""
    out = snakemake("-n", "-p", "--cores", "1", "--configfile", "config/paper.yaml", cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    counts = jobs(text)
    benches = ["gsm8k", "math", "svamp", "strategyqa", "commonsense_qa"]
    per_bench = ["prepare_benchmark", "analyze", "grading", "plot_passk", "plot_ceiling"]
    assert all(counts[rule] == len(benches) for rule in per_bench), counts
    assert counts["convert_base"] == 1 and "pretrain_base" not in counts
    for bench in benches:
        assert f"results/data/{bench}/train.parquet" in text
        assert f"results/runs/grpo/{bench}/seed2/final" in text
        assert f"results/samples/sps-p4/{bench}/shard7.parquet" in text
        assert f"results/figures/{bench}/passk.png" in text
    assert "--gpus 1" in text and "--nproc 4" in text  # gpus.sample, gpus.train on CUDA
