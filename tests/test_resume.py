"""A training job killed with SIGKILL resumes from its checkpoint and ends exactly where an
uninterrupted run ends (CPU, fixed seed); a rerun with other settings starts afresh, a retry
after a crash at any point finishes, and a damaged checkpoint falls back to an older one."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from sps.cli import main
from sps.config import ModelConfig, TaskConfig
from sps.models.io import save_model_atomic
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.tasks.data import prepare_countdown

CFG = {
    "seed": 0,
    "device": "cpu",
    "rl": {
        "steps": 40,
        "prompts_per_step": 2,
        "group_size": 4,
        "max_new_tokens": 24,
        "checkpoint_every": 2,
        "keep_checkpoints": 2,
        "eval_steps": [3],
    },
    "irl": {"demos": "buffer", "buffer_size": 2},
    "schedule": {"kind": "fixed", "period": 1, "irl_steps": 1},
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    prepare_countdown(TaskConfig(3, 12, 60, 3, 20, 16, 4), seed=0, out_dir=root / "data")
    torch.manual_seed(0)
    tok = char_tokenizer()
    save_model_atomic(tiny_llama(ModelConfig(16, 1, 2, 32, 96), tok), tok, root / "base")
    return root


def train(root: Path, out: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "sps.cli",
        "train",
        "--cfg",
        json.dumps(CFG),
        "--base",
        str(root / "base"),
        "--data",
        str(root / "data/train.parquet"),
        "--out-dir",
        str(root / out),
        "--threads",
        "1",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def comparable(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).drop(columns=["tokens_per_s", "time_s"])


def test_killed_run_resumes_to_the_same_metrics(setup):
    whole = train(setup, "whole")
    killed = train(setup, "killed")
    deadline = time.time() + 300
    while not (setup / "killed/checkpoints/step4").is_dir():
        assert killed.poll() is None and time.time() < deadline, "no checkpoint before exit"
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    assert not (setup / "killed/metrics.parquet").exists()  # nothing that looks complete

    resumed = train(setup, "killed")
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log
    assert "resumed from" in log
    assert whole.wait(timeout=600) == 0
    pd.testing.assert_frame_equal(
        comparable(setup / "killed/metrics.parquet"), comparable(setup / "whole/metrics.parquet")
    )
    assert (setup / "killed/evals/step3/config.json").is_file()
    kept = sorted(p.name for p in (setup / "killed/checkpoints").glob("step*"))
    assert len(kept) == 2  # pruned to keep_checkpoints


SHORT = {**CFG, "rl": {**CFG["rl"], "steps": 8, "lr": 0.0002}}  # checkpoints 2, 4, 6; keeps 4, 6


def with_rl(**changed) -> dict:
    return {**SHORT, "rl": {**SHORT["rl"], **changed}}


def argv(root: Path, out: Path, cfg: dict) -> list[str]:
    data = str(root / "data/train.parquet")
    args = ["--base", str(root / "base"), "--data", data, "--out-dir", str(out)]
    return ["train", "--cfg", json.dumps(cfg), *args, "--threads", "1"]


def sps_train(root: Path, out: Path, cfg: dict = SHORT) -> str:
    """`sps train` in this process (no interpreter start-up); returns its log."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        main(argv(root, out, cfg))
    return log.getvalue()


@pytest.fixture(scope="module")
def complete(setup) -> Path:
    """A finished 8-step run with an evaluation snapshot after step 3."""
    sps_train(setup, setup / "complete")
    return setup / "complete"


@pytest.fixture(scope="module")
def complete_no_evals(setup) -> Path:
    """The same without evaluation snapshots (`rl.eval_steps: []`)."""
    sps_train(setup, setup / "complete_no_evals", with_rl(eval_steps=[]))
    return setup / "complete_no_evals"


@pytest.fixture
def run(complete, tmp_path) -> Path:
    """A copy of the complete run for one test to rerun."""
    shutil.copytree(complete, tmp_path / "run")
    return tmp_path / "run"


def same_metrics(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(
        comparable(a / "metrics.parquet"), comparable(b / "metrics.parquet")
    )


def filecmp_trees(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    same = files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return same and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


@pytest.mark.parametrize("evals", [[], [3]])
def test_rerun_with_another_lr_is_the_fresh_run(setup, request, tmp_path, evals):
    # before: with eval_steps [] the lr column mixed both runs; with [3] every retry failed
    complete = request.getfixturevalue("complete" if evals else "complete_no_evals")
    run = shutil.copytree(complete, tmp_path / "run")
    log = sps_train(setup, run, with_rl(lr=0.002, eval_steps=evals))
    sps_train(setup, tmp_path / "fresh", with_rl(lr=0.002, eval_steps=evals))
    same_metrics(run, tmp_path / "fresh")
    assert "starting fresh" in log and "rl.lr 0.0002 -> 0.002" in log, log
    (stale,) = run.glob("checkpoints.stale-*")
    same_metrics(stale / "outputs", complete)  # the old run, kept whole


def test_rerun_with_fewer_steps_is_the_fresh_run(setup, run, tmp_path):
    log = sps_train(setup, run, with_rl(steps=4))
    sps_train(setup, tmp_path / "fresh", with_rl(steps=4))
    assert len(pd.read_parquet(run / "metrics.parquet")) == 4  # before: the 6 of its checkpoint
    same_metrics(run, tmp_path / "fresh")
    assert "rl.steps 8 -> 4" in log, log
    assert filecmp_trees(run / "evals/step3", tmp_path / "fresh/evals/step3")


# Kill `sps train` with SIGKILL where it is about to write metrics.parquet, its last file:
# after the evaluation snapshots went to evals/ and final/ was saved. The hook is the test's.
KILL_AT_METRICS = """
import os, signal, sys
import sps.io
write = sps.io.write_parquet_atomic
def killed(df, path):
    if str(path).endswith("metrics.parquet"):
        os.kill(os.getpid(), signal.SIGKILL)
    write(df, path)
sps.io.write_parquet_atomic = killed
from sps.cli import main
main(sys.argv[1:])
"""


def test_retry_after_a_kill_between_snapshots_and_metrics(setup, complete, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", KILL_AT_METRICS, *argv(setup, out, SHORT)]
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "evals/step3").is_dir() and not (out / "metrics.parquet").exists()
    log = sps_train(setup, out)  # before: No such file or directory: .../checkpoints/evals/step3
    assert "resumed from" in log
    same_metrics(out, complete)
    assert filecmp_trees(out / "evals/step3", complete / "evals/step3")


def test_rerun_after_the_outputs_were_deleted(setup, run, complete):
    # what `snakemake --forcerun train` does before it starts the job again
    for output in ("final", "evals"):
        shutil.rmtree(run / output)
    (run / "metrics.parquet").unlink()
    log = sps_train(setup, run)
    assert "resumed from" in log
    same_metrics(run, complete)
    assert filecmp_trees(run / "evals/step3", complete / "evals/step3")


@pytest.mark.parametrize("name", ["model.safetensors", "optim.pt", "state.json", "metrics.parquet"])
def test_truncated_newest_checkpoint_falls_back_to_the_older_one(setup, run, complete, name):
    bad = run / "checkpoints/step6" / name
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    log = sps_train(setup, run)
    assert str(bad) in log and "resumed from" in log and "step4 after 4 steps" in log, log
    same_metrics(run, complete)


def test_no_intact_checkpoint_starts_fresh(setup, run, complete):
    for step in (4, 6):
        bad = run / f"checkpoints/step{step}/model.safetensors"
        bad.write_bytes(bad.read_bytes()[:100])
    log = sps_train(setup, run)
    assert "no checkpoint" in log and "starting fresh" in log and "resumed" not in log, log
    same_metrics(run, complete)
