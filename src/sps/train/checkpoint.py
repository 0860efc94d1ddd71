"""Resumable training state: model, optimizer states, the metrics so far, written atomically.

Everything else a step needs is derived from (seed, step): the prompts it draws and the seeds
of its rollouts. So restoring these files and continuing at the saved step reproduces an
uninterrupted run exactly on the CPU (and within noise on a GPU).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_model, save_model

STEP_DIR = re.compile(r"^step(\d+)$")


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
    (tmp / "state.json").write_text(json.dumps({"step": done, **(extra or {})}))
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


def load_checkpoint(path: str | Path, model, opts: dict) -> tuple[int, list[dict], dict]:
    """Restore model and optimizers in place; returns (completed steps, metrics rows, the
    extra state saved with them)."""
    path = Path(path)
    load_model(model, str(path / "model.safetensors"))
    states = torch.load(path / "optim.pt", weights_only=True)
    for name, opt in opts.items():
        opt.load_state_dict(states[name])
    torch.set_rng_state(states["torch_rng"])
    rows = pd.read_parquet(path / "metrics.parquet").to_dict("records")
    state = json.loads((path / "state.json").read_text())
    return state.pop("step"), rows, state
