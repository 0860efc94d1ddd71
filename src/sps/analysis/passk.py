"""Unbiased Pass@k (Chen et al. 2021) from the per-problem (n, c) table.

For one problem with n samples of which c are correct,

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i),

and exactly 1 when n - c < k (every k-subset then holds a correct sample).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sps.analysis.bootstrap import Resampler, interval

SAMPLE_COLUMNS = ("problem_id", "sample_idx", "correct")


def _log_prefix(k: int, n_max: int) -> np.ndarray:
    """L[m] = sum_{i=k+1}^{m} log(1 - k/i) for m = 0..n_max (0 for m <= k).

    Then log(C(n-c, k) / C(n, k)) = L[n] - L[n-c] whenever n - c >= k, so one cumulative
    sum per k serves every problem: O(n_max + problems) instead of O(problems * c).
    """
    i = np.arange(k + 1, n_max + 1, dtype=np.float64)
    terms = np.log1p(-k / i)  # all i > k, so every term is finite
    return np.concatenate([np.zeros(k + 1), np.cumsum(terms)])


def pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Per-problem unbiased pass@k for arrays of sample counts n and correct counts c."""
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if n.shape != c.shape:
        raise ValueError(f"n and c differ in shape: {n.shape} vs {c.shape}")
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if n.size == 0:
        return np.zeros(0)
    if (c < 0).any() or (c > n).any():
        raise ValueError("need 0 <= c <= n for every problem")
    if k > n.min():
        raise ValueError(f"k = {k} exceeds the number of samples n = {n.min()} of some problem")
    prefix = _log_prefix(k, int(n.max()))
    wrong = n - c
    safe = wrong >= k
    log_fail = np.where(safe, prefix[n] - prefix[np.where(safe, wrong, 0)], 0.0)
    # -expm1(x) = 1 - exp(x) without cancellation when the failure probability is near 1.
    return np.where(safe, -np.expm1(log_fail), 1.0)


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, plus n itself when it is not a power of two."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ks = [1 << j for j in range(int(n).bit_length()) if 1 << j <= n]
    return ks if ks[-1] == n else [*ks, int(n)]


def validate_samples(samples: pd.DataFrame, source: str | None = None) -> None:
    """Raise ValueError naming the column (and `source`) when per-sample rows are unusable."""
    where = f" in {source}" if source else ""
    for col in SAMPLE_COLUMNS:
        if col not in samples.columns:
            raise ValueError(f"missing column {col!r}{where}")
    if samples["correct"].isna().any():
        raise ValueError(f"column 'correct' has missing values{where}")
    dup = samples.duplicated(["problem_id", "sample_idx"])
    if dup.any():
        row = samples.loc[dup].iloc[0]
        raise ValueError(
            f"duplicate sample (problem_id={row['problem_id']!r}, sample_idx={row['sample_idx']})"
            f"{where}; was a shard given twice?"
        )


def count_table(samples: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """(problem_id, n, c) per problem from one row per sample; rows sorted by problem_id."""
    validate_samples(samples, source)
    correct = samples["correct"].astype(bool).astype(np.int64)
    # Group on the column as it is (a categorical stays compact), then sort the ids as text.
    grouped = correct.groupby(samples["problem_id"], observed=True)
    table = pd.DataFrame({"n": grouped.size(), "c": grouped.sum()}).astype(np.int64)
    table.index = table.index.astype(str)
    return table.sort_index().rename_axis("problem_id").reset_index()


def pass_table(n: int, ks: Sequence[int]) -> np.ndarray:
    """T[c, j] = pass@ks[j] for a problem with n samples and c = 0..n correct, shape (n+1, K).

    log(C(n-c, k) / C(n, k)) = sum_{j=0}^{c-1} log(1 - k / (n - j)), a cumulative sum over c
    for every k at once; it is finite exactly when n - c >= k (else pass@k = 1).
    """
    ks = np.asarray(ks, dtype=np.float64)
    if ks.size and (ks.min() < 1 or ks.max() > n):
        raise ValueError(f"every k must be in 1..n = {n}, got {ks.min():g}..{ks.max():g}")
    i = np.arange(n, 0, -1, dtype=np.float64)[:, None]  # n, n-1, ..., 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(i > ks[None, :], np.log1p(-ks[None, :] / i), 0.0)
    log_fail = np.vstack([np.zeros((1, ks.size)), np.cumsum(terms, axis=0)])
    c = np.arange(n + 1)[:, None]
    return np.where(n - c >= ks[None, :], -np.expm1(log_fail), 1.0)


def grouped_values(
    n: np.ndarray, c: np.ndarray, ks: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(groups, values): problem p's pass@ks is values[groups[p]]; one group per distinct (n, c).

    Pass@k depends on a problem only through (n, c), so at most n+1 rows are computed per
    distinct n however many problems there are; the bootstrap sums counts over these groups.
    """
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if n.shape != c.shape or n.size == 0:
        raise ValueError("need non-empty n and c of one shape")
    if (c < 0).any() or (c > n).any():
        raise ValueError("need 0 <= c <= n for every problem")
    if max(ks) > n.min():
        raise ValueError(
            f"k = {max(ks)} exceeds the number of samples n = {n.min()} of some problem"
        )
    keys, groups = np.unique(n * (n.max() + 1) + c, return_inverse=True)
    key_n, key_c = keys // (n.max() + 1), keys % (n.max() + 1)
    values = np.empty((keys.size, len(ks)))
    for size in np.unique(key_n):
        rows = key_n == size
        values[rows] = pass_table(int(size), ks)[key_c[rows]]
    return groups.reshape(-1), values


def problem_values(
    tables: Mapping[object, pd.DataFrame], ks: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(groups, values) of one model's per-problem pass@k, averaged over its seeds' tables.

    Every table must hold the same problems (rows are matched by problem_id). One seed keeps
    the (n, c) grouping; several seeds give one group per problem (their mean).
    """
    frames = [t.sort_values("problem_id").reset_index(drop=True) for t in tables.values()]
    if not frames:
        raise ValueError("no tables given")
    ids = frames[0]["problem_id"].astype(str).to_numpy()
    for frame in frames[1:]:
        if not np.array_equal(frame["problem_id"].astype(str).to_numpy(), ids):
            raise ValueError("the seeds of one model disagree on the problem set")
    parts = [grouped_values(f["n"].to_numpy(), f["c"].to_numpy(), ks) for f in frames]
    if len(parts) == 1:
        return parts[0]
    mean = np.mean([values[groups] for groups, values in parts], axis=0)
    return np.arange(len(ids)), mean


def curve(
    table: pd.DataFrame | Mapping[object, pd.DataFrame],
    ks: Sequence[int] | None = None,
    resampler: Resampler | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Mean pass@k over problems for each k, with a bootstrap interval over problems.

    `table` is one (problem_id, n, c) table, or a mapping seed -> table for a model with
    several seeds: the curve is then the mean over seeds, the interval resamples problems
    (the same problems in every seed) and seed_sd is the standard deviation of the seeds'
    curves (NaN for one seed).
    Columns: k, pass_at_k, ci_low, ci_high, seed_sd, n_seeds, n (smallest per-problem n),
    n_problems, level.
    """
    tables = dict(table) if isinstance(table, Mapping) else {None: table}
    if not tables or any(t.empty for t in tables.values()):
        raise ValueError("empty (n, c) table")
    n_min = min(int(t["n"].min()) for t in tables.values())
    ks = list(ks) if ks is not None else default_ks(n_min)
    groups, values = problem_values(tables, ks)
    n_problems = len(groups)
    resampler = resampler or Resampler(n_problems)
    low, high = interval(resampler.means(values, groups), level)
    per_seed = [
        np.bincount(g, minlength=len(v)) @ v / len(g)
        for g, v in (
            grouped_values(t["n"].to_numpy(), t["c"].to_numpy(), ks) for t in tables.values()
        )
    ]
    sd = np.std(per_seed, axis=0, ddof=1) if len(per_seed) > 1 else np.full(len(ks), np.nan)
    return pd.DataFrame(
        {
            "k": np.asarray(ks, dtype=np.int64),
            "pass_at_k": np.bincount(groups, minlength=len(values)) @ values / n_problems,
            "ci_low": low,
            "ci_high": high,
            "seed_sd": sd,
            "n_seeds": len(tables),
            "n": n_min,
            "n_problems": n_problems,
            "level": level,
        }
    )
