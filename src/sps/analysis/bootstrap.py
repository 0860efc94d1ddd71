"""Bootstrap over problems, shared by every curve of a benchmark (so comparisons are paired).

A resample draws P problems with replacement; a statistic's value on it is the mean of its
per-problem values over the drawn problems. Every call starts a fresh generator from `seed`,
so every curve, and every difference of two curves, sees the same B resamples: the
interval of a difference between two models on the same problems is a paired bootstrap.

Cost: values that depend on a problem only through its group (for Pass@k, its (n, c) pair)
are averaged as (counts per group) @ (values per group), so B resamples cost B x P random
indices and a (B x groups) @ (groups x K) product rather than B x P x K.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CHUNK_CELLS = 2_000_000  # resamples x problems drawn at once (16 MB of indices)


@dataclass(frozen=True)
class Resampler:
    """B resamples of n_problems problems, reproducible from `seed`."""

    n_problems: int
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_problems < 1 or self.resamples < 1:
            raise ValueError(f"need n_problems >= 1 and resamples >= 1, got {self}")

    def counts(self, groups: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Per chunk of resamples, how often each group was drawn: (rows x groups) arrays.

        groups[p] is problem p's group (default: every problem its own group). The chunking
        depends only on n_problems, so the draws are the same for every `groups`.
        """
        p = self.n_problems
        groups = np.arange(p) if groups is None else np.asarray(groups, dtype=np.int64)
        if groups.shape != (p,):
            raise ValueError(f"groups has shape {groups.shape}, expected ({p},)")
        n_groups = int(groups.max()) + 1
        rng = np.random.default_rng(self.seed)
        step = max(1, min(self.resamples, CHUNK_CELLS // p))
        for start in range(0, self.resamples, step):
            rows = min(step, self.resamples - start)
            drawn = groups[rng.integers(0, p, size=(rows, p))]
            drawn += n_groups * np.arange(rows)[:, None]
            yield np.bincount(drawn.ravel(), minlength=rows * n_groups).reshape(rows, n_groups)

    def means(self, values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Resampled means, (B x K), of per-problem values values[groups[p]] ((groups x K))."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.ndim == 1
        values = values[:, None] if flat else values
        out = np.concatenate([c @ values for c in self.counts(groups)]) / self.n_problems
        return out[:, 0] if flat else out


def interval(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0 (resamples), ignoring NaN resamples."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    tail = 100 * (1 - level) / 2
    boot = np.asarray(boot, dtype=np.float64)
    if np.isnan(boot).any():
        with warnings.catch_warnings():  # an all-NaN column has a NaN interval, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(boot, [tail, 100 - tail], axis=0)
    else:
        low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    return low, high


def sign_flip_share(boot: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Share of resamples whose sign differs from the point estimate's (sign(0) = 0).

    For a difference between two methods: how often the bootstrap disagrees on which is
    ahead; near 0 is a clear sign, near 0.5 none. Two identical methods give 0 everywhere.
    """
    return (np.sign(boot) != np.sign(point)[None, ...]).mean(axis=0)
