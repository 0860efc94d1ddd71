"""The empirical ceiling: coverage at n, the fitted asymptote U with its interval, and unions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sps.analysis.ceiling import UNION, fitted_curve
from sps.plots.passk import log2_k_axis
from sps.plots.style import (
    GREY,
    OKABE_ITO,
    color_for,
    figure_models,
    label_for,
    marker_for,
    new_figure,
    save_figure,
    styled,
)

EXTRAPOLATE = 16  # the right panel draws the fitted curves out to k = 16 n


def _cross_text(row: pd.Series) -> str:
    if np.isinf(row["k_cross"]):
        return f"base: none ≤ {int(row['n'])}"
    return f"base ahead from k = {int(row['k_cross'])}"


def plot(tables: dict[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path):
    """Draw ceiling.{fmt}. Left: per model coverage at n (filled; mean over seeds with its
    interval), fitted U with its interval (open diamond and bar) and the union coverage
    (dashed); right: observed Pass@k (markers) with the fitted curves, extrapolated (dashed)
    beyond n. Intervals are bootstraps over problems and seeds."""
    cov, fit, cross = tables["coverage"], tables["asymptote"], tables.get("crossover")
    models = figure_models(list(fit["model"]))
    level = float(fit["level"].iloc[0]) if len(fit) else 0.95
    by_cov = cov.set_index("model")
    with styled():
        fig, (left, right) = new_figure(style, ncols=2, width_ratios=(1, 1.25))
        for i, model in enumerate(models):
            row = fit[fit["model"] == model].iloc[0]
            color, y = color_for(model), len(models) - 1 - i
            left.errorbar(
                [row["U"]],
                [y],
                xerr=[[row["U"] - row["U_low"]], [row["U_high"] - row["U"]]],
                color=color,
                marker="D",
                mfc="white",
                ms=6,
                capsize=3,
                lw=1.2,
            )
            cov_row = by_cov.loc[model]
            cov_err = [[cov_row["coverage"] - cov_row.get("ci_low", np.nan)],
                       [cov_row.get("ci_high", np.nan) - cov_row["coverage"]]]  # fmt: skip
            left.errorbar(
                [cov_row["coverage"]],
                [y],
                xerr=np.nan_to_num(np.asarray(cov_err, dtype=float)),
                marker=marker_for(model),
                color=color,
                ms=6,
                capsize=2,
                ls="none",
            )
            if cross is not None and model in set(cross["model"]):
                text = _cross_text(cross[cross["model"] == model].iloc[0])
                left.annotate(
                    text,
                    (0, y),
                    xytext=(2, -9),
                    textcoords="offset points",
                    fontsize=6,
                    color=GREY,
                    xycoords=("axes fraction", "data"),
                )
        if UNION in by_cov.index:
            union = float(by_cov.loc[UNION, "coverage"])
            left.axvline(union, color=GREY, ls="--", lw=1.2)
            left.annotate(
                f"union {union:.2f}",
                (union, len(models) - 0.55),
                fontsize=7,
                color=GREY,
                ha="right",
                xytext=(-2, 0),
                textcoords="offset points",
            )
        left.set_yticks(range(len(models)), [label_for(m) for m in reversed(models)])
        left.set_ylim(-0.8, len(models) - 0.3)
        left.set_xlim(min(0.9 * float(fit["pass_at_n"].min()) if len(fit) else 1.0, 0.95), 1.005)
        left.set_xlabel("share of problems")
        left.grid(axis="y", visible=False)
        left.set_title(f"filled: coverage at n; ◇: U ({level:.0%} CI)", fontsize=9)
        _fit_panel(right, tables.get("passk"), fit, models)
        bench = cov["bench"].iloc[0]
        fig.suptitle(f"Empirical ceiling on {bench}: coverage and the fitted asymptote U of Pass@k")
        return save_figure(fig, out_prefix, style)


def _fit_panel(ax: Any, passk: pd.DataFrame | None, fit: pd.DataFrame, models: list[str]) -> None:
    n_max = 1
    for model in models:
        row = fit[fit["model"] == model].iloc[0]
        color = color_for(model)
        if passk is not None:
            obs = passk[passk["model"] == model].sort_values("k")
            n_max = max(n_max, int(obs["k"].max()))
            ax.plot(
                obs["k"],
                obs["pass_at_k"],
                ls="none",
                marker=marker_for(model),
                ms=3.5,
                color=color,
                label=label_for(model),
            )
        n = int(row["n"])
        n_max = max(n_max, n)
        inside = np.geomspace(1, n, 60)
        outside = np.geomspace(n, EXTRAPOLATE * n, 20)
        ax.plot(inside, fitted_curve(row, inside), color=color, lw=1.1)
        ax.plot(outside, fitted_curve(row, outside), color=color, lw=1.1, ls="--")
    powers = [1 << j for j in range((EXTRAPOLATE * n_max).bit_length())]
    step = -(-len(powers) // 7)  # at most 7 ticks: the panel is half the figure wide
    ks = powers[::step]
    log2_k_axis(ax, ks, "k (dashed: extrapolated beyond n)")
    ax.axvline(n_max, color=OKABE_ITO["black"], lw=0.6, alpha=0.4)
    ax.set_ylabel("Pass@k")
    ax.set_title("observed (markers) and fitted Pass@k", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
