"""The SLURM profile against a real SLURM: a throwaway single-node cluster on this machine
(scripts/slurm/start_cluster.sh: Debian's slurm 22.05, munge, two fake GPUs), config/ci.yaml
run through workflow/profiles/slurm, and a job killed for memory that is retried with more.

Needs root and the slurm packages (installed with apt-get when missing); skips, naming the
reason, where either is missing or the cluster does not start. Its reference is the session's
local run of config/ci.yaml (the `ci_run` fixture, shared with tests/test_workflow.py). Through
SLURM every job pays for a fresh interpreter, a workflow parse and status polls (5-60 s), so the
test asks for the base and GRPO Pass@k tables only: 13 jobs, every kind of submission (a CPU job,
GPU jobs, grouped scoring), a few minutes on 2 cores. The memory retry takes about 1 min.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import copy_workflow  # tests/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts/slurm"
PROFILE = ROOT / "workflow/profiles/slurm/config.yaml"
PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    """Jobs run with the submitter's environment (--export=ALL): put this venv's `sps` first."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def snakemake(*args: str, cwd: Path, limit: int = 900) -> subprocess.CompletedProcess:
    # `timeout -k`: without accounting a lost job could leave the status loop waiting forever
    cmd = ["timeout", "-k", "15", str(limit), sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env())


def _install_reason() -> str | None:
    """None when the slurm daemons are installed (after apt-get if needed), else why not."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux to start slurmctld/slurmd"
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged")):
        return None
    if shutil.which("apt-get") is None:
        return "slurm is not installed and apt-get is unavailable"
    out = subprocess.run(
        ["timeout", "600", "apt-get", "install", "-y", *PACKAGES],
        capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )  # fmt: skip
    if out.returncode != 0:
        return f"apt-get install {' '.join(PACKAGES)} failed: {out.stderr[-500:]}"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = _install_reason()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm_state")
    start = subprocess.run(
        ["timeout", "120", SCRIPTS / "start_cluster.sh", state, "2"], capture_output=True, text=True
    )
    if start.returncode != 0:
        subprocess.run([SCRIPTS / "stop_cluster.sh", state], capture_output=True)
        pytest.skip(f"the test SLURM cluster did not start: {start.stderr[-1500:]}")
    yield state
    subprocess.run(["timeout", "60", SCRIPTS / "stop_cluster.sh", state], capture_output=True)


def _test_profile(work: Path) -> Path:
    """The repository's SLURM profile with what this one-node test cluster needs: the squeue
    status check (no accounting database), short polling, memory that fits the node, logs of
    successful jobs kept, and a GPU requested by the training and sampling jobs although the
    ci config computes on the CPU (the node's GPUs are fake)."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile.update(
        {
            "jobs": 4,
            "slurm-status-command": "squeue",
            "slurm-init-seconds-before-status-checks": 5,
            "slurm-keep-successful-logs": True,
            "latency-wait": 5,
            "keep-going": False,
            "verbose": True,  # the plugin logs its sbatch calls at debug level
        }
    )
    profile["set-resources"]["train"].update({"mem_mb": "3000 * attempt", "gpu": 1})
    profile["set-resources"]["sample"].update({"mem_mb": "3000 * attempt", "gpu": 1})
    # one model's grade shards (2 in parallel, 1 CPU each) and its Pass@k per group job: the
    # job asks for 2 CPUs, the whole node; a group job larger than the node would pend forever
    profile["group-components"]["score"] = 1
    target = work / "test_profile"
    target.mkdir()
    (target / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return target


def sbatch_calls(log: str) -> dict[str, list[str]]:
    """Rule (or group) -> the sbatch calls the plugin logged for it."""
    calls: dict[str, list[str]] = {}
    for line in log.splitlines():
        if line.startswith("sbatch call: "):
            rule = re.search(r"--comment '?rule_(\w+?)(?:_wildcards_|'| )", line)
            calls.setdefault(rule[1] if rule else "?", []).append(line)
    return calls


def test_ci_config_through_the_slurm_profile(cluster, ci_run, tmp_path):
    local, remote = ci_run, tmp_path / "slurm"  # the local run of the same config: reference
    remote.mkdir()
    copy_workflow(remote)

    profile = _test_profile(remote)
    targets = [f"results/passk/{model}/countdown.parquet" for model in ("base", "grpo")]
    run = snakemake(
        *targets, "--workflow-profile", str(profile), "--configfile", "config/ci.yaml", cwd=remote
    )
    log = run.stdout + run.stderr
    (tmp_path / "slurm_run.log").write_text(log)
    calls = sbatch_calls(log)
    print("\n".join(line[: line.find(" --wrap=")] for lines in calls.values() for line in lines))
    assert run.returncode == 0, log[-6000:]

    # every submitted job went through sbatch and left its SLURM log
    slurm_logs = remote / ".snakemake/slurm_logs"
    assert {"pretrain_base", "train", "sample"} <= set(calls), sorted(calls)
    assert sum(1 for _ in slurm_logs.rglob("*.log")) == sum(map(len, calls.values()))
    assert any(p.name.startswith("rule_sample") for p in slurm_logs.iterdir())
    # a GPU rule asked SLURM for a GPU; a CPU rule did not; scoring went in group jobs
    assert all("--gpus=1" in call for call in calls["train"] + calls["sample"])
    assert not any("--gpus" in call for call in calls["pretrain_base"])
    assert all("--mem 3000 " in call for call in calls["sample"])
    assert any(rule.startswith("score") for rule in calls), sorted(calls)
    # ... and the results equal the local run's
    for table in targets:
        pd.testing.assert_frame_equal(
            pd.read_parquet(remote / table), pd.read_parquet(local / table), obj=table
        )


def test_job_killed_for_memory_is_retried_with_more(cluster, tmp_path):
    shutil.copy(ROOT / "tests/data/slurm_oom/Snakefile", tmp_path)
    run = snakemake(
        "--executor", "slurm", "--jobs", "1", "--retries", "1", "--verbose",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5",
        "--slurm-keep-successful-logs", cwd=tmp_path, limit=300,
    )  # fmt: skip
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    mems = re.findall(r"^sbatch call: .* --mem (\d+) ", log, re.M)
    print("sbatch --mem per attempt:", mems)
    assert mems == ["400", "800"]
    first, second = sorted(
        (tmp_path / ".snakemake/slurm_logs/rule_hog").glob("*.log"), key=lambda p: int(p.stem)
    )
    assert "exceeded memory limit" in first.read_text()
    assert "exceeded memory limit" not in second.read_text()
    assert (tmp_path / "hog.txt").read_text().startswith(f"mem_mb=800 job={second.stem}")
