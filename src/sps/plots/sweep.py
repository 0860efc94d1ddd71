"""Pass@1 and Pass@n against the SPS period N, with GRPO and base as reference lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes

from sps.plots.passk import log2_k_axis
from sps.plots.style import (
    OKABE_ITO,
    color_for,
    figure_legend,
    figure_models,
    label_for,
    marker_for,
    new_figure,
    save_figure,
    sps_period,
    styled,
)

_REF_STYLE = {"grpo": "--", "base": ":"}


def endpoints(passk: pd.DataFrame) -> pd.DataFrame:
    """Per model the k = 1 row and the largest-k (k = n) row, with a `which` column."""
    rows = passk.sort_values("k")
    first = rows[rows["k"] == 1].assign(which="first")
    last = rows.groupby("model", sort=False).tail(1).assign(which="last")
    return pd.concat([first, last], ignore_index=True)


def _draw_panel(ax: Axes, points: pd.DataFrame, periods: list[tuple[int, str]]) -> None:
    by_model = points.set_index("model")
    if periods:
        xs = [n for n, _ in periods]
        ax.plot(
            xs,
            [by_model.loc[m, "pass_at_k"] for _, m in periods],
            color=OKABE_ITO["blue"],
            lw=1.3,
            zorder=2,
        )
        for n, model in periods:
            row = by_model.loc[model]
            err = [[row["pass_at_k"] - row["ci_low"]], [row["ci_high"] - row["pass_at_k"]]]
            ax.errorbar(
                [n],
                [row["pass_at_k"]],
                yerr=err,
                color=color_for(model),
                capsize=2,
                marker=marker_for(model),
                ms=5,
                zorder=3,
                label=label_for(model),
            )
        log2_k_axis(ax, xs, "SPS period N")
    for model, ls in _REF_STYLE.items():
        if model in by_model.index:
            row, color = by_model.loc[model], color_for(model)
            ax.axhline(row["pass_at_k"], color=color, ls=ls, lw=1.3, label=label_for(model))
            ax.axhspan(row["ci_low"], row["ci_high"], color=color, alpha=0.07, lw=0)


def plot_sweep(passk: pd.DataFrame, style: dict[str, Any], out_prefix: str | Path) -> list[Path]:
    """Draw sweep.{fmt}: Pass@1 (left) and Pass@n (right) against N; bars are 95% intervals."""
    ends = endpoints(passk)
    models = figure_models(list(ends["model"].unique()))
    periods = sorted((sps_period(m), m) for m in models if sps_period(m) is not None)
    n_values = sorted(ends.loc[ends["which"] == "last", "k"].unique())
    n_label = f"Pass@{n_values[0]}" if len(n_values) == 1 else "Pass@n (each model's n)"
    with styled():
        fig, axes = new_figure(style, ncols=2)
        for ax, which, title in zip(axes, ("first", "last"), ("Pass@1", n_label), strict=True):
            _draw_panel(ax, ends[ends["which"] == which], periods)
            ax.set_title(title)
        level = float(passk["level"].iloc[0]) if "level" in passk else 0.95
        seeds = int(passk["n_seeds"].max()) if "n_seeds" in passk else 1
        over = f"means over {seeds} seeds; " if seeds > 1 else ""
        axes[0].set_ylabel(f"Pass@k ({over}bars, bands: {level:.0%} bootstrap)", fontsize=8)
        if not periods:
            axes[0].text(0.5, 0.5, "no SPS runs", transform=axes[0].transAxes, ha="center")
        bench = passk["bench"].iloc[0]
        fig.suptitle(f"SPS period sweep on {bench} (N = RL steps between IRL phases)")
        figure_legend(fig, _ordered_handles(axes[0], models), loc="outside lower center")
        return save_figure(fig, out_prefix, style)


def _ordered_handles(ax: Axes, models: list[str]) -> list[Any]:
    """Legend handles in model order (base, GRPO, SPS by N) whatever the drawing order."""
    by_label = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    return [by_label[label_for(m)] for m in models if label_for(m) in by_label]
