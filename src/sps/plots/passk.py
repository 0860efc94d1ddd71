"""Pass@k against k for every model, with the union-coverage ceiling as a dashed line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, NullLocator

from sps.analysis.ceiling import UNION
from sps.plots.style import (
    GREY,
    color_for,
    figure_models,
    label_for,
    marker_for,
    new_figure,
    save_figure,
    styled,
)


def log2_k_axis(ax: Axes, ks: list[int], label: str) -> None:
    """Log2 x-axis with a plain-integer tick at each k (thinned to at most ~12 ticks)."""
    ax.set_xscale("log", base=2)
    step = max(1, len(ks) // 12 + (len(ks) % 12 > 0))
    ax.xaxis.set_major_locator(FixedLocator(ks[::step]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(k) for k in ks[::step]])
    ax.set_xlabel(label)


def seeds_label(model: str, rows: pd.DataFrame) -> str:
    """Legend text with the number of seeds averaged when there are several."""
    seeds = int(rows["n_seeds"].max()) if "n_seeds" in rows and len(rows) else 1
    return label_for(model) + (f" ({seeds} seeds)" if seeds > 1 else "")


def _draw_model(ax: Axes, rows: pd.DataFrame, model: str) -> None:
    rows = rows.sort_values("k")
    color = color_for(model)
    if {"ci_low", "ci_high"} <= set(rows.columns):
        ax.fill_between(rows["k"], rows["ci_low"], rows["ci_high"], color=color, alpha=0.15, lw=0)
    ax.plot(
        rows["k"],
        rows["pass_at_k"],
        color=color,
        marker=marker_for(model),
        ms=3.5,
        label=seeds_label(model, rows),
    )


def plot_passk(
    passk: pd.DataFrame, coverage: pd.DataFrame, style: dict[str, Any], out_prefix: str | Path
) -> list[Path]:
    """Draw passk.{fmt}: one curve per model (mean over its seeds, band: the two-level
    bootstrap interval over problems and seeds), dashed union coverage."""
    bench = str(passk["bench"].iloc[0])
    with styled():
        fig, ax = new_figure(style)
        for model in figure_models(list(passk["model"].unique())):
            _draw_model(ax, passk[passk["model"] == model], model)
        union = coverage[coverage["model"] == UNION]
        if not union.empty:
            value = float(union["coverage"].iloc[0])
            ax.axhline(
                value,
                color=GREY,
                ls="--",
                lw=1.2,
                label=f"union coverage, all models and snapshots ({value:.3f})",
            )
        log2_k_axis(ax, sorted(int(k) for k in passk["k"].unique()), "k (samples per problem)")
        ax.set_ylabel("Pass@k")
        level = float(passk["level"].iloc[0]) if "level" in passk else 0.95
        ax.set_title(f"Pass@k on {bench}: means over seeds\nbands: {level:.0%} bootstrap over "
                     "problems and seeds", fontsize=9)  # fmt: skip
        ax.legend(loc="lower right")
        return save_figure(fig, out_prefix, style)
