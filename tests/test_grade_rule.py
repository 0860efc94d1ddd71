"""Grading as its own rule: `sps grade` turns one sample shard into its grades, row for row,
with one process pool per job; a grader change regrades and recounts without resampling or
retraining."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sps.config import GradingConfig, TaskConfig
from sps.tasks.data import prepare_countdown
from sps.tasks.grade_samples import GRADE_COLUMNS, grade_shard, grade_table

SAMPLE_RULES = {"prepare_countdown", "pretrain_base", "train", "sample"}


def test_grades_keep_the_shards_row_order(tmp_path):
    prepare_countdown(TaskConfig(3, 12, 60, 3, 4, 4, 3), seed=0, out_dir=tmp_path)
    data = pd.read_parquet(tmp_path / "test.parquet")
    gold = dict(zip(data["id"], data["gold"], strict=True))
    kinds = {0: "right", 1: "wrong", 2: "none"}
    rows = [(pid, i) for pid in reversed(data["id"].tolist()) for i in (2, 0, 1)]
    completion = {
        "right": lambda pid: f"Answer: {gold[pid]}",
        "wrong": lambda pid: "Answer: 1+1",
        "none": lambda pid: "I give up",
    }
    samples = pd.DataFrame(
        {
            "problem_id": [pid for pid, _ in rows],
            "sample_idx": [i for _, i in rows],
            "completion": [completion[kinds[i]](pid) for pid, i in rows],
        }
    )
    samples.to_parquet(tmp_path / "shard0.parquet")
    answer_line_only = GradingConfig(check_steps=False)  # this test is about rows, not steps
    grades = grade_shard(tmp_path / "shard0.parquet", tmp_path / "test.parquet", answer_line_only)
    assert list(grades.columns) == GRADE_COLUMNS
    assert grades[["problem_id", "sample_idx"]].values.tolist() == [list(r) for r in rows]
    expect = {"right": (True, "ok"), "wrong": (False, "ok"), "none": (False, "unparsed")}
    for (_, i), correct, status in zip(rows, grades["correct"], grades["grade"], strict=True):
        assert (correct, status) == expect[kinds[i]]


def test_one_grading_pool_per_job(monkeypatch):
    """The MATH grader's process pool costs seconds to build: a whole shard shares one."""
    from sps.tasks.grading import pool

    built = []
    init = pool.TimeoutPool.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(pool.TimeoutPool, "__init__", counting)
    problems = pd.DataFrame(
        {"id": ["m0", "m1", "m2"], "bench": "math", "question": "q", "gold": ["4", "1/2", "3"],
         "answer_type": "math", "choices": None, "prompt": "p"}
    )  # fmt: skip
    answers = {"m0": [r"\boxed{2+2}", r"\boxed{5}"], "m1": [r"\boxed{0.5}", r"\boxed{\frac{2}{4}}"],
               "m2": [r"\boxed{3}", r"\boxed{9/3}"]}  # fmt: skip
    samples = pd.DataFrame(
        [(pid, i, text) for pid, texts in answers.items() for i, text in enumerate(texts)],
        columns=["problem_id", "sample_idx", "completion"],
    )
    grades = grade_table(samples, problems, GradingConfig(workers=2))
    assert grades["correct"].tolist() == [True, False, True, True, True, True]
    assert len(built) == 1, f"{len(built)} pools for one shard"


def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)


def job_table(output: str) -> tuple[str, dict[str, int]]:
    """Snakemake's 'Job stats' table as printed, and rule -> count."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0] if "Job stats:" in output else ""
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    counts.pop("total", None)
    return table, counts


def dry_run(ci_run: Path) -> tuple[str, dict[str, int]]:
    out = snakemake("-n", "--cores", "1", "--configfile", "config/ci.yaml", cwd=ci_run)
    assert out.returncode == 0, out.stderr[-3000:]
    return job_table(out.stdout + out.stderr)


@pytest.fixture
def edited(ci_run):
    """Edit a file of the ci run's source tree for one test, then put it back."""
    saved: dict[Path, str] = {}

    def edit(rel: str, change) -> None:
        path = ci_run / rel
        saved.setdefault(path, path.read_text())
        path.write_text(change(path.read_text()))

    yield edit
    for path, text in saved.items():
        path.write_text(text)


def regraded(counts: dict[str, int]) -> None:
    assert not SAMPLE_RULES & set(counts), counts
    assert counts["grade"] == 4 * 2 + 3  # base, grpo, sps-p1, sps-p2 x 2 shards; 3 snapshots
    assert counts["passk"] == 7 and counts["diversity"] == 4 and counts["grading"] == 1
    assert {"analyze", "summary", "plot_passk"} <= set(counts)


@pytest.mark.slow
def test_grader_version_regrades_without_resampling(ci_run, edited):
    before, counts = dry_run(ci_run)
    assert counts == {}, before  # a complete run: nothing to do
    init = "src/sps/tasks/grading/__init__.py"
    edited(init, lambda text: re.sub(r'GRADER_VERSION = "(\w+)"', r'GRADER_VERSION = "\1x"', text))
    table, counts = dry_run(ci_run)
    print(f"dry run after bumping GRADER_VERSION:\n{table}")
    regraded(counts)


@pytest.mark.slow
def test_an_unversioned_grader_edit_regrades_too(ci_run, edited):
    edited("src/sps/tasks/countdown.py", lambda text: text + "\n# a fix nobody versioned\n")
    table, counts = dry_run(ci_run)
    print(f"dry run after editing countdown.py alone:\n{table}")
    regraded(counts)
