"""Checks across config keys (sps.config.check_config) run before any job: each combination
that used to fail only inside a job, or gave two runs one path, is refused naming its keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sps.config import ConfigError, check_config, validate

ROOT = Path(__file__).resolve().parents[1]
CUDA = {"device": "cuda"}

# config -> the text its error must hold (the keys it names, with their values)
BAD = {
    "heads do not divide the hidden size": (
        {"model": {"hidden_size": 64, "num_heads": 3}},
        ["model.num_heads (3)", "model.hidden_size (64)"],
    ),
    "odd head dimension": (
        {"model": {"hidden_size": 66, "num_heads": 2}},
        ["model.hidden_size / model.num_heads", "33"],
    ),
    "a pretrained model without a path": ({"model": {"source": "hf"}}, ["model.path"]),
    "passk_k above the group size": (
        {"baselines": {"methods": ["passk-training"], "passk_k": 64}, "rl": {"group_size": 4}},
        ["baselines.passk_k (64)", "rl.group_size (4)", "passk-training"],
    ),
    "two thresholds, one run id": (
        {"sps": {"adaptive": {"thresholds": [0.1, 0.1000001]}}},
        ["sps.adaptive.thresholds", "0.1000001", "sps-a0.1"],
    ),
    "a plot format twice": ({"plots": {"formats": ["png", "png"]}}, ["plots.formats"]),
    "a grid lr_scale its run id rounds": (
        {"sensitivity": {"periods": [1], "lr_scales": [0.1234561, 0.1234564]}},
        ["sensitivity.lr_scales value 0.1234561", "0.123456"],
    ),
    "a grid lr_scale next to the default": (
        {"sensitivity": {"periods": [1], "lr_scales": [1.0000001]}, "irl": {"lr_scale": 1.0}},
        ["sensitivity.lr_scales value 1.0000001"],
    ),
    "shards do not divide n": (
        {"sampling": {"n": 16, "shards": 3}},
        ["sampling.shards (3)", "sampling.n (16)"],
    ),
    "an evaluation step at the end": (
        {"rl": {"steps": 6, "eval_steps": [2, 6]}},
        ["rl.eval_steps [6]", "rl.steps (6)"],
    ),
    "an evaluation step after one benchmark's last": (
        {
            "benchmarks": ["countdown", "svamp"],
            "rl": {"steps": 20, "eval_steps": [6]},
            "per_bench": {"svamp": {"rl": {"steps": 4}}},
        },
        ["rl.eval_steps [6]", "per_bench.svamp.rl.steps (4)"],
    ),  # fmt: skip
    "per_bench for no benchmark": (
        {"per_bench": {"svamq": {"rl": {"steps": 4}}}},
        ["per_bench.svamq", "names no benchmark"],
    ),
    "a chat countdown prompt for the tiny model": (
        {"task": {"prompt": "chat"}},
        ["task.prompt chat", "model.source tiny"],
    ),
    "a chat countdown prompt as plain text": (
        {
            "task": {"prompt": "chat"},
            "model": {"source": "gguf", "path": "m.gguf", "prompt_format": "plain"},
        },
        ["task.prompt chat", "model.prompt_format plain"],
    ),  # fmt: skip
    "more prompts per step than train problems": (
        {"rl": {"prompts_per_step": 8}, "task": {"n_train": 5}},
        ["rl.prompts_per_step (8)", "task.n_train (5)"],
    ),
    "more prompts per step than a benchmark's subset": (
        {"benchmarks": ["gsm8k"], "rl": {"prompts_per_step": 8}, "data": {"n_train": 4}},
        ["rl.prompts_per_step (8)", "data.n_train (4)"],
    ),
    "more training GPUs than prompts": (
        {**CUDA, "gpus": {"train": 16}, "rl": {"prompts_per_step": 8}},
        ["gpus.train (16)", "rl.prompts_per_step (8)"],
    ),
    "more sampling GPUs than test problems": (
        {**CUDA, "gpus": {"sample": 8}, "task": {"n_test": 4}},
        ["gpus.sample (8)", "task.n_test (4)"],
    ),
    "vllm on a CPU": ({"device": "cpu", "sampling": {"backend": "vllm"}}, ["vllm", "cpu"]),
    "fsdp with prompts that do not split evenly": (
        {**CUDA, "gpus": {"train": 3}, "rl": {"prompts_per_step": 8, "parallel": "fsdp"}},
        ["rl.parallel fsdp", "gpus.train (3)", "rl.prompts_per_step (8)"],
    ),
}

GOOD = {
    "the defaults": {},
    "GPU keys off CUDA are not used": {"gpus": {"train": 64, "sample": 512}},
    "passk_k without passk-training": {"baselines": {"passk_k": 64}, "rl": {"group_size": 4}},
    "distinct thresholds": {"sps": {"adaptive": {"thresholds": [0.1, 0.1001]}}},
    "the whole benchmark (n_train 0)": {"benchmarks": ["gsm8k"], "rl": {"prompts_per_step": 64}},
    "vllm shards on many GPUs": {**CUDA, "gpus": {"sample": 8}, "sampling": {"backend": "vllm"}},
    "ddp with uneven prompts": {**CUDA, "gpus": {"train": 3}, "rl": {"prompts_per_step": 8}},
    "per_bench for a benchmark not run (benchmarks=[...] on the command line)": {
        "per_bench": {"svamp": {"rl": {"steps": 4}}},
    },
    "a chat countdown prompt for a chat model": {
        "task": {"prompt": "chat"},
        "model": {"source": "gguf", "path": "m.gguf"},
    },
    "fewer steps for one benchmark, no snapshot": {
        "benchmarks": ["countdown", "svamp"],
        "rl": {"eval_steps": []},
        "per_bench": {"svamp": {"rl": {"steps": 4}, "sampling": {"max_new_tokens": 96}}},
    },
    "fsdp with even prompts": {
        **CUDA,
        "gpus": {"train": 4},
        "rl": {"prompts_per_step": 8, "parallel": "fsdp"},
    },
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_keys_that_disagree_are_named(case):
    cfg, names = BAD[case]
    with pytest.raises(ConfigError) as err:
        check_config(validate(cfg))
    for name in names:
        assert name in str(err.value), str(err.value)


@pytest.mark.parametrize("case", sorted(GOOD))
def test_consistent_configs_pass(case):
    check_config(validate(GOOD[case]))


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_passes(path):
    check_config(validate(yaml.safe_load(path.read_text()) or {}))


def test_every_problem_is_listed_at_once():
    cfg = {"model": {"num_heads": 3}, "sampling": {"n": 16, "shards": 3}}
    with pytest.raises(ConfigError) as err:
        check_config(validate(cfg))
    assert "model.num_heads" in str(err.value) and "sampling.shards" in str(err.value)


def test_the_workflow_refuses_before_any_job():
    """Two thresholds that spell one run id used to train one run and fail in analyze."""
    thresholds = "sps={adaptive: {thresholds: [0.1, 0.1000001]}}"
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
           "config/ci.yaml", "--config", thresholds]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "sps.adaptive.thresholds" in text and "sps-a0.1" in text, text
    assert "Job stats" not in text  # no DAG: refused before any job was scheduled
