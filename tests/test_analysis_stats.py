"""The statistics behind the figures: bootstrap coverage, paired differences, the asymptote fit,
the crossover finder, the entropy fit, seeds and diversity, each on cases with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sps.analysis import bench, ceiling, diversity
from sps.analysis.bootstrap import Resampler, interval, sign_flip_share
from sps.analysis.passk import (
    curve,
    grouped_values,
    paired_values,
    pass_at_k,
    pass_table,
    problem_values,
)


def beta_tail(alpha: float, beta: float, ks: np.ndarray) -> np.ndarray:
    """E[(1 - p)^k] for p ~ Beta(alpha, beta): prod_{j<k} (beta + j) / (alpha + beta + j)."""
    j = np.arange(int(ks.max()))
    ratio = np.cumprod((beta + j) / (alpha + beta + j))
    return ratio[ks.astype(int) - 1]


def table(c: np.ndarray, n: int | np.ndarray) -> pd.DataFrame:
    c = np.asarray(c)
    ids = [f"p{i:05d}" for i in range(len(c))]
    return pd.DataFrame({"problem_id": ids, "n": np.broadcast_to(n, c.shape), "c": c})


# --- Pass@k by (n, c) groups ------------------------------------------------------------------


def test_pass_table_and_groups_match_the_scalar_estimator() -> None:
    rng = np.random.default_rng(0)
    n = rng.choice([16, 40], size=300)
    c = rng.integers(0, n + 1)
    ks = [1, 3, 8, 16]
    groups, values = grouped_values(n, c, ks)
    for j, k in enumerate(ks):
        np.testing.assert_allclose(values[groups, j], pass_at_k(n, c, k), rtol=0, atol=1e-13)
    assert len(values) <= 17 + 41  # one row per distinct (n, c)
    np.testing.assert_allclose(pass_table(5, [1])[:, 0], np.arange(6) / 5, atol=1e-15)
    with pytest.raises(ValueError, match="exceeds"):
        grouped_values(n, c, [41])


# --- bootstrap --------------------------------------------------------------------------------


def test_resamples_are_reproducible_and_shared() -> None:
    res = Resampler(50, resamples=300, seed=3)
    values = np.random.default_rng(0).random((50, 2))
    a, b = res.means(values), res.means(values)
    np.testing.assert_array_equal(a, b)
    # grouping problems does not change the draws
    groups = np.arange(50) % 7
    per_group = np.stack([values[groups == g].mean(axis=0) for g in range(7)])
    grouped = res.means(per_group, groups)
    ungrouped = res.means(per_group[groups])
    np.testing.assert_allclose(grouped, ungrouped, atol=1e-12)
    assert a.shape == (300, 2)


def test_interval_covers_the_truth_at_its_nominal_rate() -> None:
    """200 data sets of 100 problems, p ~ Beta(0.5, 2), n = 32: the 95% interval of mean
    Pass@k over problems covers E[1 - (1 - p)^k] in 90-99% of them (k = 1 and k = 8)."""
    rng = np.random.default_rng(7)
    ks = np.array([1, 8])
    truth = 1 - beta_tail(0.5, 2.0, ks)
    hits = np.zeros(2)
    for sim in range(200):
        p = rng.beta(0.5, 2.0, size=100)
        frame = curve(table(rng.binomial(32, p), 32), ks, Resampler(100, 1000, seed=sim))
        hits += (frame["ci_low"] <= truth) & (truth <= frame["ci_high"])
    coverage = hits / 200
    assert ((0.90 <= coverage) & (coverage <= 0.99)).all(), coverage


def test_paired_difference_of_identical_methods_contains_zero() -> None:
    rng = np.random.default_rng(1)
    t = table(rng.binomial(64, rng.beta(0.3, 1.0, size=80)), 64)
    ks = [1, 4, 16, 64]
    x = paired_values({0: t}, {0: t}, ks)
    boot = Resampler(80, 1000).resample(x)
    low, high = interval(boot)
    assert (low <= 0).all() and (high >= 0).all()
    point = np.zeros(len(ks))
    assert (sign_flip_share(boot, point) == 0).all()


def test_paired_difference_of_equal_methods_covers_zero_at_nominal_rate() -> None:
    """Two methods with the same per-problem success rates (independent samples): the paired
    95% interval of the Pass@8 difference contains 0 in at least 90% of 100 data sets."""
    rng = np.random.default_rng(2)
    hits = 0
    for sim in range(100):
        p = rng.beta(0.5, 1.5, size=60)
        a = {0: table(rng.binomial(16, p), 16)}
        b = {0: table(rng.binomial(16, p), 16)}
        low, high = interval(Resampler(60, 500, seed=sim).resample(paired_values(a, b, [8])))
        hits += int(low[0] <= 0 <= high[0])
    assert hits >= 90, hits


def test_paired_interval_is_narrower_than_unpaired() -> None:
    """Pairing removes the shared problem difficulty: a small, consistent gain is resolved."""
    rng = np.random.default_rng(3)
    p = rng.beta(0.5, 1.0, size=200)
    a = table(rng.binomial(64, np.clip(p + 0.05, 0, 1)), 64)
    b = table(rng.binomial(64, p), 64)
    res = Resampler(200, 1000)
    low, high = interval(res.resample(paired_values({0: a}, {0: b}, [1])))
    ca, cb = curve(a, [1], res), curve(b, [1], res)
    unpaired = (ca["ci_high"] - ca["ci_low"]).iloc[0] + (cb["ci_high"] - cb["ci_low"]).iloc[0]
    assert low[0] > 0 and (high - low)[0] < 0.5 * unpaired


# --- seeds --------------------------------------------------------------------------------------


def test_several_seeds_give_the_mean_curve_and_its_spread() -> None:
    rng = np.random.default_rng(4)
    p = rng.beta(1, 2, size=40)
    seeds = {s: table(rng.binomial(16, p), 16) for s in range(3)}
    frame = curve(seeds, [1, 16])
    singles = [curve(t, [1, 16])["pass_at_k"].to_numpy() for t in seeds.values()]
    np.testing.assert_allclose(frame["pass_at_k"], np.mean(singles, axis=0), atol=1e-12)
    np.testing.assert_allclose(frame["seed_sd"], np.std(singles, axis=0, ddof=1), atol=1e-12)
    assert (frame["n_seeds"] == 3).all()
    assert curve(seeds[0], [1])["seed_sd"].isna().all()
    shuffled = {0: seeds[0], 1: seeds[1].iloc[::-1]}  # rows are matched by problem_id
    np.testing.assert_allclose(
        curve(shuffled, [1])["pass_at_k"], np.mean([singles[0][0], singles[1][0]]), atol=1e-12
    )


# --- asymptote ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("u", "a", "b"), [(0.8, 0.5, 0.5), (0.95, 0.7, 0.3), (0.6, 0.3, 1.2), (0.45, 0.4, 0.8)]
)
def test_asymptote_fit_recovers_u_on_power_law_curves(u: float, a: float, b: float) -> None:
    ks = np.array(ceiling.fit_ks(1024), dtype=float)
    noise = np.random.default_rng(0).normal(0, 0.002, len(ks))
    fit = ceiling.fit_asymptote(ks, u - a * ks**-b + noise, lo=0.0, hi=1.0)
    assert abs(fit["U"] - u) < 0.02, fit
    assert abs(fit["b"] - b) < 0.1 * b + 0.05
    assert abs(ceiling.fit_best(ks, u - a * ks**-b + noise, lo=0.0, hi=1.0)["U"] - u) < 0.02


@pytest.mark.parametrize(
    ("u", "alpha", "beta"), [(0.7, 1.0, 3.0), (0.9, 0.6, 2.0), (0.5, 2.0, 8.0)]
)
def test_asymptote_fit_recovers_u_of_a_beta_mixture(u: float, alpha: float, beta: float) -> None:
    """A share u of problems solvable with p ~ Beta(alpha, beta), the rest never: the exact
    expected curve is u (1 - E[(1 - p)^k]), whose tail is a power law in k."""
    ks = np.array(ceiling.fit_ks(1024))
    curve_values = u * (1 - beta_tail(alpha, beta, ks))
    fit = ceiling.fit_best(ks.astype(float), curve_values, lo=curve_values[-1], hi=1.0)
    assert abs(fit["U"] - u) < 0.02 and fit["form"] == "beta", fit
    # the power law alone misfits the small-k part of such curves and overshoots U
    power = ceiling.fit_asymptote(ks.astype(float), curve_values, lo=curve_values[-1], hi=1.0)
    assert power["sse"] > fit["sse"]


def test_asymptote_on_sampled_data_has_an_interval_around_u() -> None:
    rng = np.random.default_rng(5)
    u, n, problems = 0.7, 256, 3000
    p = np.where(rng.random(problems) < u, rng.beta(1.0, 3.0, problems), 0.0)
    t = table(rng.binomial(n, p), n)
    ks = ceiling.fit_ks(n)
    found = ceiling.asymptote(problem_values({0: t}, ks), ks, Resampler(problems, 200))
    assert abs(found["U"] - u) < 0.02, found
    assert found["U_low"] - 0.01 <= u <= found["U_high"] + 0.01, found
    assert found["pass_at_n"] <= found["U_low"] <= found["U"] <= found["U_high"] <= 1.0
    assert found["rmse"] < 0.01 and found["in_band"] > 0.8, found


def test_asymptote_is_kept_between_pass_at_n_and_one() -> None:
    ks = np.array(ceiling.fit_ks(64), dtype=float)
    # saturates fast (every problem easy): an unconstrained power law overshoots 1
    values = 1 - 0.8**ks
    fit = ceiling.fit_asymptote(ks, values, lo=values[-1], hi=1.0)
    assert fit["U"] <= 1.0 and fit["U"] >= values[-1]
    free = ceiling.fit_asymptote(ks, values)
    assert free["U"] > 1.0  # why the bound is needed


def test_flat_curve() -> None:
    ks = np.array([1.0, 2.0, 4.0, 8.0])
    fit = ceiling.fit_asymptote(ks, np.full(4, 0.3), lo=0.3, hi=1.0)
    assert fit["U"] == pytest.approx(0.3) and fit["a"] == pytest.approx(0.0)


# --- crossover ----------------------------------------------------------------------------------


def test_overtake_index_on_constructed_differences() -> None:
    diff = np.array(
        [
            [-0.3, -0.1, 0.02, 0.05, 0.0],  # ahead from index 2, then tied at 1: counts
            [-0.3, 0.01, -0.01, 0.02, 0.03],  # brief lead at 1 does not count
            [-0.3, -0.2, -0.1, -0.05, -0.01],  # never
            [0.1, 0.1, 0.0, 0.0, 0.0],  # ahead from the start
        ]
    )
    assert ceiling.overtake_index(diff).tolist() == [2, 3, -1, 0]


def test_crossover_on_constructed_curves() -> None:
    """Trained: half the problems at p = 0.9, half never solved; base: every problem at
    p = 0.1. Base Pass@k = 1 - 0.9^k passes the trained 0.5 (1 - 0.1^k) first at k = 7."""
    n, half = 1000, 50
    trained = table(np.r_[np.full(half, 900), np.zeros(half, int)], n)
    base = table(np.full(2 * half, 100), n)
    ks = list(range(1, 65))
    exact = next(k for k in ks if 1 - 0.9**k > 0.5 * (1 - 0.1**k))
    assert exact == 7
    res = Resampler(2 * half, 500)
    found = ceiling.crossover(paired_values({0: base}, {0: trained}, ks), ks, res)
    assert found["k_cross"] == 7
    assert found["k_low"] <= 7 <= found["k_high"] and found["share_none"] == 0
    weak = table(np.full(2 * half, 10), n)  # p = 0.01: 1 - 0.99^64 = 0.47 < 0.5 at k = 64
    never = ceiling.crossover(paired_values({0: weak}, {0: trained}, ks), ks, res)
    assert np.isinf(never["k_cross"]) and np.isinf(never["k_high"]), never
    assert never["share_none"] > 0.5


# --- entropy fit --------------------------------------------------------------------------------


def test_entropy_fit_recovers_a_and_b() -> None:
    h = np.array([1.2, 0.9, 0.6, 0.4, 0.2])
    r = -0.25 * np.exp(h) + 0.95
    fit = ceiling.entropy_fit(h, r)
    assert fit["a"] == pytest.approx(0.25) and fit["b"] == pytest.approx(0.95)
    assert fit["R_at_H0"] == pytest.approx(0.70) and fit["r2"] == pytest.approx(1.0)
    assert np.isnan(ceiling.entropy_fit(h[:2], r[:2])["a"])  # two points: no fit


# --- diversity ----------------------------------------------------------------------------------


def test_diversity_of_a_hand_made_problem() -> None:
    samples = pd.DataFrame(
        {
            "problem_id": ["a"] * 5,
            "sample_idx": range(5),
            "completion": ["1+2=3\n", "1+2=3\n", "1 + 2=3\n", "2+1=3\n", "9\n"],
            "pred": ["1+2", "1+2", "1+2", "2+1", ""],
            "correct": [True, True, True, True, False],
        }
    )
    row = diversity.problem_table(samples).iloc[0]
    assert row["distinct_answers"] == 2  # "1+2", "2+1"; the empty answer is not one
    assert row["distinct_correct"] == 3
    assert row["distinct_correct_norm"] == 3  # "1 + 2=3" keeps its inner spaces as one each
    assert row["top1_share"] == pytest.approx(2 / 5)
    # distinct-1 over characters: {1,+,2,=,3,\n, ' ', 9} = 8 of 6+6+8+6+2 = 28 characters
    assert row["distinct_1"] == pytest.approx(8 / 28)
    assert diversity.normalise_ws("  a \t b\n") == "a b"
    words = diversity.problem_table(samples, "whitespace").iloc[0]
    assert words["distinct_1"] == pytest.approx(6 / 7)  # 1+2=3 x2, 1, +, 2=3, 2+1=3, 9


# --- the whole bench ----------------------------------------------------------------------------


def test_analyze_builds_every_table() -> None:
    rng = np.random.default_rng(6)
    p = rng.beta(0.5, 1.0, size=30)
    tables = {
        "base": {None: table(rng.binomial(32, p), 32)},
        "grpo": {None: table(rng.binomial(32, np.where(p > 0.3, 0.95, 0.0)), 32)},
        "grpo-step2": {None: table(rng.binomial(8, np.where(p > 0.2, 0.6, 0.0)), 8)},
    }
    metrics = {
        "grpo": pd.DataFrame(
            {"step": range(4), "entropy": [1.0, 0.8, 0.6, 0.5], "reward_mean": [0.2, 0.3, 0.4, 0.5]}
        )
    }
    out = bench.analyze("toy", tables, metrics, final_step=4, settings=bench.Settings(200))
    assert set(out) == set(bench.TABLES)
    ckpt = out["checkpoints"]
    assert sorted(ckpt["step"].unique()) == [0, 2, 4] and ckpt["k"].max() == 8
    assert ckpt.loc[ckpt["step"] == 2, "entropy"].iloc[0] == pytest.approx(np.mean([1.0, 0.8, 0.6]))
    cov = out["coverage"].set_index("model")
    assert cov.loc["grpo-step2", "kind"] == "checkpoint" and "union" in cov.index
    assert set(out["passk"]["model"]) == {"base", "grpo"}
    assert set(out["diff"]["reference"]) == {"grpo", "base"}
    assert out["crossover"]["model"].tolist() == ["grpo"]
    assert len(out["unsolved"]) == int(
        cov.loc["union", "n_problems"] - cov.loc["union", "n_solved"]
    )
    fit = out["entropy_fit"].set_index("target")
    assert fit.loc["pass_at_1", "n_points"] == 3
