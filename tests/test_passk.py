"""Pass@k estimator against brute force, its basic properties, and the coverage ceiling."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import pytest

from sps.analysis import ceiling
from sps.analysis.passk import count_table, curve, default_ks, pass_at_k


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of n samples (first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


def test_matches_brute_force_enumeration() -> None:
    for n in range(1, 11):
        for c in range(n + 1):
            for k in range(1, n + 1):
                got = pass_at_k(np.array([n]), np.array([c]), k)[0]
                assert got == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_vectorised_matches_scalar_calls() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(8, 40, size=200)
    c = rng.integers(0, n + 1)
    batch = pass_at_k(n, c, 5)
    single = [pass_at_k(np.array([a]), np.array([b]), 5)[0] for a, b in zip(n, c, strict=True)]
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-14)


def test_pass_at_1_is_c_over_n() -> None:
    n = np.array([1, 7, 64, 1024, 1024])
    c = np.array([1, 3, 0, 1, 1023])
    np.testing.assert_allclose(pass_at_k(n, c, 1), c / n, rtol=1e-12)


def test_monotone_bounded_and_one_when_too_few_wrong() -> None:
    n = np.full(65, 64)
    c = np.arange(65)
    previous = np.zeros(65)
    for k in default_ks(64):
        value = pass_at_k(n, c, k)
        assert ((0 <= value) & (value <= 1)).all()
        assert (value >= previous - 1e-12).all()
        assert (value[n - c < k] == 1.0).all()
        assert (value[c == 0] == 0.0).all()
        previous = value


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        pass_at_k(np.array([4, 8]), np.array([1, 1]), 5)
    with pytest.raises(ValueError):
        pass_at_k(np.array([4]), np.array([5]), 1)
    with pytest.raises(ValueError):
        pass_at_k(np.array([4]), np.array([1]), 0)


def test_default_ks() -> None:
    assert default_ks(1) == [1]
    assert default_ks(8) == [1, 2, 4, 8]
    assert default_ks(10) == [1, 2, 4, 8, 10]
    assert default_ks(1024)[-1] == 1024 and len(default_ks(1024)) == 11


def test_large_table_is_fast() -> None:
    rng = np.random.default_rng(1)
    n = np.full(10_000, 1024)
    c = rng.integers(0, 1025, size=10_000)
    start = time.perf_counter()
    values = np.stack([pass_at_k(n, c, k) for k in default_ks(1024)])
    assert time.perf_counter() - start < 2.0
    np.testing.assert_allclose(values[0], c / n, rtol=1e-10)


def _samples(correct: dict[str, list[bool]]) -> pd.DataFrame:
    rows = [(p, i, v) for p, vs in correct.items() for i, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["problem_id", "sample_idx", "correct"])


def test_count_table_and_curve() -> None:
    table = count_table(_samples({"b": [True, False, True], "a": [False] * 3}))
    assert table.to_dict("list") == {"problem_id": ["a", "b"], "n": [3, 3], "c": [0, 2]}
    frame = curve(table)
    assert frame["k"].tolist() == [1, 2, 3]
    assert frame["pass_at_k"].tolist() == pytest.approx([1 / 3, 0.5, 0.5])
    assert (frame["ci_low"] <= frame["pass_at_k"] + 1e-12).all()


def test_count_table_names_missing_column_and_file() -> None:
    frame = _samples({"a": [True]}).drop(columns="correct")
    with pytest.raises(ValueError, match=r"'correct'.*shard0\.parquet"):
        count_table(frame, source="shard0.parquet")
    with pytest.raises(ValueError, match="duplicate"):
        count_table(pd.concat([_samples({"a": [True]})] * 2))


def _table(c: dict[str, int], n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"problem_id": list(c), "n": n, "c": list(c.values())})


def test_ceiling_hand_example() -> None:
    tables = {
        "base": _table({"p1": 1, "p2": 0, "p3": 0, "p4": 0}),
        "grpo": _table({"p2": 3, "p1": 4, "p3": 0, "p4": 0}),  # order must not matter
    }
    assert ceiling.coverage(tables["base"]) == 0.25
    assert ceiling.union_coverage(tables) == 0.5
    assert ceiling.unsolved(tables) == ["p3", "p4"]
    cov = ceiling.coverage_table(tables, "toy").set_index("model")
    assert cov.loc["union", "coverage"] == 0.5 and cov.loc["union", "n"] == 8
    assert (cov.loc["union", "coverage"] >= cov["coverage"]).all()


def test_union_at_least_each_model() -> None:
    rng = np.random.default_rng(2)
    ids = [f"p{i}" for i in range(50)]
    tables = {m: _table(dict(zip(ids, rng.integers(0, 3, 50), strict=True))) for m in "abc"}
    union = ceiling.union_coverage(tables)
    assert all(union >= ceiling.coverage(t) for t in tables.values())


def test_ceiling_rejects_different_problem_sets() -> None:
    tables = {"base": _table({"p1": 1, "p2": 0}), "grpo": _table({"p1": 1, "p3": 0})}
    with pytest.raises(ValueError, match="disagree"):
        ceiling.union_coverage(tables)
