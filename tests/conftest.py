import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def copy_workflow(work: Path) -> None:
    """The workflow as a user's clone holds it (Snakefile, workflow/, config/, envs/, src/)."""
    shutil.copy(ROOT / "Snakefile", work)
    for sub in ("workflow", "config", "envs", "src"):
        shutil.copytree(ROOT / sub, work / sub, symlinks=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """A copy of the workflow (as a user's clone) with config/ci.yaml run to completion
    locally: the workflow tests read it, and the SLURM test compares its tables with it."""
    work = tmp_path_factory.mktemp("ci_run")
    copy_workflow(work)
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "config/ci.yaml"]
    run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return work
