"""Unbiased Pass@k (Chen et al. 2021) from the per-problem (n, c) table.

For one problem with n samples of which c are correct,

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i),

and exactly 1 when n - c < k (every k-subset then holds a correct sample).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sps.analysis.bootstrap import Resampler, TwoLevel, interval, paired_seeds, two_level

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
    distinct n however many problems (and seeds: n and c may be (S, P)) there are; the
    bootstrap sums counts over these groups. groups has the shape of n.
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
    return groups.reshape(n.shape), values


def _aligned(tables: Mapping[object, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(problem ids, n, c) of the seeds' tables, n and c (S, P), rows matched by problem_id."""
    frames = [t.sort_values("problem_id").reset_index(drop=True) for t in tables.values()]
    if not frames:
        raise ValueError("no tables given")
    ids = frames[0]["problem_id"].astype(str).to_numpy()
    for frame in frames[1:]:
        if not np.array_equal(frame["problem_id"].astype(str).to_numpy(), ids):
            raise ValueError("the seeds of one model disagree on the problem set")
    n = np.stack([f["n"].to_numpy() for f in frames])
    return ids, n, np.stack([f["c"].to_numpy() for f in frames])


def problem_values(tables: Mapping[object, pd.DataFrame], ks: Sequence[int]) -> TwoLevel:
    """One model's per-seed, per-problem pass@ks as a TwoLevel (seeds in the mapping's order).

    Every table must hold the same problems (rows are matched by problem_id); all seeds share
    one table of values per distinct (n, c).
    """
    _, n, c = _aligned(tables)
    return two_level(*grouped_values(n, c, ks))


def paired_values(
    a: Mapping[object, pd.DataFrame], b: Mapping[object, pd.DataFrame], ks: Sequence[int]
) -> TwoLevel:
    """Per-seed, per-problem pass@ks of a minus b, paired by problem and seed (see
    bootstrap.paired_seeds); one value row per distinct pair of (n, c) rows."""
    pairs = paired_seeds(a, b)
    ids_a, n_a, c_a = _aligned({s: a[s] for s, _ in dict.fromkeys(pairs)})
    ids_b, n_b, c_b = _aligned({s: b[s] for _, s in dict.fromkeys(pairs)})
    if not np.array_equal(ids_a, ids_b):
        raise ValueError("the two models disagree on the problem set")
    rows_a = {s: i for i, s in enumerate(dict.fromkeys(s for s, _ in pairs))}
    rows_b = {s: i for i, s in enumerate(dict.fromkeys(s for _, s in pairs))}
    ga, va = grouped_values(n_a, c_a, ks)
    gb, vb = grouped_values(n_b, c_b, ks)
    left = np.stack([ga[rows_a[sa]] for sa, _ in pairs])
    right = np.stack([gb[rows_b[sb]] for _, sb in pairs])
    keys, groups = np.unique(left * len(vb) + right, return_inverse=True)
    return two_level(groups.reshape(left.shape), va[keys // len(vb)] - vb[keys % len(vb)])


def curve(
    table: pd.DataFrame | Mapping[object, pd.DataFrame],
    ks: Sequence[int] | None = None,
    resampler: Resampler | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Mean pass@k over seeds and problems for each k, with a two-level bootstrap interval.

    `table` is one (problem_id, n, c) table, or a mapping seed -> table for a model with
    several seeds (the same problems in each): the curve is the mean over seeds, the interval
    resamples problems and seeds (bootstrap.py), seed_sd is the standard deviation of the
    seeds' curves (NaN for one seed) and seed_share the seeds' share of the interval's variance.
    Columns: k, pass_at_k, ci_low, ci_high, seed_sd, seed_share, n_seeds, n (smallest
    per-problem n), n_problems, level.
    """
    tables = dict(table) if isinstance(table, Mapping) else {None: table}
    if not tables or any(t.empty for t in tables.values()):
        raise ValueError("empty (n, c) table")
    n_min = min(int(t["n"].min()) for t in tables.values())
    ks = list(ks) if ks is not None else default_ks(n_min)
    x = problem_values(tables, ks)
    resampler = resampler or Resampler(x.n_problems)
    low, high = interval(resampler.resample(x), level)
    return pd.DataFrame(
        {
            "k": np.asarray(ks, dtype=np.int64),
            "pass_at_k": x.point,
            "ci_low": low,
            "ci_high": high,
            "seed_sd": x.seed_sd(),
            "seed_share": x.seed_share(),
            "n_seeds": x.n_seeds,
            "n": n_min,
            "n_problems": x.n_problems,
            "level": level,
        }
    )
