"""Small I/O helpers: atomic writes, so a killed job never leaves an output that looks complete."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def tmp_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def read_parquet(path: str | Path, columns: list[str]) -> pd.DataFrame:
    """Read a table and check it has `columns`; the error names the file and the column."""
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read parquet: {exc}") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; has {list(df.columns)}")
    return df
