"""A sampling job given several GPUs splits its problems across one process per GPU and
writes one table, as a one-process job would lay it out (here on the CPU, two processes)."""

import json
import subprocess
import sys

import pandas as pd
import torch

from sps.config import ModelConfig, TaskConfig
from sps.models.io import save_model_atomic
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.rollout.evaluate import SAMPLE_COLUMNS
from sps.tasks.data import prepare_countdown

CFG = {"seed": 0, "device": "cpu", "sampling": {"n": 8, "shards": 2, "max_new_tokens": 12}}


def sample(tmp_path, gpus: int):
    out = tmp_path / f"gpus{gpus}.parquet"
    cmd = [sys.executable, "-m", "sps.cli", "sample", "--cfg", json.dumps(CFG), "--model",
           str(tmp_path / "base"), "--data", str(tmp_path / "data/test.parquet"), "--shard",
           "1", "--gpus", str(gpus), "--out", str(out)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return pd.read_parquet(out)


def test_two_parts_give_one_table_in_problem_order(tmp_path):
    prepare_countdown(TaskConfig(3, 12, 60, 3, 4, 4, 5), seed=0, out_dir=tmp_path / "data")
    torch.manual_seed(0)
    tok = char_tokenizer()
    save_model_atomic(tiny_llama(ModelConfig(16, 1, 2, 32, 96), tok), tok, tmp_path / "base")
    one, two = sample(tmp_path, 1), sample(tmp_path, 2)
    assert list(two.columns) == list(one.columns) == SAMPLE_COLUMNS  # no grades
    # same layout: problems in data order, each with shard 1's sample indices 4..7
    assert two["problem_id"].tolist() == one["problem_id"].tolist()
    assert two["sample_idx"].tolist() == one["sample_idx"].tolist() == [4, 5, 6, 7] * 5
    assert not list(tmp_path.glob("*.part*"))  # the parts are merged and removed
