"""The empirical ceiling: coverage at n per model, and union coverage over all models.

coverage(model)  = share of problems with c > 0 among its n samples (= pass@n),
union coverage   = share of problems with c > 0 for at least one model,
which bounds what any of these models could reach by sampling more from the same pool.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sps.analysis.bootstrap import Resampler, interval

UNION = "union"


def coverage(table: pd.DataFrame) -> float:
    """Share of problems with at least one correct sample."""
    return float((table["c"] > 0).mean())


def solved_matrix(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Boolean problem_id x model table of c > 0; models must share one problem set."""
    if not tables:
        raise ValueError("no models given")
    columns: dict[str, pd.Series] = {}
    for name, table in tables.items():
        ids = table["problem_id"].astype(str)
        if ids.duplicated().any():
            raise ValueError(
                f"model {name!r}: duplicate problem_id {ids[ids.duplicated()].iloc[0]!r}"
            )
        if columns:
            _check_same_problems(*next(iter(columns.items())), name, ids)
        columns[name] = pd.Series(table["c"].to_numpy() > 0, index=ids.to_numpy())
    return pd.DataFrame(columns).sort_index()


def _check_same_problems(ref_name: str, ref: pd.Series, name: str, ids: pd.Series) -> None:
    reference, current = set(ref.index), set(ids)
    if current != reference:
        extra, missing = sorted(current - reference)[:3], sorted(reference - current)[:3]
        raise ValueError(
            f"models {ref_name!r} and {name!r} disagree on the problem set: "
            f"{name!r} adds {extra} and lacks {missing} (first few shown)"
        )


def union_coverage(tables: Mapping[str, pd.DataFrame]) -> float:
    """Share of problems solved by any sample of any model."""
    return float(solved_matrix(tables).any(axis=1).mean())


def unsolved(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Problem ids that no sample of any model solved, sorted."""
    solved = solved_matrix(tables).any(axis=1)
    return [str(i) for i in solved.index[~solved]]


def coverage_table(tables: Mapping[str, pd.DataFrame], bench: str) -> pd.DataFrame:
    """Rows per model plus "union": model, bench, n, coverage, n_problems, n_solved.

    n is the smallest per-problem sample count; for "union" it is the sum over models.
    """
    solved = solved_matrix(tables)
    rows = [(name, int(t["n"].min()), int(solved[name].sum())) for name, t in tables.items()]
    rows.append((UNION, sum(r[1] for r in rows), int(solved.any(axis=1).sum())))
    frame = pd.DataFrame(rows, columns=["model", "n", "n_solved"])
    frame.insert(1, "bench", bench)
    frame["n_problems"] = len(solved)
    frame["coverage"] = frame["n_solved"] / frame["n_problems"]
    return frame[["model", "bench", "n", "coverage", "n_problems", "n_solved"]]


# --- asymptote of a Pass@k curve: pass@k ~ U - a k^(-b) ---------------------------------------
#
# Why this form: if a problem's per-sample success probability p has a density that behaves
# like p^(b-1) near 0 (a Beta(b, .) share of hard-but-solvable problems) and a share 1 - U of
# problems has p = 0, then 1 - pass@k = (1 - U) + E[(1 - p)^k] and E[(1 - p)^k] ~ C k^(-b).
# For fixed b the model is linear in (U, a), so the fit is a grid over b with closed-form least
# squares for U and a at each b (numpy only), refined on a finer grid around the best b.

B_GRID = np.geomspace(0.01, 5.0, 160)


def fit_ks(n: int, per_octave: int = 4) -> list[int]:
    """Log-spaced integer k in 1..n (about per_octave per doubling), so every scale of k
    weighs alike in the fit; ends at n."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    points = int(per_octave * np.log2(n)) + 1 if n > 1 else 1
    return sorted({int(round(k)) for k in np.geomspace(1, n, points)} | {n})


def _best_on_grid(
    ks: np.ndarray, y: np.ndarray, b_grid: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per row of y (R x K), the b of b_grid (R x G) with the least SSE, U kept in [lo, hi]
    and a >= 0; returns b, U, a, SSE (each (R,))."""
    x = ks[None, None, :] ** -b_grid[:, :, None]  # R x G x K
    xc = x - x.mean(axis=2, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sxx = (xc**2).sum(axis=2)
    sxy = np.einsum("rgk,rk->rg", xc, yc)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where((sxy < 0) & (sxx > 0), -sxy / sxx, 0.0)  # a >= 0: a rising curve
    u = y.mean(axis=1)[:, None] + a * x.mean(axis=2)
    # A bound that binds holds U there (the least-squares optimum of a convex problem lies on
    # the bound it violates); a is then the least-squares slope for that fixed U.
    bound = np.clip(u, lo[:, None], hi[:, None])
    fixed = bound != u
    slope = np.einsum("rgk,rgk->rg", bound[:, :, None] - y[:, None, :], x) / (x**2).sum(axis=2)
    a = np.where(fixed, np.maximum(slope, 0.0), a)
    u = bound
    sse = ((y[:, None, :] - u[:, :, None] + a[:, :, None] * x) ** 2).sum(axis=2)
    best = np.argmin(sse, axis=1)
    rows = np.arange(len(y))
    return b_grid[rows, best], u[rows, best], a[rows, best], sse[rows, best]


def fit_asymptote(
    ks: np.ndarray,
    y: np.ndarray,
    lo: float | np.ndarray = -np.inf,
    hi: float | np.ndarray = np.inf,
) -> dict[str, np.ndarray]:
    """Least-squares U, a, b of y ~ U - a k^(-b) with a >= 0 and lo <= U <= hi (per curve),
    for one curve (K,) or a batch (R x K).

    Returns arrays (scalars for one curve) U, a, b, sse. A flat curve gives a = 0 (b NaN).
    """
    ks = np.asarray(ks, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    single = y.ndim == 1
    y = y[None, :] if single else y
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (len(y),))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (len(y),))
    coarse = np.broadcast_to(B_GRID, (len(y), len(B_GRID)))
    b, *_ = _best_on_grid(ks, y, coarse, lo, hi)
    # refine between the coarse neighbours of the best b
    step = B_GRID[1] / B_GRID[0]
    fine = np.geomspace(b / step, b * step, 41, axis=1)
    b, u, a, sse = _best_on_grid(ks, y, fine, lo, hi)
    out = {"U": u, "a": a, "b": np.where(a > 0, b, np.nan), "sse": sse}
    return {k: v[0] for k, v in out.items()} if single else out


def asymptote(
    groups: np.ndarray,
    values: np.ndarray,
    ks: list[int],
    resampler: Resampler,
    level: float = 0.95,
) -> dict[str, float]:
    """Fit U - a k^(-b) to one model's mean Pass@k over `ks` (values: per-group pass@ks, the
    last k being n), with a bootstrap interval for U and a residual check.

    The fit keeps U in [observed Pass@n, 1] (the ceiling cannot lie below what n samples
    already reached, nor above every problem), and so does the interval; U_free is the
    unconstrained fit's U, and `clipped` says which bound binds. Residual check: rmse and
    max |residual|, and in_band, the share of fitted k whose fitted value lies inside the
    curve's own bootstrap interval (1 = the fit is within the noise everywhere).
    """
    ks_arr = np.asarray(ks, dtype=np.float64)
    y = np.bincount(groups, minlength=len(values)) @ values / len(groups)
    boot = resampler.means(values, groups)
    pass_n = float(y[-1])
    free = fit_asymptote(ks_arr, y)
    fit = fit_asymptote(ks_arr, y, lo=pass_n, hi=1.0)
    fits = fit_asymptote(ks_arr, boot, lo=boot[:, -1], hi=1.0)
    u_low, u_high = interval(fits["U"], level)
    band_low, band_high = interval(boot, level)
    fitted = fit["U"] - fit["a"] * ks_arr ** -np.nan_to_num(fit["b"], nan=0.0)
    resid = y - fitted
    in_band = (fitted >= band_low - 1e-12) & (fitted <= band_high + 1e-12)
    u_free = float(free["U"])
    return {
        "U": float(fit["U"]),
        # a resample's U is at least its own Pass@n, which may lie below the observed one
        "U_low": float(np.clip(u_low, pass_n, 1.0)),
        "U_high": float(np.clip(u_high, pass_n, 1.0)),
        "U_free": u_free,
        "clipped": "to Pass@n" if u_free < pass_n else ("to 1" if u_free > 1 else ""),
        "a": float(fit["a"]),
        "b": float(fit["b"]),
        "pass_at_n": pass_n,
        "rmse": float(np.sqrt(np.mean(resid**2))),
        "max_abs_resid": float(np.abs(resid).max()),
        "in_band": float(in_band.mean()),
        "n_fit_ks": len(ks),
        "n": int(ks_arr[-1]),
    }


# --- crossover: the k where the base model overtakes a trained one ------------------------------

TIE = 1e-9  # differences this small are ties (two curves that both reached 1)


def overtake_index(diff: np.ndarray) -> np.ndarray:
    """Index of the first k where diff = reference - model > 0 and stays >= 0 for all larger k
    (the reference overtakes for good); -1 where it never does. Works on (..., K) arrays."""
    diff = np.asarray(diff, dtype=np.float64)
    suffix_min = np.minimum.accumulate(diff[..., ::-1], axis=-1)[..., ::-1]
    ok = (diff > TIE) & (suffix_min >= -TIE)
    return np.where(ok.any(axis=-1), ok.argmax(axis=-1), -1)


def paired_groups(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(groups, values) of the per-problem difference a - b of two (groups, values) pairs on the
    same problems; one group per distinct pair of groups."""
    (ga, va), (gb, vb) = a, b
    keys, groups = np.unique(ga * (int(gb.max()) + 1) + gb, return_inverse=True)
    ia, ib = keys // (int(gb.max()) + 1), keys % (int(gb.max()) + 1)
    return groups.reshape(-1), va[ia] - vb[ib]


def crossover(
    reference: tuple[np.ndarray, np.ndarray],
    model: tuple[np.ndarray, np.ndarray],
    ks: list[int],
    resampler: Resampler,
    level: float = 0.95,
) -> dict[str, float]:
    """Smallest k at which `reference` (the base model) overtakes `model` for good, with a
    paired bootstrap interval over problems.

    k is inf when it does not happen within ks (report "none within n"); an interval end is
    inf when more than (1 - level)/2 of the resamples have no crossover. share_none is the
    share of resamples without one.
    """
    groups, values = paired_groups(reference, model)
    ks_arr = np.asarray(ks, dtype=np.float64)
    point = np.bincount(groups, minlength=len(values)) @ values / len(groups)
    boot = resampler.means(values, groups)

    def to_k(idx: np.ndarray) -> np.ndarray:
        return np.where(idx >= 0, ks_arr[np.maximum(idx, 0)], np.inf)

    k_boot = to_k(overtake_index(boot))
    tail = (1 - level) / 2
    low, high = np.quantile(k_boot, [tail, 1 - tail], method="inverted_cdf")
    return {
        "k_cross": float(to_k(overtake_index(point))),
        "k_low": float(low),
        "k_high": float(high),
        "share_none": float(np.isinf(k_boot).mean()),
        "n": int(ks_arr.max()),
    }


# --- entropy-performance fit (Cui et al. 2025): R = -a exp(H) + b -------------------------------


def entropy_fit(entropy: np.ndarray, perf: np.ndarray) -> dict[str, float]:
    """Least squares R = -a exp(H) + b; R_at_H0 = b - a is the performance predicted when the
    entropy has collapsed to 0. Needs three points or more (else NaN); r2 is the fit's R^2."""
    h = np.asarray(entropy, dtype=np.float64)
    r = np.asarray(perf, dtype=np.float64)
    keep = np.isfinite(h) & np.isfinite(r)
    h, r = h[keep], r[keep]
    nan = {"a": np.nan, "b": np.nan, "R_at_H0": np.nan, "r2": np.nan, "n_points": int(len(h))}
    x = np.exp(h)
    if len(h) < 3 or np.ptp(x) == 0:
        return nan
    slope, intercept = np.polyfit(x, r, 1)
    resid = r - (slope * x + intercept)
    total = ((r - r.mean()) ** 2).sum()
    r2 = 1 - (resid**2).sum() / total if total > 0 else np.nan
    a, b = -slope, intercept
    return {"a": a, "b": b, "R_at_H0": b - a, "r2": float(r2), "n_points": int(len(h))}
