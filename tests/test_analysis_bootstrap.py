"""The two-level bootstrap over problems and seeds: the resample against a slow loop, pairing,
and the coverage of the population mean on simulated seed x problem data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sps.analysis.bootstrap import Resampler, from_arrays, interval, paired_seeds, two_level
from sps.analysis.passk import curve, paired_values, problem_values


def slow_resample(v: np.ndarray, res: Resampler) -> np.ndarray:
    """The scheme of bootstrap.py written out: v is (S, P, K); one loop per resample."""
    s, p, _ = v.shape
    m = v.mean(axis=0)  # problem means over seeds
    r = v.mean(axis=1)  # seed means over problems
    grand = v.mean(axis=(0, 1))
    resid = np.zeros(v.shape[2])
    for i in range(s):
        for j in range(p):
            resid += (v[i, j] - m[j] - r[i] + grand) ** 2
    mse = resid / ((s - 1) * (p - 1))
    var_r = np.array([sum((r[i, k] - grand[k]) ** 2 for i in range(s)) / (s - 1)
                      for k in range(v.shape[2])])  # fmt: skip
    c = np.sqrt(s / (s - 1) * np.maximum(0.0, 1 - mse / (p * var_r)))
    draws = np.concatenate(list(res.problem_draws()))
    seeds = res.seed_counts(s)
    out = []
    for b in range(res.resamples):
        problem_part = np.mean([m[j] for j in draws[b]], axis=0)
        seed_part = sum(seeds[b, i] * (r[i] - grand) for i in range(s)) / s
        out.append(problem_part + c * seed_part)
    return np.array(out)


def test_resample_matches_the_slow_loop() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(0, 1, (3, 7, 2)) + rng.normal(0, 1, (3, 1, 1))
    res = Resampler(7, resamples=50, seed=4)
    fast = res.resample(from_arrays(list(v)))
    np.testing.assert_allclose(fast, slow_resample(v, res), atol=1e-12)
    # the grouped form (a shared table of values) gives the same resamples
    values, groups = np.unique(v.reshape(-1, 2), axis=0, return_inverse=True)
    grouped = res.resample(two_level(groups.reshape(3, 7), values))
    np.testing.assert_allclose(grouped, fast, atol=1e-12)


def test_one_seed_is_the_problem_bootstrap() -> None:
    values = np.random.default_rng(1).random((40, 3))
    res = Resampler(40, resamples=100, seed=2)
    x = from_arrays([values])
    np.testing.assert_allclose(res.resample(x), res.means(values), atol=1e-12)
    assert x.n_seeds == 1 and np.isnan(x.seed_sd()).all() and (x.seed_share() == 0).all()


def test_identical_seeds_have_no_seed_part_and_a_pure_seed_shift_is_all_seed() -> None:
    rng = np.random.default_rng(2)
    base = rng.random(50)
    same = from_arrays([base, base, base])
    assert np.allclose(same.seed_dev, 0) and same.seed_share()[0] == 0
    shifted = from_arrays([np.zeros(50), np.ones(50), 2 * np.ones(50)])
    # no problem variance, no residual: c = sqrt(S / (S - 1)) and the share is 1
    np.testing.assert_allclose(shifted.seed_dev[:, 0], np.sqrt(1.5) * np.array([-1, 0, 1]))
    assert shifted.seed_share()[0] == 1.0


def test_seed_draws_are_shared_and_apart_from_the_problem_draws() -> None:
    res = Resampler(30, resamples=200, seed=5)
    np.testing.assert_array_equal(res.seed_counts(3), Resampler(99, 200, 5).seed_counts(3))
    assert (res.seed_counts(3).sum(axis=1) == 3).all()
    assert not np.array_equal(res.seed_counts(3), Resampler(30, 200, 6).seed_counts(3))


def test_paired_seeds() -> None:
    assert paired_seeds({None: 0}, {1: 0, 2: 0}) == [(None, 1), (None, 2)]
    assert paired_seeds({1: 0, 2: 0}, {None: 0}) == [(1, None), (2, None)]
    assert paired_seeds({2: 0, 1: 0}, {1: 0, 2: 0}) == [(2, 2), (1, 1)]
    assert paired_seeds({None: 0}, {None: 0}) == [(None, None)]
    # seeds only one side has are not dropped, and one trained run is not every seed's partner
    for a, b in (
        ({1: 0, 2: 0, 3: 0}, {2: 0, 3: 0, 4: 0}),
        ({1: 0, 2: 0}, {3: 0, 4: 0}),
        ({0: 0, 1: 0}, {0: 0, 1: 0, 2: 0}),
        ({0: 0}, {0: 0, 1: 0, 2: 0}),
    ):
        with pytest.raises(ValueError, match="different seeds"):
            paired_seeds(a, b)


def table(c: np.ndarray, n: int) -> pd.DataFrame:
    ids = [f"p{i:04d}" for i in range(len(c))]
    return pd.DataFrame({"problem_id": ids, "n": n, "c": c})


def per_problem(t: pd.DataFrame, ks: list[int]) -> np.ndarray:
    x = problem_values({0: t}, ks)
    return x.values[x.groups[0]]


def test_paired_pass_at_k_is_formed_per_seed_and_problem() -> None:
    rng = np.random.default_rng(3)
    a = {s: table(rng.integers(0, 9, 20), 8) for s in (1, 2, 3)}
    b = {s: table(rng.integers(0, 9, 20), 8) for s in (1, 2, 3)}
    x = paired_values(a, b, [1, 4])
    res = Resampler(20, 100)
    per_seed = [per_problem(a[s], [1, 4]) - per_problem(b[s], [1, 4]) for s in (1, 2, 3)]
    np.testing.assert_allclose(res.resample(x), res.resample(from_arrays(per_seed)), atol=1e-12)
    base = {None: table(rng.integers(0, 9, 20), 8)}
    shared = paired_values(a, base, [1])
    assert shared.n_seeds == 3  # base is shared by every seed


# --- coverage of the population mean ------------------------------------------------------------


def simulate(
    sims: int, seeds: int, problems: int, sd_seed: float, sd_problem: float, sd_inter: float
) -> tuple[float, float]:
    """Coverage of mu = 0 by the 95% interval of this scheme and of the plain crossed resample
    (mean over drawn seeds x drawn problems), on v = a_s + b_p + e_sp with Gaussian effects.

    The data sets are the K columns of one array, 50 per Resampler: every statistic of a
    TwoLevel has its own seed scale, so a column is one independent simulation."""
    rng = np.random.default_rng(11)
    hits = crossed = 0
    for chunk in range(sims // 50):
        v = rng.normal(0, sd_seed, (seeds, 1, 50)) + rng.normal(0, sd_problem, (1, problems, 50))
        v = v + rng.normal(0, sd_inter, (seeds, problems, 50))
        res = Resampler(problems, 1000, seed=chunk)
        low, high = interval(res.resample(from_arrays(list(v))))
        hits += int(((low <= 0) & (0 <= high)).sum())
        counts = np.concatenate(list(res.counts()))  # (B, P): the same problem draws
        seed_counts = res.seed_counts(seeds)
        naive = sum(seed_counts[:, [s]] * (counts @ v[s]) for s in range(seeds))
        low, high = interval(naive / (seeds * problems))
        crossed += int(((low <= 0) & (0 <= high)).sum())
    return hits / sims, crossed / sims


def test_coverage_in_the_study_regime() -> None:
    """3 seeds, 256 problems, problem variance dominant, small seed variance (seed share of
    the variance about 0.1): coverage within 0.03 of 0.95 over 1000 simulations."""
    coverage, _ = simulate(1000, 3, 256, sd_seed=0.01, sd_problem=0.3, sd_inter=0.15)
    assert abs(coverage - 0.95) <= 0.03, coverage


def test_coverage_when_the_interaction_dominates() -> None:
    """A paired difference: the problem effect has mostly cancelled, the seed x problem term is
    left. The crossed resample counts it three times and over-covers; this scheme does not."""
    coverage, crossed = simulate(1000, 3, 256, sd_seed=0.005, sd_problem=0.05, sd_inter=0.3)
    assert abs(coverage - 0.95) <= 0.03, coverage
    assert crossed > 0.98, crossed  # the trap this scheme avoids


def test_pass_at_k_coverage_with_three_seeds() -> None:
    """Binomial samples: success logit = -1 + seed effect (sd 0.1) + problem effect (sd 1.5) +
    interaction (sd 0.5), 3 seeds x 256 problems x n = 32. The interval of mean Pass@1 and
    Pass@32 covers the population value in 0.92-0.98 of 200 data sets."""
    rng = np.random.default_rng(12)
    ks, n = [1, 32], 32
    logit = -1 + rng.normal(0, 0.1, (400, 1)) + rng.normal(0, 1.5, (1, 4000))
    p_big = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.5, logit.shape))))
    truth = np.array([np.mean(1 - (1 - p_big) ** k) for k in ks])  # MC sd about 3e-4
    hits = np.zeros(2)
    for sim in range(200):
        logit = -1 + rng.normal(0, 0.1, (3, 1)) + rng.normal(0, 1.5, (1, 256))
        p = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.5, logit.shape))))
        seeds = {s: table(rng.binomial(n, p[s]), n) for s in range(3)}
        frame = curve(seeds, ks, Resampler(256, 1000, seed=sim))
        hits += (frame["ci_low"] <= truth) & (truth <= frame["ci_high"])
    coverage = hits / 200
    assert ((0.92 <= coverage) & (coverage <= 0.98)).all(), coverage
