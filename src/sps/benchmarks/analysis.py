"""Timing of the analysis at scale: `python -m sps.benchmarks.analysis [--problems P] [--n N]`.

Targets (issue 5, on 2 CPU cores): Pass@k for 10,000 problems x n = 1024 at every k = 1..n in
under 1 s, and 1000 bootstrap resamples of that in under 10 s. Also times the default-k curve
with its interval (what `sps analyze` stores), the paired difference of two models at every k,
and the asymptote fit with its bootstrap; then the same for models with --seeds seeds (the
two-level bootstrap over problems and seeds). Prints one line per measurement (best of
--repeat).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from sps.analysis import ceiling
from sps.analysis.bootstrap import Resampler, interval
from sps.analysis.passk import curve, grouped_values, paired_values, problem_values

TARGETS = {"passk_all_k": 1.0, "bootstrap_all_k": 10.0}


def best_time(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def synthetic_table(problems: int, n: int, seed: int = 0) -> pd.DataFrame:
    """(problem_id, n, c) with per-problem success p ~ Beta(0.3, 1.5), a fifth never solved."""
    rng = np.random.default_rng(seed)
    p = np.where(rng.random(problems) < 0.8, rng.beta(0.3, 1.5, problems), 0.0)
    ids = [f"p{i:06d}" for i in range(problems)]
    return pd.DataFrame({"problem_id": ids, "n": n, "c": rng.binomial(n, p)})


def run(problems: int, n: int, resamples: int, repeat: int, seeds: int = 3) -> dict[str, float]:
    table = synthetic_table(problems, n)
    other = synthetic_table(problems, n, seed=1)
    many = {s: synthetic_table(problems, n, seed=10 + s) for s in range(seeds)}
    many_other = {s: synthetic_table(problems, n, seed=20 + s) for s in range(seeds)}
    n_arr, c_arr = table["n"].to_numpy(), table["c"].to_numpy()
    all_ks = list(range(1, n + 1))
    res = Resampler(problems, resamples)

    def passk_all_k() -> np.ndarray:
        groups, values = grouped_values(n_arr, c_arr, all_ks)
        return np.bincount(groups, minlength=len(values)) @ values / problems

    def bootstrap_all_k() -> tuple[np.ndarray, np.ndarray]:
        groups, values = grouped_values(n_arr, c_arr, all_ks)
        return interval(res.means(values, groups))

    def paired_all_k(a: dict, b: dict) -> tuple[np.ndarray, np.ndarray]:
        return interval(res.resample(paired_values(a, b, all_ks)))

    def asymptote(tables: dict) -> dict[str, object]:
        ks = ceiling.fit_ks(n)
        return ceiling.asymptote(problem_values(tables, ks), ks, res)

    def bootstrap_seeds_all_k() -> tuple[np.ndarray, np.ndarray]:
        return interval(res.resample(problem_values(many, all_ks)))

    return {
        "passk_all_k": best_time(passk_all_k, repeat),
        "bootstrap_all_k": best_time(bootstrap_all_k, repeat),
        "curve_default_ks": best_time(lambda: curve(table, resampler=res), repeat),
        "paired_diff_all_k": best_time(lambda: paired_all_k({0: table}, {0: other}), repeat),
        "asymptote_with_bootstrap": best_time(lambda: asymptote({0: table}), repeat),
        f"bootstrap_all_k_{seeds}_seeds": best_time(bootstrap_seeds_all_k, repeat),
        f"curve_default_ks_{seeds}_seeds": best_time(lambda: curve(many, resampler=res), repeat),
        f"paired_diff_all_k_{seeds}_seeds": best_time(
            lambda: paired_all_k(many, many_other), repeat
        ),
        f"asymptote_{seeds}_seeds": best_time(lambda: asymptote(many), repeat),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of this many")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the multi-seed timings")
    args = parser.parse_args(argv)
    print(
        f"{args.problems} problems x n = {args.n}, {args.resamples} resamples, "
        f"{os.cpu_count()} CPUs visible, best of {args.repeat}"
    )
    timings = run(args.problems, args.n, args.resamples, args.repeat, args.seeds)
    for name, seconds in timings.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"  (target < {target:g} s: "
        verdict += "" if target is None else ("ok)" if seconds < target else "MISSED)")
        print(f"{name:26s} {seconds:8.3f} s{verdict}")


if __name__ == "__main__":
    main()
