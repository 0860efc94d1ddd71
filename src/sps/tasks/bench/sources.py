"""Raw rows of one split: from the Hugging Face hub (or its offline cache) or a local file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sps.config import SplitSource


def describe(src: SplitSource) -> str:
    """How errors name a source: the file, or the hub id, config and split."""
    if src.source == "local":
        return str(src.path)
    name = f" ({src.name})" if src.name else ""
    return f"hf:{src.path}{name} split {src.split}"


def _read_local(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path).to_dict("records")
    text = path.read_text(encoding="utf-8")
    if suffix == ".json" and text.lstrip().startswith("["):
        return json.loads(text)
    if suffix not in (".json", ".jsonl"):
        raise ValueError(f"{path}: unsupported file type (use .jsonl, .json or .parquet)")
    rows = []
    # split("\n"), not splitlines(): a JSON string may hold U+2028, which splitlines() breaks
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: row {n}: not valid JSON: {exc}") from None
    return rows


def _read_hf(src: SplitSource) -> list[dict]:
    # With HF_DATASETS_OFFLINE=1 this reads the local cache and never touches the network.
    import datasets

    ds = datasets.load_dataset(src.path, src.name, split=src.split, revision=src.revision)
    return [dict(row) for row in ds]


def read_rows(src: SplitSource) -> list[tuple[int, dict]]:
    """(row number in the source, 1-based, before slicing; row) after SplitSource.skip/limit."""
    if src.source not in ("hf", "local"):
        raise ValueError(f"{describe(src)}: unknown source {src.source!r} (hf or local)")
    rows = _read_local(Path(src.path)) if src.source == "local" else _read_hf(src)
    numbered = list(enumerate(rows, start=1))
    end = src.skip + src.limit if src.limit else None
    return numbered[src.skip : end]
