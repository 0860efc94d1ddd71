"""Resumable training state: model, optimizer states, the metrics so far, written atomically.

Everything else a step needs is derived from (seed, step): the prompts it draws and the seeds
of its rollouts. So restoring these files and continuing at the saved step reproduces an
uninterrupted run exactly on the CPU (and within noise on a GPU).

A checkpoint is `step{k}/`: model.safetensors, optim.pt, metrics.parquet, and state.json last,
which holds the step and the size and sha256 of the other three. A checkpoint that does not
load (a truncated or damaged file) raises CorruptCheckpoint naming the file, before anything
is changed, and `newest_intact` falls back to the next older one. Which run a checkpoint
directory belongs to is sps.train.fingerprint's business, not this module's.

Sharded (`rl.parallel: fsdp`): `step{k}/` holds torch.distributed.checkpoint's files (each
process writes its own shards of the model and both optimizer states; `.metadata` says where
every piece is), metrics.parquet, and state.json, written by rank 0 after the barrier that
ends the save, with the size and sha256 of every other file. So a torn checkpoint (a process
killed during the save) has no state.json, or one whose manifest does not match, and is never
taken as intact. Rank 0 checks them (`read_sharded`) and picks the one to resume; every
process then loads its own shards from it (`Sharded.apply`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd
import torch
from safetensors.torch import load_file, save_model

from sps.train.fingerprint import file_digest

STEP_DIR = re.compile(r"^step(\d+)$")
FILES = ("model.safetensors", "optim.pt", "metrics.parquet")  # listed in state.json
T = TypeVar("T")


class CorruptCheckpoint(Exception):
    """A checkpoint file does not load; the message names the file and what is wrong."""


def save_checkpoint(
    root: str | Path,
    done: int,
    model,
    opts: dict,
    rows: list[dict],
    keep: int,
    extra: dict | None = None,
) -> Path:
    """Write `root/step{done}/` via a temporary folder and a rename; prune to `keep` newest."""
    root = Path(root)
    final, tmp = root / f"step{done}", root / f".step{done}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    states = {name: opt.state_dict() for name, opt in opts.items()}
    # Steps draw their prompts and rollout noise from (seed, step), not from global RNGs; the
    # torch RNG is saved anyway so that any future use of it resumes exactly too.
    states["torch_rng"] = torch.get_rng_state()
    torch.save(states, tmp / "optim.pt")
    pd.DataFrame(rows).to_parquet(tmp / "metrics.parquet", index=False)
    state = {"step": done, "files": manifest(tmp, FILES), "extra": extra or {}}
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return final


def checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m[1]), p) for p in root.iterdir() if (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def manifest(folder: Path, names: Iterable[str]) -> dict[str, dict]:
    """{name: {bytes, sha256}} of files in `folder`, for `check_manifest` at load time."""
    return {
        n: {"bytes": (folder / n).stat().st_size, "sha256": file_digest(folder / n)} for n in names
    }


def check_manifest(folder: Path, files: dict[str, dict]) -> None:
    """Raise CorruptCheckpoint naming the first file whose size or sha256 differs."""
    for name, want in files.items():
        path = folder / name
        if not (isinstance(want, dict) and {"bytes", "sha256"} <= set(want)):
            raise CorruptCheckpoint(f"{path}: no size and sha256 recorded for it")
        if not path.is_file():
            raise CorruptCheckpoint(f"{path}: missing")
        size = path.stat().st_size
        if size != want["bytes"]:
            raise CorruptCheckpoint(f"{path}: {size} bytes, written with {want['bytes']}")
        if file_digest(path) != want["sha256"]:
            raise CorruptCheckpoint(f"{path}: contents differ from when it was written")


def _read(path: Path, reader: Callable[[Path], T]) -> T:
    try:
        return reader(path)
    # any parser's error (JSON, safetensors, zip, pickle, parquet, OS) means this file is bad
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CorruptCheckpoint(f"{path}: {type(exc).__name__}: {first}") from None


@dataclass
class Checkpoint:
    """A checkpoint read and checked in memory; `apply` then cannot fail half-way."""

    path: Path
    step: int
    weights: dict[str, torch.Tensor]
    optim: dict
    rows: list[dict]
    extra: dict

    def apply(self, model: torch.nn.Module, opts: dict) -> None:
        model.load_state_dict(self.weights, strict=False)  # keys checked by read_checkpoint
        for name, opt in opts.items():
            opt.load_state_dict(self.optim[name])
        torch.set_rng_state(self.optim["torch_rng"])


def read_checkpoint(path: str | Path, model: torch.nn.Module, opts: dict) -> Checkpoint:
    """Read every file of checkpoint `path` and check it against `model` and `opts`, which
    stay untouched; raises CorruptCheckpoint naming the first bad file."""
    path = Path(path)
    state = _read(path / "state.json", lambda p: json.loads(p.read_text()))
    if not (isinstance(state, dict) and isinstance(state.get("step"), int)):
        raise CorruptCheckpoint(f"{path / 'state.json'}: no step")
    if not isinstance(state.get("files"), dict) or set(state["files"]) != set(FILES):
        raise CorruptCheckpoint(f"{path / 'state.json'}: no list of the checkpoint's files")
    check_manifest(path, state["files"])
    weights = _read(path / "model.safetensors", load_file)
    _check_weights(weights, model, path / "model.safetensors")
    optim = _read(path / "optim.pt", lambda p: torch.load(p, weights_only=True))
    _check_optim(optim, opts, path / "optim.pt")
    rows = _read(path / "metrics.parquet", lambda p: pd.read_parquet(p).to_dict("records"))
    if len(rows) != state["step"]:
        raise CorruptCheckpoint(
            f"{path / 'metrics.parquet'}: {len(rows)} rows, not {state['step']}"
        )
    return Checkpoint(path, state["step"], weights, optim, rows, state.get("extra", {}))


def load_checkpoint(path: str | Path, model, opts: dict) -> tuple[int, list[dict], dict]:
    """Restore model and optimizers in place; returns (completed steps, metrics rows, the
    extra state saved with them)."""
    ckpt = read_checkpoint(path, model, opts)
    ckpt.apply(model, opts)
    return ckpt.step, ckpt.rows, ckpt.extra


def newest_intact(
    root: str | Path, read: Callable[[Path], T], log: Callable[[str], None] = print
) -> tuple[Path, T] | None:
    """(path, read(path)) of the newest checkpoint under `root` that reads; each one that
    raises CorruptCheckpoint is logged and the next older one tried; None when none reads.
    `read` must leave the model untouched when it fails (see read_checkpoint)."""
    for path in reversed(checkpoints(root)):
        try:
            return path, read(path)
        except CorruptCheckpoint as exc:
            log(f"checkpoint {path.name} does not load, skipping it: {exc}")
    return None


def _check_weights(weights: dict, model: torch.nn.Module, file: Path) -> None:
    """Every tensor of the model is in `weights` with its shape; tied tensors (one storage,
    several names) are saved once, so any one of their names will do."""
    expected = model.state_dict()
    storage = {k: v.untyped_storage().data_ptr() for k, v in expected.items()}
    present = {storage[k] for k in weights if k in storage}
    unexpected = sorted(set(weights) - set(expected))
    missing = [k for k in expected if k not in weights and storage[k] not in present]
    wrong = [k for k in weights if k in expected and weights[k].shape != expected[k].shape]
    if unexpected or missing or wrong:
        raise CorruptCheckpoint(
            f"{file}: does not fit the model (unexpected {unexpected[:3]}, missing "
            f"{missing[:3]}, wrong shape {wrong[:3]})"
        )


def _check_optim(states: object, opts: dict, file: Path) -> None:
    """One state per optimizer with its parameter groups' sizes, and the torch RNG state."""
    if not isinstance(states, dict) or not isinstance(states.get("torch_rng"), torch.Tensor):
        raise CorruptCheckpoint(f"{file}: no torch RNG state")
    for name, opt in opts.items():
        state = states.get(name)
        groups = state.get("param_groups") if isinstance(state, dict) else None
        sizes = [len(g["params"]) for g in opt.param_groups]
        if not isinstance(groups, list) or [len(g.get("params", [])) for g in groups] != sizes:
            raise CorruptCheckpoint(f"{file}: no {name!r} optimizer state of this model's shape")


def publish(src: str | Path, dst: str | Path) -> None:
    """Put a copy of folder `src` at `dst`, replacing it: hard links (no extra disk; a copy
    where links fail), built under a temporary name and renamed. `src` stays, so doing it
    again after a crash at any point gives the same `dst`."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: missing (delete {src.parent.parent} to train afresh)")
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, copy_function=_link_or_copy)
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, dst)


# ---------------------------------------------------------------- sharded (rl.parallel fsdp)

SHARDED = "dcp"  # state.json's `format` of a sharded checkpoint


def sharded_state(params: dict[str, torch.Tensor], opts: dict) -> dict[str, torch.Tensor]:
    """The flat dict a sharded checkpoint holds: `model/<name>` for each trained parameter,
    `optim/<optimizer>/<i>/<key>` for each state tensor of the optimizer's i-th parameter,
    and `torch_rng`. Its values are the live tensors: DCP saves them and loads into them in
    place, each process its own shards."""
    state = {f"model/{name}": p for name, p in params.items()}
    for name, opt in opts.items():
        ordered = [p for group in opt.param_groups for p in group["params"]]
        for i, p in enumerate(ordered):
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor):
                    state[f"optim/{name}/{i}/{key}"] = value
    state["torch_rng"] = torch.get_rng_state()
    return state


def save_sharded(
    root: str | Path,
    done: int,
    params: dict[str, torch.Tensor],
    opts: dict,
    rows: list[dict],
    keep: int,
    extra: dict,
    dist,
) -> Path:
    """Write `root/step{done}/` as a sharded checkpoint (every process calls this; `dist`
    is sps.train.distributed.Dist): shards via a temporary folder, then rank 0 writes the
    metrics and state.json after the barrier that ends the save, renames, prunes."""
    import torch.distributed.checkpoint as dcp

    root = Path(root)
    final, tmp = root / f"step{done}", root / f".step{done}.tmp"
    if dist.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    dcp.save(sharded_state(params, opts), storage_writer=dcp.FileSystemWriter(str(tmp)))
    dist.barrier()  # every process's shards are on disk
    if dist.main:
        pd.DataFrame(rows).to_parquet(tmp / "metrics.parquet", index=False)
        names = sorted(p.name for p in tmp.iterdir())
        has_state = {name: bool(opt.state) for name, opt in opts.items()}
        state = {
            "step": done,
            "format": SHARDED,
            "files": manifest(tmp, names),
            "optim_state": has_state,
            "extra": extra or {},
        }
        (tmp / "state.json").write_text(json.dumps(state))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old)
    dist.barrier()
    return final


@dataclass
class Sharded:
    """A sharded checkpoint checked by rank 0; `apply` loads it on every process."""

    path: Path
    step: int
    rows: list[dict]
    extra: dict
    optim_state: dict[str, bool]  # which optimizers had stepped (have state tensors)

    def apply(self, params: dict[str, torch.Tensor], opts: dict) -> None:
        """Load the shards into the live parameters and optimizer states, in place (every
        process). The checks were made by `read_sharded`, whose manifest rules out any
        file that changed since the save."""
        import torch.distributed.checkpoint as dcp

        for name, opt in opts.items():
            if self.optim_state.get(name) and not opt.state:
                _materialise(opt)
        state = sharded_state(params, opts)
        with torch.no_grad():
            dcp.load(state, storage_reader=dcp.FileSystemReader(str(self.path)))
        torch.set_rng_state(state["torch_rng"])


def read_sharded(path: str | Path, params: dict[str, torch.Tensor], opts: dict) -> Sharded:
    """Check sharded checkpoint `path` (rank 0): state.json, every file's size and sha256,
    and that the saved tensors fit `params` and `opts`; reads the metrics. Loads no shard,
    changes nothing; raises CorruptCheckpoint naming the first bad file."""
    from torch.distributed.checkpoint import FileSystemReader

    path = Path(path)
    state = _read(path / "state.json", lambda p: json.loads(p.read_text()))
    ok = isinstance(state, dict) and isinstance(state.get("step"), int)
    if not ok or state.get("format") != SHARDED:
        raise CorruptCheckpoint(f"{path / 'state.json'}: no step, or not a sharded checkpoint")
    files = state.get("files")
    if not isinstance(files, dict) or not {".metadata", "metrics.parquet"} <= set(files):
        raise CorruptCheckpoint(f"{path / 'state.json'}: no list of the checkpoint's files")
    check_manifest(path, files)
    meta = _read(path / ".metadata", lambda _: FileSystemReader(str(path)).read_metadata())
    optim_state = state.get("optim_state")
    if not isinstance(optim_state, dict):
        raise CorruptCheckpoint(f"{path / 'state.json'}: no record of the optimizer states")
    _check_sharded(meta.state_dict_metadata, params, opts, optim_state, path / ".metadata")
    rows = _read(path / "metrics.parquet", lambda p: pd.read_parquet(p).to_dict("records"))
    if len(rows) != state["step"]:
        raise CorruptCheckpoint(
            f"{path / 'metrics.parquet'}: {len(rows)} rows, not {state['step']}"
        )
    return Sharded(path, state["step"], rows, state.get("extra", {}), optim_state)


def _check_sharded(meta: dict, params: dict, opts: dict, optim_state: dict, file: Path) -> None:
    """The saved tensors are the model's trained parameters with their (global) shapes, the
    state of exactly the optimizers that had stepped, per parameter of the right shape (or a
    scalar: AdamW's step), and the torch RNG state."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    sizes = {k: tuple(v.size) for k, v in meta.items() if isinstance(v, TensorStorageMetadata)}
    want = {f"model/{n}": tuple(p.shape) for n, p in params.items()}
    have = {k: s for k, s in sizes.items() if k.startswith("model/")}
    if have != want:
        unexpected, missing = sorted(set(have) - set(want)), sorted(set(want) - set(have))
        wrong = sorted(k for k in set(have) & set(want) if have[k] != want[k])
        raise CorruptCheckpoint(
            f"{file}: does not fit the model (unexpected {unexpected[:3]}, missing "
            f"{missing[:3]}, wrong shape {wrong[:3]})"
        )
    for name, opt in opts.items():
        ordered = [tuple(p.shape) for group in opt.param_groups for p in group["params"]]
        keys = [k.split("/") for k in sizes if k.startswith(f"optim/{name}/")]
        fits = all(
            len(k) == 4 and k[2].isdigit() and int(k[2]) < len(ordered)
            and sizes["/".join(k)] in ((), ordered[int(k[2])])
            for k in keys
        )  # fmt: skip
        if not fits or bool(keys) != bool(optim_state.get(name)):
            raise CorruptCheckpoint(f"{file}: no {name!r} optimizer state of this model's shape")
    if "torch_rng" not in sizes:
        raise CorruptCheckpoint(f"{file}: no torch RNG state")


def _materialise(opt: torch.optim.Optimizer) -> None:
    """Give an optimizer that has not stepped yet its state tensors (AdamW: step, exp_avg,
    exp_avg_sq), shaped and sharded as its parameters, for a load to fill: one step on zero
    gradients at lr 0, which leaves the parameters as they are (their update is lr times a
    finite number); the load then overwrites every value it made."""
    params = [p for group in opt.param_groups for p in group["params"]]
    grads, lrs = [p.grad for p in params], [group["lr"] for group in opt.param_groups]
    for p in params:
        p.grad = torch.zeros_like(p)
    for group in opt.param_groups:
        group["lr"] = 0.0
    opt.step()
    for group, lr in zip(opt.param_groups, lrs, strict=True):
        group["lr"] = lr
    for p, grad in zip(params, grads, strict=True):
        p.grad = grad
