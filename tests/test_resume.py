"""A training job killed with SIGKILL resumes from its checkpoint and ends exactly where an
uninterrupted run ends (CPU, fixed seed)."""

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
