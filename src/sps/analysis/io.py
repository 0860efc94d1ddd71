"""Atomic output files and reading the cached tables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sps.analysis.passk import SAMPLE_COLUMNS, count_table

TABLE_COLUMNS = ("problem_id", "n", "c")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The temporary lives in the same directory, so os.replace is a rename on one file system
    and a reader never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _arrow_columns(path: str | Path, columns: tuple[str, ...], **kwargs: object) -> pa.Table:
    names = pq.read_schema(path).names
    for col in columns:
        if col not in names:
            raise ValueError(f"missing column {col!r} in {path}")
    return pq.read_table(path, columns=list(columns), **kwargs)


def read_columns(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read only `columns`, failing with the file and column named when one is absent."""
    return _arrow_columns(path, columns).to_pandas()


def count_samples(paths: list[str | Path]) -> pd.DataFrame:
    """(problem_id, n, c) over all shards; each shard is validated with its file named.

    problem_id is read dictionary-encoded (a categorical): 10,000 problems x 1,024 samples
    then peak near 1 GB of memory and take about 4 s.
    """
    tables = []
    for path in paths:
        table = _arrow_columns(path, SAMPLE_COLUMNS, read_dictionary=["problem_id"])
        if table.column("correct").null_count:
            raise ValueError(f"column 'correct' has missing values in {path}")
        tables.append(table)
    # "permissive" tolerates shards whose integer widths differ; to_pandas unifies dictionaries.
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    return count_table(frame, source=", ".join(map(str, paths)))


def read_table(path: str | Path) -> pd.DataFrame:
    """A cached (problem_id, n, c) table."""
    return read_columns(path, TABLE_COLUMNS)
