"""Reading the cached tables, with the file and column named on error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sps.analysis.passk import SAMPLE_COLUMNS, count_table

TABLE_COLUMNS = ("problem_id", "n", "c")


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


def read_seeded(path: str | Path, seed: object = None) -> dict[object, pd.DataFrame]:
    """A cached (n, c) table as seed -> table: split by its `seed` column when it has one
    (several runs of one model in one file), else {seed: table}."""
    if "seed" not in pq.read_schema(path).names:
        return {seed: read_table(path)}
    frame = read_columns(path, (*TABLE_COLUMNS, "seed"))
    if seed is not None:
        raise ValueError(f"{path} has a seed column; give it without @SEED")
    return {
        int(s): part.drop(columns="seed").reset_index(drop=True)
        for s, part in frame.groupby("seed", sort=True)
    }
