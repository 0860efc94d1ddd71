"""Lint gates CI also runs: ruff on the package and tests, snakefmt on the workflow."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_clean():
    out = run(sys.executable, "-m", "ruff", "check", "src", "tests")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("snakefmt") is None, reason="snakefmt not installed")
def test_snakefmt_clean():
    out = run("snakefmt", "--check", "Snakefile", "workflow")
    assert out.returncode == 0, out.stdout + out.stderr
