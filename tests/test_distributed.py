"""Data-parallel training (gloo, 2 CPU processes) gives the single process's metrics and weights."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from sps.config import ModelConfig, ScheduleConfig, TaskConfig
from sps.models.io import save_model_atomic
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.tasks.data import prepare_countdown
from sps.train.distributed import Dist

SETTINGS = {"steps": 4, "micro_batch_size": 3}
IRL = {"demos": "buffer", "buffer_size": 2}
DROP = ["tokens_per_s", "time_s"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(trainer_dist: Dist | None):
    from test_trainer_scaling import make_trainer  # tests/ is on sys.path (also in workers)

    torch.set_num_threads(1)
    trainer = make_trainer(schedule=ScheduleConfig("fixed", 1, 1), irl=IRL, **SETTINGS)
    trainer.dist = trainer_dist or Dist()
    rows = trainer.run(log=lambda _: None)
    return rows, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        rows, state = _run(Dist(rank, world))
        torch.save({"rows": rows, "state": state}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_share_blocks_concatenate_to_the_whole():
    for n in range(1, 9):
        for world in range(1, 4):
            blocks = [Dist(r, world).share(n) for r in range(world)]
            assert [i for lo, hi in blocks for i in range(lo, hi)] == list(range(n))


def test_two_ranks_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single_rows, single_state = _run(None)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        pd.testing.assert_frame_equal(
            got["rows"].drop(columns=DROP), single_rows.drop(columns=DROP), rtol=1e-7
        )
        for key, value in single_state.items():
            torch.testing.assert_close(got["state"][key], value, rtol=1e-7, atol=1e-10)
    assert list(single_rows["phase"]) == ["rl", "irl", "rl", "irl"]


CFG = {
    "seed": 0,
    "device": "cpu",
    "rl": {"steps": 3, "prompts_per_step": 3, "group_size": 4, "max_new_tokens": 16},
    "irl": IRL,
    "schedule": {"kind": "fixed", "period": 1, "irl_steps": 1},
}


def _cli_train(root: Path, out: str, nproc: int) -> None:
    cmd = [sys.executable, "-m", "sps.cli", "train", "--cfg", json.dumps(CFG)]
    cmd += ["--base", str(root / "base"), "--data", str(root / "data/train.parquet")]
    cmd += ["--out-dir", str(root / out), "--threads", "1", "--nproc", str(nproc)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_cli_nproc_two_relaunches_under_torchrun(tmp_path):
    prepare_countdown(TaskConfig(3, 12, 60, 3, 20, 16, 4), seed=0, out_dir=tmp_path / "data")
    torch.manual_seed(0)
    tok = char_tokenizer()
    save_model_atomic(tiny_llama(ModelConfig(16, 1, 2, 32, 96), tok), tok, tmp_path / "base")
    _cli_train(tmp_path, "one", 1)
    _cli_train(tmp_path, "two", 2)
    one, two = (pd.read_parquet(tmp_path / r / "metrics.parquet") for r in ("one", "two"))
    pd.testing.assert_frame_equal(one.drop(columns=DROP), two.drop(columns=DROP), rtol=1e-4)
    a, b = (load_file(tmp_path / r / "final/model.safetensors") for r in ("one", "two"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
