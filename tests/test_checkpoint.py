"""Checkpoints bound to the run that wrote them (fingerprint, bind), checked before they are
applied (read_checkpoint, newest_intact), and snapshots published idempotently (publish)."""

import json
import os
from pathlib import Path

import pytest
import torch

from sps.config import ModelConfig
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.train.checkpoint import (
    CorruptCheckpoint,
    newest_intact,
    publish,
    read_checkpoint,
    save_checkpoint,
)
from sps.train.fingerprint import FINGERPRINT, bind, changes, digest, run_fingerprint

LAUNCH = {"device": "cpu", "processes": 1, "threads": 1}
SETTINGS = {
    "seed": 0,
    "rl": {"lr": 0.0002, "steps": 8, "checkpoint_every": 2, "keep_checkpoints": 2},
    "baselines": {"methods": ["w-reinforce"], "entropy_coef": 0.01},
}


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path]:
    base = tmp_path / "base"
    (base / "sub").mkdir(parents=True)
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"weights" * 1000)
    (base / "sub" / "tokenizer.json").write_text("{}")
    data = tmp_path / "train.parquet"
    data.write_bytes(b"rows")
    return base, data


def _with(settings: dict, section: str, **changed) -> dict:
    return {**settings, section: {**settings[section], **changed}}


def test_fingerprint_covers_settings_launch_base_model_and_data(inputs):
    base, data = inputs
    fp = digest(run_fingerprint(SETTINGS, base, data, LAUNCH))
    assert fp == digest(run_fingerprint(SETTINGS, base, data, LAUNCH))
    # settings that provably do not change the run are left out
    for section, key, value in [
        ("rl", "checkpoint_every", 4),
        ("rl", "keep_checkpoints", 5),
        ("baselines", "methods", []),
    ]:
        same = _with(SETTINGS, section, **{key: value})
        assert digest(run_fingerprint(same, base, data, LAUNCH)) == fp, key
    others = [
        run_fingerprint(_with(SETTINGS, "rl", lr=0.002), base, data, LAUNCH),
        run_fingerprint({**SETTINGS, "seed": 1}, base, data, LAUNCH),
        run_fingerprint(SETTINGS, base, data, {**LAUNCH, "threads": 2}),
    ]
    assert all(digest(p) != fp for p in others)
    for changed in (base / "sub" / "tokenizer.json", base / "model.safetensors", data):
        saved = changed.read_bytes()
        changed.write_bytes(saved[:-1] + b"X")
        assert digest(run_fingerprint(SETTINGS, base, data, LAUNCH)) != fp, changed
        changed.write_bytes(saved)


def test_changes_name_each_setting_and_file():
    old = {"settings": {"rl": {"lr": 0.0002, "steps": 8}}, "data": {"train": "a" * 64}}
    new = {"settings": {"rl": {"lr": 0.002, "steps": 8}, "seed": 1}, "data": {"train": "b" * 64}}
    assert changes(old, new) == [
        "data.train aaaaaaaaaaaa -> bbbbbbbbbbbb",
        "rl.lr 0.0002 -> 0.002",
        "seed (absent) -> 1",
    ]
    assert changes(old, old) == []


def test_bind_resumes_only_its_own_checkpoints(inputs, tmp_path):
    base, data = inputs
    run = tmp_path / "run"
    root, logs = run / "checkpoints", []
    parts = run_fingerprint(SETTINGS, base, data, LAUNCH)
    outputs = [run / "metrics.parquet", run / "final", run / "evals"]
    (run / "evals").mkdir(parents=True)  # empty: Snakemake makes it before the job
    assert bind(root, parts, logs.append, outputs) is False  # fresh, nothing moved
    assert json.loads((root / FINGERPRINT).read_text())["parts"] == parts
    assert logs == [] and (run / "evals").is_dir()
    (root / "step2").mkdir()
    (run / "metrics.parquet").write_text("old")
    assert bind(root, parts, logs.append, outputs) is True  # the same run: resume
    assert (root / "step2").is_dir() and logs == []

    changed = run_fingerprint(_with(SETTINGS, "rl", lr=0.002), base, data, LAUNCH)
    assert bind(root, changed, logs.append, outputs) is False
    (stale,) = run.glob("checkpoints.stale-*")
    assert stale.name.startswith(f"checkpoints.stale-{digest(parts)[:12]}-")
    assert (stale / "step2").is_dir() and (stale / "outputs" / "metrics.parquet").is_file()
    assert not (run / "metrics.parquet").exists() and list(root.iterdir()) == [root / FINGERPRINT]
    assert "rl.lr 0.0002 -> 0.002" in logs[0] and str(stale) in logs[1]


@pytest.mark.parametrize("fingerprint", [None, '{"digest": "x", "par'])
def test_bind_moves_aside_checkpoints_without_a_readable_fingerprint(tmp_path, fingerprint):
    root, logs = tmp_path / "checkpoints", []
    (root / "step4").mkdir(parents=True)
    if fingerprint is not None:
        (root / FINGERPRINT).write_text(fingerprint)
    assert bind(root, {"settings": {}}, logs.append) is False
    (stale,) = tmp_path.glob("checkpoints.stale-unknown-*")
    assert (stale / "step4").is_dir() and not (root / "step4").exists()
    assert f"no readable {root / FINGERPRINT}" in logs[0]


def test_publish_is_a_linked_copy_that_a_retry_completes(tmp_path):
    src, dst = tmp_path / "staged" / "step3", tmp_path / "evals" / "step3"
    (src / "sub").mkdir(parents=True)
    (src / "model.safetensors").write_bytes(b"w" * 100)
    (src / "sub" / "config.json").write_text("{}")
    dst.parent.mkdir()

    def tree(folder: Path) -> dict:
        return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    publish(src, dst)
    assert tree(dst) == tree(src)
    assert os.path.samefile(dst / "model.safetensors", src / "model.safetensors")
    # what a crash leaves at each point: a half-built temporary, a removed or stale dst
    (dst.with_name(".step3.tmp") / "junk").mkdir(parents=True)
    (dst / "model.safetensors").unlink()
    publish(src, dst)
    assert tree(dst) == tree(src) and not dst.with_name(".step3.tmp").exists()
    os.rename(dst, tmp_path / "gone")
    publish(src, dst)
    assert tree(dst) == tree(src)
    with pytest.raises(FileNotFoundError, match="staged/step4: missing"):
        publish(src.with_name("step4"), dst.with_name("step4"))


def _model(hidden: int = 16):
    torch.manual_seed(hidden)
    return tiny_llama(ModelConfig(hidden, 1, 2, 32, 64), char_tokenizer())


def _opts(model) -> dict:
    return {k: torch.optim.AdamW(model.parameters(), lr=1e-3) for k in ("rl", "irl")}


def _saved(root: Path, steps: list[int]) -> None:
    model = _model()
    for step in steps:
        save_checkpoint(root, step, model, _opts(model), [{"step": i} for i in range(step)], 9)


@pytest.mark.parametrize("name", ["model.safetensors", "optim.pt", "metrics.parquet", "state.json"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_file_names_itself_and_the_older_checkpoint_loads(tmp_path, name, damage):
    _saved(tmp_path, [2, 4])
    bad = tmp_path / "step4" / name
    data = bad.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    else:  # same size, one byte changed: caught by the sha256 in state.json
        i = len(data) // 2
        bad.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    model, logs = _model(), []
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opts = _opts(model)
    path, ckpt = newest_intact(tmp_path, lambda p: read_checkpoint(p, model, opts), logs.append)
    assert path.name == "step2" and ckpt.step == 2 and len(ckpt.rows) == 2
    assert len(logs) == 1 and str(bad) in logs[0], logs
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_checkpoint_of_another_model_is_refused_before_anything_changes(tmp_path):
    _saved(tmp_path, [2])
    model = _model(hidden=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CorruptCheckpoint, match=r"step2/model\.safetensors: does not fit"):
        read_checkpoint(tmp_path / "step2", model, _opts(model))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_no_intact_checkpoint_gives_none(tmp_path):
    _saved(tmp_path, [2, 4])
    for step in (2, 4):
        (tmp_path / f"step{step}" / "state.json").write_text("")
    model, logs = _model(), []
    read = lambda p: read_checkpoint(p, model, _opts(model))  # noqa: E731
    assert newest_intact(tmp_path, read, logs.append) is None
    assert [Path(line.split(": ")[1]).parent.name for line in logs] == ["step4", "step2"]
