"""Unbiased Pass@k (Chen et al. 2021) from the per-problem (n, c) table.

For one problem with n samples of which c are correct,

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i),

and exactly 1 when n - c < k (every k-subset then holds a correct sample).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SAMPLE_COLUMNS = ("problem_id", "sample_idx", "correct")
N_BOOT = 1000  # bootstrap resamples of problems for the curve's 95% interval


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


def _bootstrap_means(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """Means of `values` (problems x ks) over N_BOOT resamples of problems, (N_BOOT x ks)."""
    rng = np.random.default_rng(seed)
    p = values.shape[0]
    out = []
    for start in range(0, N_BOOT, 100):  # chunks keep the count matrix small (100 x problems)
        rows = min(100, N_BOOT - start)
        idx = rng.integers(0, p, size=(rows, p)) + p * np.arange(rows)[:, None]
        counts = np.bincount(idx.ravel(), minlength=rows * p).reshape(rows, p)
        out.append(counts @ values / p)
    return np.concatenate(out)


def curve(table: pd.DataFrame, ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Mean pass@k over problems for each k, with a 95% bootstrap interval over problems.

    Columns: k, pass_at_k, ci_low, ci_high, n (smallest per-problem n), n_problems.
    """
    if table.empty:
        raise ValueError("empty (n, c) table")
    n, c = table["n"].to_numpy(), table["c"].to_numpy()
    ks = list(ks) if ks is not None else default_ks(int(n.min()))
    values = np.stack([pass_at_k(n, c, k) for k in ks], axis=1)
    low, high = np.percentile(_bootstrap_means(values), [2.5, 97.5], axis=0)
    return pd.DataFrame(
        {
            "k": np.asarray(ks, dtype=np.int64),
            "pass_at_k": values.mean(axis=0),
            "ci_low": low,
            "ci_high": high,
            "n": int(n.min()),
            "n_problems": len(table),
        }
    )
