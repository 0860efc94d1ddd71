"""The empirical ceiling: coverage at n per model, and union coverage over all models.

coverage(model)  = share of problems with c > 0 among its n samples (= pass@n),
union coverage   = share of problems with c > 0 for at least one model,
which bounds what any of these models could reach by sampling more from the same pool.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from sps.analysis.bootstrap import Resampler, TwoLevel, interval

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


# --- asymptote of a Pass@k curve ---------------------------------------------------------------
#
# Two saturating forms, each with three parameters, fitted by least squares over log-spaced k:
#   power:  pass@k ~ U - a k^(-b)                        (method.md)
#   beta:   pass@k ~ U (1 - E[(1 - p)^k]), p ~ Beta(alpha, beta)
# Why: if a share U of problems is solvable with per-sample success p ~ Beta(alpha, beta) and
# the rest never, the expected Pass@k is exactly the beta form, E[(1 - p)^k] =
# B(alpha, beta + k) / B(alpha, beta), whose tail is ~ C k^(-alpha): the power form is its
# large-k limit. Over the whole k range the power form misfits such curves (and overshoots U),
# so the form with the smaller residual sum of squares is kept ("if the fit says so").
# Both are linear in their scale given the shape, so each fit is a grid over the shape with
# closed-form least squares for the rest (numpy only).

B_GRID = np.geomspace(0.01, 5.0, 160)
ALPHA_GRID = np.geomspace(0.03, 20.0, 70)
BETA_GRID = np.geomspace(0.03, 300.0, 70)
FORMS = ("power", "beta")


def lgamma(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) for x > 0 (numpy has none): shift x >= 8 by the recurrence, then the
    Stirling series, accurate to about 1e-13."""
    x = np.asarray(x, dtype=np.float64).copy()
    shift = np.zeros_like(x)
    for _ in range(8):
        small = x < 8
        shift -= np.where(small, np.log(np.where(small, x, 1.0)), 0.0)
        x = np.where(small, x + 1, x)
    inv, inv2 = 1 / x, 1 / x**2
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    return shift + (x - 0.5) * np.log(x) - x + 0.5 * np.log(2 * np.pi) + series


def beta_tail(alpha: np.ndarray, beta: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """E[(1 - p)^k] for p ~ Beta(alpha, beta): B(alpha, beta + k) / B(alpha, beta);
    broadcasts alpha and beta against ks (last axis)."""
    alpha, beta = np.asarray(alpha)[..., None], np.asarray(beta)[..., None]
    log_ratio = lgamma(beta + ks) + lgamma(alpha + beta) - lgamma(beta) - lgamma(alpha + beta + ks)
    return np.exp(log_ratio)


def _as_batch(
    ks: np.ndarray, y: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Float ks, y as a batch (R x K), lo and hi per row (R,), and whether y was one curve."""
    y = np.asarray(y, dtype=np.float64)
    single = y.ndim == 1
    y = y[None, :] if single else y
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (len(y),))
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (len(y),))
    return np.asarray(ks, dtype=np.float64), y, lo, hi, single


def _best_per_row(sse: np.ndarray, *grids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row, each R x G array at the column of least SSE, then that SSE (each (R,))."""
    best = np.argmin(sse, axis=1)
    rows = np.arange(len(sse))
    return tuple(g[rows, best] for g in (*grids, sse))


def _beta_best(
    ks: np.ndarray,
    y: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Per row of y (R x K), the (alpha, beta) of the candidates (R x G each) with the least
    SSE, U = <y, z> / <z, z> clipped to [lo, hi], z = 1 - E[(1 - p)^k]."""
    z = 1 - beta_tail(alpha, beta, ks)  # R x G x K
    syz = np.einsum("rgk,rk->rg", z, y)
    szz = (z**2).sum(axis=2)
    u = np.clip(syz / szz, lo[:, None], hi[:, None])
    sse = (y**2).sum(axis=1)[:, None] - 2 * u * syz + u**2 * szz
    return _best_per_row(sse, alpha, beta, u)


def fit_beta(
    ks: np.ndarray,
    y: np.ndarray,
    lo: float | np.ndarray = -np.inf,
    hi: float | np.ndarray = np.inf,
) -> dict[str, np.ndarray]:
    """Least-squares U, alpha, beta of y ~ U (1 - B(alpha, beta + k) / B(alpha, beta)) with
    lo <= U <= hi, for one curve (K,) or a batch (R x K): a shared log grid over (alpha, beta),
    then two finer local grids around each row's best."""
    ks, y, lo, hi, single = _as_batch(ks, y, lo, hi)
    # coarse: one (G x K) design shared by every row, so the products are plain matmuls
    alpha, beta = (g.ravel() for g in np.meshgrid(ALPHA_GRID, BETA_GRID, indexing="ij"))
    z = 1 - beta_tail(alpha, beta, ks)
    syz, szz = y @ z.T, (z**2).sum(axis=1)[None, :]
    u = np.clip(syz / szz, lo[:, None], hi[:, None])
    best = np.argmin((y**2).sum(axis=1)[:, None] - 2 * u * syz + u**2 * szz, axis=1)
    a_best, b_best = alpha[best], beta[best]
    steps = [np.log(ALPHA_GRID[1] / ALPHA_GRID[0]), np.log(BETA_GRID[1] / BETA_GRID[0])]
    offsets = np.linspace(-1, 1, 7)
    for _ in range(2):  # refine: 7 x 7 around the best, one (then a quarter) coarse step wide
        da, db = (o.ravel() for o in np.meshgrid(offsets * steps[0], offsets * steps[1]))
        cand_a = a_best[:, None] * np.exp(da)[None, :]
        cand_b = b_best[:, None] * np.exp(db)[None, :]
        a_best, b_best, u_best, sse = _beta_best(ks, y, cand_a, cand_b, lo, hi)
        steps = [step / 4 for step in steps]
    out = {"U": u_best, "alpha": a_best, "beta": b_best, "sse": sse}
    return {k: v[0] for k, v in out.items()} if single else out


def fit_best(
    ks: np.ndarray, y: np.ndarray, lo: float = -np.inf, hi: float = np.inf
) -> dict[str, object]:
    """Both forms fitted to one curve; the one with the smaller SSE, its name under "form"."""
    fits = {"power": fit_asymptote(ks, y, lo, hi), "beta": fit_beta(ks, y, lo, hi)}
    form = min(FORMS, key=lambda f: float(fits[f]["sse"]))
    return {"form": form, **fits[form]}


def fitted_curve(row: Mapping[str, object], ks: np.ndarray) -> np.ndarray:
    """The fitted Pass@k at ks of an asymptote-table row (either form)."""
    ks = np.asarray(ks, dtype=np.float64)
    if row["form"] == "beta":
        return float(row["U"]) * (1 - beta_tail(float(row["alpha"]), float(row["beta"]), ks))
    b = 0.0 if np.isnan(float(row["b"])) else float(row["b"])
    return float(row["U"]) - float(row["a"]) * ks**-b


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
    return _best_per_row(sse, b_grid, u, a)


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
    ks, y, lo, hi, single = _as_batch(ks, y, lo, hi)
    coarse = np.broadcast_to(B_GRID, (len(y), len(B_GRID)))
    b, *_ = _best_on_grid(ks, y, coarse, lo, hi)
    # refine between the coarse neighbours of the best b
    step = B_GRID[1] / B_GRID[0]
    fine = np.geomspace(b / step, b * step, 41, axis=1)
    b, u, a, sse = _best_on_grid(ks, y, fine, lo, hi)
    out = {"U": u, "a": a, "b": np.where(a > 0, b, np.nan), "sse": sse}
    return {k: v[0] for k, v in out.items()} if single else out


def asymptote(
    x: TwoLevel,
    ks: list[int],
    resampler: Resampler,
    level: float = 0.95,
) -> dict[str, object]:
    """Fit one model's mean Pass@k over `ks` (x: its per-seed, per-problem pass@ks, the last k
    being n) in both forms, keep the one with the smaller residual, and bootstrap U in that form
    over problems and seeds.

    U is kept in [observed Pass@n, 1] by the fit (the ceiling cannot lie below what n samples
    already reached, nor above every problem), and so is its interval; U_free is the
    unconstrained fit's U and `clipped` says which bound binds. Residual check: rmse and
    max |residual|, and in_band, the share of fitted k whose fitted value lies inside the
    curve's own bootstrap interval (1 = the fit is within the noise everywhere).
    """
    ks_arr = np.asarray(ks, dtype=np.float64)
    y = x.point
    boot = resampler.resample(x)
    pass_n = float(y[-1])
    fitters = {"power": fit_asymptote, "beta": fit_beta}
    fits = {form: fitters[form](ks_arr, y, lo=pass_n, hi=1.0) for form in FORMS}
    form = min(FORMS, key=lambda f: float(fits[f]["sse"]))
    fit = fits[form]
    u_free = float(fitters[form](ks_arr, y)["U"])
    u_boot = fitters[form](ks_arr, boot, lo=boot[:, -1], hi=1.0)["U"]
    u_low, u_high = interval(u_boot, level)
    band_low, band_high = interval(boot, level)
    row: dict[str, object] = {
        "form": form,
        "U": float(fit["U"]),
        # a resample's U is at least its own Pass@n, which may lie below the observed one
        "U_low": float(np.clip(u_low, pass_n, 1.0)),
        "U_high": float(np.clip(u_high, pass_n, 1.0)),
        "U_free": u_free,
        "clipped": "to Pass@n" if u_free < pass_n else ("to 1" if u_free > 1 else ""),
        "a": float(fits["power"]["a"]) if form == "power" else np.nan,
        "b": float(fits["power"]["b"]) if form == "power" else np.nan,
        "alpha": float(fits["beta"]["alpha"]) if form == "beta" else np.nan,
        "beta": float(fits["beta"]["beta"]) if form == "beta" else np.nan,
        "rmse_power": float(np.sqrt(fits["power"]["sse"] / len(ks_arr))),
        "rmse_beta": float(np.sqrt(fits["beta"]["sse"] / len(ks_arr))),
        "pass_at_n": pass_n,
    }
    fitted = fitted_curve(row, ks_arr)
    resid = y - fitted
    in_band = (fitted >= band_low - 1e-12) & (fitted <= band_high + 1e-12)
    return row | {
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


def crossover(
    diff: TwoLevel,
    ks: list[int],
    resampler: Resampler,
    level: float = 0.95,
) -> dict[str, float]:
    """Smallest k at which the reference (the base model) overtakes a model for good, from
    diff = reference minus model per seed and problem, with a paired bootstrap interval.

    k is inf when it does not happen within ks (report "none within n"); an interval end is
    inf when more than (1 - level)/2 of the resamples have no crossover. share_none is the
    share of resamples without one.
    """
    ks_arr = np.asarray(ks, dtype=np.float64)
    point = diff.point
    boot = resampler.resample(diff)

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
