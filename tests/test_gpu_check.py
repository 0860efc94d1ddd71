"""scripts/gpu_check.sh (the CUDA path in one go) keeps working: its SMOKE mode runs every step
at tiny sizes on the CPU, so a change that breaks a step fails here, not on a rented GPU."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_mode_runs_every_step(tmp_path):
    env = {**os.environ, "SMOKE": "1", "OUT": str(tmp_path)}
    run = subprocess.run(
        ["bash", "scripts/gpu_check.sh"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "all steps passed" in run.stdout
    for step in ("1b_pretrain", "1c_train_grpo", "1c_train_sps-p1", "1d_sample", "2_sampling"):
        assert (tmp_path / f"{step}.log").is_file(), step
    assert (tmp_path / "countdown/passk.parquet").is_file()
    assert "ratio fast/hf" in (tmp_path / "2_sampling.log").read_text()
    assert "lean (micro-batch" in (tmp_path / "3_train_memory.log").read_text()
