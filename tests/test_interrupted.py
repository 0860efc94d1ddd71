"""README, "When a run is interrupted", followed as written: Snakemake killed hard in the middle
of a job (kill -9 of its whole process group, as a closed terminal or the OOM killer would) leaves
the directory locked and no output that looks complete; the two commands the README gives
finish the run, with the same table as an uninterrupted run (the `ci_run` fixture)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import copy_workflow  # tests/ is on sys.path
from test_workflow import snakemake

TARGET = "results/passk/base/countdown.parquet"
CONFIG = ["--configfile", "config/ci.yaml"]

pytestmark = pytest.mark.slow


def kill_during_pretraining(work: Path) -> None:
    """Start the run and SIGKILL Snakemake and its jobs once pretraining has written a log
    line (the job is under way, its output not yet in place)."""
    cmd = [sys.executable, "-m", "snakemake", TARGET, "--cores", "2", *CONFIG]
    proc = subprocess.Popen(
        cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    log = work / "logs/pretrain_base.log"
    deadline = time.monotonic() + 300
    while not (log.is_file() and log.stat().st_size) and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before pretraining started"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert log.is_file(), "pretraining never started"


def test_the_readme_recovery_after_a_hard_kill(ci_run, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    copy_workflow(work)

    kill_during_pretraining(work)
    base = work / "results/models/base"
    assert not (base / "config.json").exists(), "a killed job left an output that looks complete"

    plain = snakemake(TARGET, "--cores", "2", *CONFIG, cwd=work)
    assert plain.returncode != 0
    assert "LockException" in plain.stdout + plain.stderr

    # the README's two commands, as written there
    unlock = snakemake("--unlock", *CONFIG, cwd=work)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    rerun = snakemake(TARGET, "--cores", "2", "--rerun-incomplete", *CONFIG, cwd=work)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(work / TARGET), pd.read_parquet(ci_run / TARGET))
