"""What a training run is: a fingerprint of every setting and input that changes its result.

A run's checkpoint directory (checkpoints, and the evaluation snapshots staged beside them)
holds the fingerprint of the run that wrote it, in `fingerprint.json`. A job resumes only from
a directory with exactly its own fingerprint. Anything else there belongs to another run: it
is moved aside whole, so a rerun after a config change is the fresh run, never a mix.

Stale checkpoints are moved aside rather than deleted: a config change by mistake (a typo in
`--config`) must not destroy hours of training; `mv` puts them back. They are never pruned
automatically, and the log names the folder so that a person can delete it.

Nothing here reads the checkpoint files themselves, so another checkpoint format (sharded,
torch.distributed.checkpoint) binds its directory the same way.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sps.io import write_text_atomic

FINGERPRINT = "fingerprint.json"

# Settings that provably do not change the run, left out of its fingerprint: when checkpoints
# are written and how many are kept (saving only reads the state; a resume reproduces the
# uninterrupted run), and the list of baselines the workflow runs (the trainer never reads it).
UNCHANGING = (
    ("rl", "checkpoint_every"),
    ("rl", "keep_checkpoints"),
    ("baselines", "methods"),
)


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks (a 3 GB model takes seconds)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_digests(folder: str | Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` (a model directory)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): file_digest(p) for p in files}


def run_fingerprint(cfg: dict, base: str | Path, data: str | Path, launch: dict) -> dict:
    """The parts a run's result depends on: the validated train settings (less UNCHANGING),
    how it is launched (device, processes, threads), the base model's files and the train
    data's bytes. Paths are not part of it: a moved run directory still resumes."""
    settings = copy.deepcopy(cfg)
    for section, key in UNCHANGING:
        if isinstance(settings.get(section), dict):
            settings[section].pop(key, None)
    parts = {
        "settings": settings,
        "launch": launch,
        "base_model": tree_digests(base),
        "data": {"train": file_digest(data)},
    }
    return json.loads(json.dumps(parts))  # as it reads back from fingerprint.json


def digest(parts: dict) -> str:
    """sha256 of the parts as canonical JSON (sorted keys): the fingerprint's name."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _flatten(tree: dict, prefix: tuple = ()) -> dict[tuple, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, (*prefix, key)))
        else:
            flat[(*prefix, key)] = value
    return flat


def _show(value: object) -> str:
    if value is _ABSENT:
        return "(absent)"
    text = json.dumps(value)
    if isinstance(value, str) and len(value) == 64:  # a sha256: its start tells them apart
        return text[1:13]
    return text


_ABSENT = object()


def changes(old: dict, new: dict) -> list[str]:
    """What differs between two fingerprints' parts, one line each: `rl.lr 0.0002 -> 0.002`,
    `base_model.model.safetensors 3f2a9c0d1e2b -> 9c1b...`, `data.train ...`."""
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b), key=lambda k: tuple(map(str, k))):
        was, now = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if was != now:
            name = ".".join(map(str, key[1:] if key[0] == "settings" else key))
            lines.append(f"{name} {_show(was)} -> {_show(now)}")
    return lines


def read_fingerprint(root: str | Path) -> dict | None:
    """The parts stored in `root/fingerprint.json`; None when absent or unreadable."""
    try:
        stored = json.loads((Path(root) / FINGERPRINT).read_text())
        parts = stored["parts"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return parts if isinstance(parts, dict) else None


def bind(
    root: str | Path,
    parts: dict,
    log: Callable[[str], None] = print,
    outputs: Sequence[str | Path] = (),
) -> bool:
    """Make checkpoint directory `root` belong to the run `parts` describes.

    True: it already did (resume from it). False: the run starts fresh; whatever `root` held
    (and the run `outputs` beside it, which came from the same stale run) was moved into
    `root.stale-<old digest[:12]>-<UTC time>/` and the log says what changed.
    """
    root = Path(root)
    old = read_fingerprint(root)
    if old is not None and digest(old) == digest(parts):
        return True
    held = [p for p in map(Path, [root, *outputs]) if p.exists() and not _empty_dir(p)]
    if held:
        stale = _stale_name(root, digest(old)[:12] if old is not None else "unknown")
        _move_aside(root, stale, held)
        if old is None:
            why = f"no readable {root / FINGERPRINT}: written by another version, or damaged"
        else:
            why = "; ".join(changes(old, parts)) or "the fingerprint format changed"
        names = ", ".join(p.name for p in held)
        log(f"starting fresh: {names} in {root.parent} are of another run ({why})")
        log(f"moved them to {stale} (delete it when it is not needed)")
    root.mkdir(parents=True, exist_ok=True)
    record = {"digest": digest(parts), "parts": parts}
    write_text_atomic(json.dumps(record, indent=2, sort_keys=True), root / FINGERPRINT)
    return False


def _stale_name(root: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    stale, n = root.with_name(f"{root.name}.stale-{name}-{stamp}"), 1
    while stale.exists():  # two fresh starts within a second
        n += 1
        stale = root.with_name(f"{root.name}.stale-{name}-{stamp}-{n}")
    return stale


def _empty_dir(path: Path) -> bool:
    # Snakemake makes the parents of a job's outputs (evals/) before the job starts
    return path.is_dir() and not any(path.iterdir())


def _move_aside(root: Path, stale: Path, held: list[Path]) -> None:
    """root -> stale, then the run's outputs -> stale/outputs/<name> (renames only)."""
    if root in held:
        os.replace(root, stale)
    outputs = [p for p in held if p != root]
    if outputs:
        (stale / "outputs").mkdir(parents=True, exist_ok=True)
    for p in outputs:
        os.replace(p, stale / "outputs" / p.name)
