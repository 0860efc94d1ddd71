"""`sps train` with rl.parallel fsdp on two CPU processes (torchrun, gloo): SIGKILLed after a
sharded checkpoint, it resumes to the uninterrupted run's metrics and final weights; and a
rerun with other settings moves the stale run's tracking files aside with its checkpoints."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from sps.cli import main
from sps.config import ModelConfig, TaskConfig
from sps.models.io import save_model_atomic
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.tasks.data import prepare_countdown

CFG = {
    "seed": 0,
    "device": "cpu",
    "rl": {
        "steps": 12,
        "prompts_per_step": 2,
        "group_size": 4,
        "max_new_tokens": 16,
        "checkpoint_every": 2,
        "keep_checkpoints": 2,
        "eval_steps": [3],
        "parallel": "fsdp",
        "micro_batch_size": 3,
    },
    "irl": {"demos": "buffer", "buffer_size": 2},
    "schedule": {"kind": "fixed", "period": 1, "irl_steps": 1},
}
DROP = ["tokens_per_s", "time_s"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fsdp_cli")
    prepare_countdown(TaskConfig(3, 12, 60, 3, 20, 16, 4), seed=0, out_dir=root / "data")
    torch.manual_seed(0)
    tok = char_tokenizer()
    save_model_atomic(tiny_llama(ModelConfig(16, 1, 2, 32, 96), tok), tok, root / "base")
    return root


def argv(root: Path, out: str, cfg: dict, nproc: int = 1) -> list[str]:
    args = ["train", "--cfg", json.dumps(cfg), "--base", str(root / "base")]
    args += ["--data", str(root / "data/train.parquet"), "--out-dir", str(root / out)]
    return [*args, "--threads", "1", "--nproc", str(nproc)]


def train(root: Path, out: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sps.cli", *argv(root, out, CFG, nproc=2)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def test_killed_sharded_run_resumes_to_the_same_metrics(setup):
    whole, killed = train(setup, "whole"), train(setup, "killed")
    deadline = time.time() + 600
    while not (setup / "killed/checkpoints/step4").is_dir():
        assert killed.poll() is None and time.time() < deadline, "no checkpoint before exit"
        time.sleep(0.02)
    for pid in reversed(process_tree(killed.pid)):  # the workers first, then their launchers
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    assert not (setup / "killed/metrics.parquet").exists()

    resumed = train(setup, "killed")
    log = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, log
    assert "resumed from" in log, log
    assert whole.wait(timeout=600) == 0, whole.communicate()[0]
    a, b = (pd.read_parquet(setup / r / "metrics.parquet") for r in ("killed", "whole"))
    pd.testing.assert_frame_equal(a.drop(columns=DROP), b.drop(columns=DROP))
    a, b = (load_file(setup / r / "final/model.safetensors") for r in ("killed", "whole"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])
    assert (setup / "killed/evals/step3/config.json").is_file()
    shards = {p.name for p in (setup / "killed/checkpoints/step10").iterdir()}
    assert {"__0_0.distcp", "__1_0.distcp", ".metadata", "state.json"} <= shards


def test_rerun_moves_the_stale_runs_tracking_aside(setup):
    short = {**CFG, "rl": {**CFG["rl"], "steps": 2, "eval_steps": [], "parallel": "ddp"}}
    other = {**short, "rl": {**short["rl"], "lr": 0.002}}
    for cfg in (short, other):
        with contextlib.redirect_stdout(io.StringIO()):
            main(argv(setup, "tracked", cfg))
    run = setup / "tracked"
    (stale,) = run.glob("checkpoints.stale-*")
    old = {p.name for p in (stale / "outputs/tb").iterdir()}
    new = {p.name for p in (run / "tb").iterdir()}
    assert old and new and not old & new  # before: the fresh run wrote beside the old files
