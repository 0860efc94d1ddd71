"""Reading the cached tables, with the file and column named on error.

Per-sample files (sample shards, grade shards) are read only through `read_shards`, which
checks that one model's shards are complete before anything is counted:

- every shard holds exactly the data's problems (results/data/{bench}/test.parquet), or, with
  no data given, the same problems as the first shard;
- within a shard every problem has the same sample indices, each once;
- across shards those index sets are disjoint and together are 0..n-1.

So each problem has exactly n samples with sample_idx 0..n-1. Anything else is a ValueError
naming the shard and the problem; a truncated or corrupt file is one naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sps.analysis.passk import count_table

TABLE_COLUMNS = ("problem_id", "n", "c")
KEYS = ("problem_id", "sample_idx")


def _arrow_columns(path: str | Path, columns: tuple[str, ...], **kwargs: object) -> pa.Table:
    """`columns` of a parquet file; missing, truncated or corrupt files are named."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        names = pq.read_schema(path).names
        for col in columns:
            if col not in names:
                raise ValueError(f"missing column {col!r} in {path}")
        return pq.read_table(path, columns=list(columns), **kwargs)
    except (OSError, pa.ArrowException) as exc:  # ArrowInvalid: "Parquet magic bytes not found"
        reason = f"{path} is truncated or corrupt (not a readable parquet file): {exc}"
        raise ValueError(reason) from None


def read_columns(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read only `columns`, failing with the file and column named when one is absent."""
    return _arrow_columns(path, columns).to_pandas()


def problem_ids(data: str | Path) -> list[str]:
    """The ids of a problem table (results/data/{bench}/test.parquet), as text."""
    return [str(x) for x in _arrow_columns(data, ("id",)).column("id").to_pylist()]


def read_shard(path: str | Path, columns: Sequence[str] = ()) -> pa.Table:
    """problem_id, sample_idx and `columns` of one per-sample file; problem_id is read
    dictionary-encoded (10,000 problems x 1,024 samples then stay near 1 GB)."""
    wanted = (*KEYS, *(c for c in columns if c not in KEYS))
    return _arrow_columns(path, wanted, read_dictionary=["problem_id"])


def shard_indices(table: pa.Table, path: str | Path) -> tuple[set[str], np.ndarray]:
    """(problems, sorted sample indices) of one shard, after checking that it is a full
    rectangle: every problem it holds has every one of its sample indices exactly once."""
    ids = table.column("problem_id").to_pandas().astype("category")
    idx = table.column("sample_idx").to_numpy()
    codes = ids.cat.codes.to_numpy().astype(np.int64)
    if (codes < 0).any():
        raise ValueError(f"{path}: row {int(np.argmax(codes < 0))} has no problem_id")
    if idx.dtype.kind not in "iu" or (idx < 0).any():
        raise ValueError(f"{path}: sample_idx must be integers >= 0")
    names = ids.cat.categories.astype(str)
    # a (problem, index) pair twice: adjacent once the rows are sorted by problem, then index
    order = np.lexsort((idx, codes))
    by_code, by_idx = codes[order], idx[order]
    twice = np.flatnonzero((by_code[1:] == by_code[:-1]) & (by_idx[1:] == by_idx[:-1]))
    if len(twice):
        problem, k = names[by_code[twice[0]]], int(by_idx[twice[0]])
        raise ValueError(
            f"duplicate sample (problem_id={problem!r}, sample_idx={k}) in {path}; "
            "was a row or a shard written twice?"
        )
    # no pair twice: a problem with fewer rows than the shard has indices lacks one of them
    per_problem = np.bincount(codes, minlength=len(names))
    used = np.flatnonzero(per_problem)
    indices = np.unique(by_idx)
    short = used[per_problem[used] != len(indices)]
    if len(short):
        k = int(np.setdiff1d(indices, idx[codes == short[0]])[0])
        raise ValueError(
            f"{path}: problem {names[short[0]]!r} lacks sample_idx {k}, which the shard's "
            "other problems have (a partial shard: rerun its job)"
        )
    return set(names[used]), indices


def check_problems(found: set[str], expected: Sequence[str], path: str | Path, ref: str) -> None:
    """A shard holds exactly the problems of `ref` (the data, or the first shard)."""
    extra = sorted(found - set(expected))
    if extra:
        raise ValueError(
            f"{path} holds problem {extra[0]!r}, which is not in {ref} ({len(extra)} such): "
            "samples of other data, or of another benchmark?"
        )
    missing = [p for p in expected if p not in found]
    if missing:
        raise ValueError(
            f"{path} lacks problem {missing[0]!r} ({len(missing)} of the {len(expected)} "
            f"problems of {ref} are missing): a partial shard; rerun its job"
        )


def check_complete(indices: dict[str, np.ndarray], n: int | None = None) -> int:
    """The shards' sample indices are disjoint and together 0..n-1 (n inferred when None);
    returns n."""
    owner: dict[int, str] = {}
    for path, idx in indices.items():
        for k in idx.tolist():
            if k in owner:
                raise ValueError(
                    f"duplicate sample (sample_idx {k} of every problem) in {owner[k]} and "
                    f"{path}; was a shard given twice?"
                )
            owner[k] = path
    n = max(owner, default=-1) + 1 if n is None else n
    beyond = sorted(k for k in owner if k >= n)
    if beyond:
        raise ValueError(f"{owner[beyond[0]]} holds sample_idx {beyond[0]}, beyond n = {n}")
    missing = [k for k in range(n) if k not in owner]
    if missing or n == 0:
        raise ValueError(
            f"sample_idx {missing[0] if missing else 0} of every problem is in none of the "
            f"shards {list(indices)}: each problem needs sample_idx 0..{max(n - 1, 0)}"
        )
    return n


def read_checked_shard(
    path: str | Path, columns: Sequence[str], expected: Sequence[str] | None, ref: str
) -> tuple[pa.Table, set[str], np.ndarray]:
    """(table, problems, sample indices) of one shard that is a full rectangle and holds
    exactly the problems `expected` (those of `ref`; any problems when None)."""
    table = read_shard(path, columns)
    found, indices = shard_indices(table, path)
    check_problems(found, sorted(found) if expected is None else expected, path, ref)
    return table, found, indices


def read_shards(
    paths: Sequence[str | Path],
    columns: Sequence[str] = (),
    data: str | Path | None = None,
    n: int | None = None,
) -> list[pa.Table]:
    """One model's shards (problem_id, sample_idx and `columns`), each checked as the module
    docstring says; `data`: the problem table every shard must cover, `n`: samples per problem
    (inferred from the shards when None)."""
    if not paths:
        raise ValueError("no shards given")
    expected = problem_ids(data) if data is not None else None
    ref = str(data)
    tables, indices = [], {}
    for path in paths:
        if str(path) in indices:
            raise ValueError(f"duplicate sample: shard {path} given twice")
        table, found, indices[str(path)] = read_checked_shard(path, columns, expected, ref)
        if expected is None:  # no data: every shard must hold the first shard's problems
            expected, ref = sorted(found), str(path)
        tables.append(table)
    check_complete(indices, n)
    return tables


def check_aligned(samples: pa.Table, grades: pa.Table, sample_path, grade_path) -> None:
    """Grades match their samples row for row: same problem_id and sample_idx."""
    if len(samples) != len(grades):
        raise ValueError(
            f"{grade_path} has {len(grades)} rows but its samples {sample_path} have "
            f"{len(samples)}: regrade the shard"
        )
    for key in KEYS:
        a = samples.column(key).to_pandas().astype(str).to_numpy()
        b = grades.column(key).to_pandas().astype(str).to_numpy()
        if (a != b).any():
            i = int(np.argmax(a != b))
            raise ValueError(
                f"{grade_path} does not match {sample_path} row for row: row {i} has "
                f"{key} {b[i]!r} in the grades but {a[i]!r} in the samples; regrade the shard"
            )


def concat(tables: list[pa.Table]) -> pd.DataFrame:
    # "permissive" tolerates shards whose integer widths differ; to_pandas unifies dictionaries.
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def count_samples(
    paths: Sequence[str | Path], data: str | Path | None = None, n: int | None = None
) -> pd.DataFrame:
    """(problem_id, n, c) over one model's grade shards (problem_id, sample_idx, correct),
    after the completeness checks of `read_shards`.

    10,000 problems x 1,024 samples peak near 1 GB of memory.
    """
    tables = read_shards(paths, ("correct",), data, n)
    for path, table in zip(paths, tables, strict=True):
        if table.column("correct").null_count:
            raise ValueError(f"column 'correct' has missing values in {path}")
    return count_table(concat(tables), source=", ".join(map(str, paths)))


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
