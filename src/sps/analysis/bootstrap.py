"""A two-level bootstrap over problems and training seeds, shared by every curve of a benchmark.

Data: v[s, p], a per-problem value (pass@k, a diversity metric, a paired difference) of seed
s = 1..S on test problem p = 1..P; every seed is evaluated on the same P problems. The interval
is for the population mean mu = E_seed E_problem v, estimated by the grand mean v.. . Under the
two-way random-effects model v = mu + a_s + b_p + e_sp (seed effect, problem effect, seed x
problem interaction plus sampling noise)

    Var(v..) = sa^2 / S + sb^2 / P + se^2 / (S P).

A resample draws P problems with replacement (u_p times problem p) and S seeds with
replacement (w_s times seed s), and returns

    T = sum_p u_p m_p / P  +  c sum_s w_s d_s / S,

m_p = mean_s v[s, p] (the problem's mean over seeds), d_s = mean_p v[s, p] - v.. (the seed's
deviation) and c^2 = S / (S - 1) max(0, 1 - MSE / (P var(r))), r_s = mean_p v[s, p], MSE the
residual mean square of the two-way table. The problem part has variance (sb^2 + se^2 / S) / P
and the seed part sa^2 / S (var(r) estimates sa^2 + se^2 / P; c removes the se^2 / P and the
(S - 1) / S bias of resampling S values), so Var(T) matches Var(v..) term by term.

Why not the plain crossed resample (mean of v over the drawn seeds x drawn problems): it is
T plus an interaction term, and counts se^2 / (S P) about three times. That over-covers when
the interaction dominates, as in a paired difference of two methods, where the problem effect
cancels and the seed x problem term is most of what is left (simulated 0.992 for a nominal
0.95, this scheme 0.954). Why not problems only: it drops sa^2 / S and under-covers (about 0.90
at a seed share of 0.26). Known limit: the seed part rests on S - 1 degrees of freedom and,
for S = 3, on at most 10 distinct resampled values, so when it dominates the variance
(`seed_share` near 1) the percentile interval under-covers. Simulated coverage of the 95%
interval, S = 3, P = 256, 1000 data sets each: 0.951 at seed share 0.08, 0.934 at 0.26 (0.942
with P = 1024), 0.901 at 0.69, 0.849 at 0.90 (README, "The analysis"). With one seed there is
no seed part: the interval is over problems, conditional on that seed.

Pairing: the problem draws depend only on (P, seed) and the seed draws on (S, seed), so every
curve and every difference of a benchmark sees the same resamples. A paired difference is
formed per seed and problem first (sps-p1 seed 1 minus grpo seed 1) and then resampled.

Cost: v is given as a table of distinct values and, per seed, each problem's row in it (for
pass@k, one row per distinct (n, c)), so B resamples cost S x B x P random-index look-ups and a
(B x rows) @ (rows x K) product rather than B x S x P x K; when there are no fewer rows than
problems (paired differences over seeds, diversity), m_p itself is resampled.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CHUNK_CELLS = 2_000_000  # resamples x problems drawn at once (16 MB of indices)


@dataclass(frozen=True)
class TwoLevel:
    """v[s, p] for S seeds on P problems, K statistics each, as the resample reads it: the
    problem means m_p through a table of distinct values (one row of `groups` per seed, or
    one row of m_p itself), and the seeds' means and scaled deviations."""

    groups: np.ndarray  # (R, P) int: m_p = mean_r values[groups[r, p]]; R = S, or 1 (m_p kept)
    values: np.ndarray  # (G, K)
    seed_means: np.ndarray  # (S, K): r_s = mean_p v[s, p]
    seed_dev: np.ndarray  # (S, K): c (r_s - v..), zero for one seed

    @property
    def n_seeds(self) -> int:
        return len(self.seed_means)

    @property
    def n_problems(self) -> int:
        return self.groups.shape[1]

    @property
    def point(self) -> np.ndarray:
        """The grand mean v.. per statistic, (K,)."""
        return self.seed_means.mean(axis=0)

    def seed_sd(self) -> np.ndarray:
        """Standard deviation of the seeds' means r_s (NaN for one seed), (K,)."""
        if self.n_seeds < 2:
            return np.full(self.values.shape[1], np.nan)
        return self.seed_means.std(axis=0, ddof=1)

    def seed_share(self) -> np.ndarray:
        """Share of the resamples' variance that comes from the seed part, (K,)."""
        m = self.problem_means()
        var_problems = m.var(axis=0) / self.n_problems
        var_seeds = (self.seed_dev**2).mean(axis=0) / self.n_seeds
        total = var_problems + var_seeds
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, var_seeds / total, 0.0)

    def problem_means(self) -> np.ndarray:
        """m_p = mean_s v[s, p], (P, K)."""
        return sum(self.values[g] for g in self.groups) / len(self.groups)


def seed_scale(seed_means: np.ndarray, mse: np.ndarray, n_problems: int) -> np.ndarray:
    """c per statistic: c^2 = S / (S - 1) max(0, 1 - MSE / (P var(r))), 0 where var(r) = 0."""
    s = len(seed_means)
    var_r = seed_means.var(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(var_r > 0, 1 - mse / (n_problems * var_r), 0.0)
    return np.sqrt(s / (s - 1) * np.clip(ratio, 0.0, None))


def two_level(groups: np.ndarray, values: np.ndarray) -> TwoLevel:
    """The TwoLevel of v[s, p] = values[groups[s, p]]; groups (S, P) or (P,) for one seed.

    MSE = sum_sp (v - m_p - r_s + v..)^2 / ((S - 1)(P - 1)), from the sums of squares
    sum v^2 - P sum_s r_s^2 - S sum_p m_p^2 + S P v..^2 (no S x P x K array is formed).
    """
    groups = np.atleast_2d(np.asarray(groups, dtype=np.int64))
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    s, p = groups.shape
    if p < 1 or s < 1:
        raise ValueError(f"need at least one seed and one problem, got groups {groups.shape}")
    counts = np.stack([np.bincount(g, minlength=len(values)) for g in groups])  # (S, G)
    seed_means = counts @ values / p
    if s == 1:
        return TwoLevel(groups, values, seed_means, np.zeros_like(seed_means))
    grand = seed_means.mean(axis=0)
    m = sum(values[g] for g in groups) / s
    total_sq = counts.sum(axis=0) @ values**2
    ss_res = total_sq - p * (seed_means**2).sum(axis=0) - s * (m**2).sum(axis=0)
    ss_res += s * p * grand**2
    mse = np.clip(ss_res, 0.0, None) / ((s - 1) * max(p - 1, 1))
    dev = seed_scale(seed_means, mse, p) * (seed_means - grand)
    if len(values) >= p:  # no fewer rows than problems: resampling m_p directly is cheaper
        groups, values = np.arange(p)[None, :], m
    return TwoLevel(groups, values, seed_means, dev)


def from_arrays(per_seed: Sequence[np.ndarray]) -> TwoLevel:
    """The TwoLevel of per-seed (P, K) or (P,) arrays on the same problems (no grouping)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in per_seed]
    if not arrays:
        raise ValueError("no seeds given")
    arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(f"seeds differ in shape: {[a.shape for a in arrays]}")
    p = len(arrays[0])
    groups = np.arange(len(arrays) * p).reshape(len(arrays), p)
    return two_level(groups, np.concatenate(arrays))


def paired_seeds(a: Mapping[object, object], b: Mapping[object, object]) -> list[tuple]:
    """(seed of a, seed of b) pairs of a paired difference a - b, seed s with seed s. A model
    given without a seed (key None: the base model, one sample set) is shared by every seed
    of the other. Trained models must have the same seeds: dropping the seeds only one side
    has, or pairing one run with every seed of the other, would report a difference of other
    runs than the Pass@k table averages, under a seed count it does not have.
    """
    if not a or not b:
        raise ValueError("a paired difference needs at least one seed on each side")
    if list(a) == [None]:
        return [(None, s) for s in b]
    if list(b) == [None]:
        return [(s, None) for s in a]
    if set(a) != set(b):
        seeds = f"{sorted(map(str, a))} vs {sorted(map(str, b))}"
        raise ValueError(
            f"the two models were trained with different seeds ({seeds}): a paired difference "
            "needs the same seeds on both sides (a run missing for one seed?)"
        )
    return [(s, s) for s in a]


@dataclass(frozen=True)
class Resampler:
    """B resamples of n_problems problems (and of the seeds), reproducible from `seed`."""

    n_problems: int
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_problems < 1 or self.resamples < 1:
            raise ValueError(f"need n_problems >= 1 and resamples >= 1, got {self}")

    def problem_draws(self) -> Iterator[np.ndarray]:
        """Chunks of resampled problem indices, (rows x P) each; B rows in all. The chunking
        depends only on n_problems, so the draws are the same for every caller."""
        p = self.n_problems
        rng = np.random.default_rng(self.seed)
        step = max(1, min(self.resamples, CHUNK_CELLS // p))
        for start in range(0, self.resamples, step):
            yield rng.integers(0, p, size=(min(step, self.resamples - start), p))

    def counts(
        self, groups: np.ndarray | None = None, n_groups: int | None = None
    ) -> Iterator[np.ndarray]:
        """Per chunk of resamples, how often each row of the values was drawn, summed over the
        seeds: (rows x G) arrays. groups is (P,) or (S, P); default every problem its own row."""
        p = self.n_problems
        groups = np.arange(p) if groups is None else np.asarray(groups, dtype=np.int64)
        groups = np.atleast_2d(groups)
        if groups.shape[1] != p:
            raise ValueError(f"groups has shape {groups.shape}, expected (S, {p})")
        n_groups = max(int(groups.max()) + 1, n_groups or 0)
        for idx in self.problem_draws():
            rows = len(idx)
            offset = n_groups * np.arange(rows)[:, None]
            total = np.zeros(rows * n_groups, dtype=np.int64)
            for row in groups:  # one seed at a time keeps the index array at rows x P
                total += np.bincount((row[idx] + offset).ravel(), minlength=rows * n_groups)
            yield total.reshape(rows, n_groups)

    def means(self, values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Resampled means over problems (and seeds), (B x K), of values[groups[s, p]]."""
        values = np.asarray(values, dtype=np.float64)
        flat = values.ndim == 1
        values = values[:, None] if flat else values
        rows = 1 if groups is None else np.atleast_2d(groups).shape[0]
        chunks = [c @ values for c in self.counts(groups, len(values))]
        out = np.concatenate(chunks) / (rows * self.n_problems)
        return out[:, 0] if flat else out

    def seed_counts(self, n_seeds: int) -> np.ndarray:
        """(B x S) how often each of S seeds was drawn; depends only on (S, seed)."""
        rng = np.random.default_rng([self.seed, n_seeds])  # a stream apart from the problems'
        return rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=self.resamples)

    def resample(self, x: TwoLevel) -> np.ndarray:
        """B resampled values T (module docstring) of every statistic of x, (B x K)."""
        if x.n_problems != self.n_problems:
            raise ValueError(f"{x.n_problems} problems given to a resampler of {self.n_problems}")
        out = self.means(x.values, x.groups)
        if x.n_seeds > 1:
            out += self.seed_counts(x.n_seeds) @ x.seed_dev / x.n_seeds
        return out


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
