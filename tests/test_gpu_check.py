"""scripts/gpu_check.sh (the CUDA path in one go) keeps working: its SMOKE mode runs every step
at tiny sizes on the CPU, so a change that breaks a step fails here, not on a rented GPU; and
it ends with one table of every step, also written to $OUT/table.md."""

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    "1a_data",
    "1b_pretrain",
    "1c_train_grpo",
    "1c_train_sps-p1",
    "1d_train_fsdp",
    "1e_resume_fsdp",
    "1g_sample",
    "1h_grade",
    "1i_passk",
    "2_sampling",
]


@pytest.mark.slow
def test_gpu_check_smoke_mode_runs_every_step(tmp_path):
    env = {**os.environ, "SMOKE": "1", "OUT": str(tmp_path)}
    run = subprocess.run(
        ["bash", "scripts/gpu_check.sh"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "all steps passed" in run.stdout
    for step in STEPS:
        assert (tmp_path / f"{step}.log").is_file(), step
    assert (tmp_path / "countdown/passk.parquet").is_file()
    assert "ratio fast/hf" in (tmp_path / "2_sampling.log").read_text()
    assert "lean (micro-batch" in (tmp_path / "3_train_memory.log").read_text()
    assert "parallel fsdp, two AdamW" in (tmp_path / "3d_train_step_fsdp.log").read_text()
    assert "resumed from" in (tmp_path / "1e_resume_fsdp.log").read_text()
    assert {".metadata", "__0_0.distcp"} <= {
        p.name for p in (tmp_path / "countdown/runs/fsdp/checkpoints/step2").iterdir()
    }

    table = (tmp_path / "table.md").read_text()
    assert table in run.stdout  # printed and written: the one table
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    for step in STEPS:
        assert "| pass |" in rows[step], rows.get(step)
    assert "| pass |" in rows["3_train_memory lean"] and "| pass |" in rows["3_train_memory naive"]
    assert "(median step)" in rows["1d_train_fsdp"]  # tokens/s read from the training log
    vllm = "pass" if importlib.util.find_spec("vllm") else "skip (no vllm)"
    for parallel in ("ddp", "fsdp"):
        assert f"| {vllm} |" in rows[f"1f_train_vllm_{parallel}"]
