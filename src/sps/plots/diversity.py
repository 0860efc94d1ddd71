"""Diversity of the n samples per problem, per model: answers, correct completions, distinct-n."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from sps.plots.style import (
    color_for,
    figure_legend,
    figure_models,
    label_for,
    marker_for,
    new_figure,
    save_figure,
    styled,
)

PANELS = (
    ("distinct_answers", "distinct final answers"),
    ("distinct_correct", "distinct correct completions"),
    ("top1_share", "share of the top completion"),
)


def _dots(ax: Axes, div: pd.DataFrame, metric: str, models: list[str]) -> None:
    rows = div[div["metric"] == metric].set_index("model")
    for i, model in enumerate(models):
        if model not in rows.index:
            continue
        row = rows.loc[model]
        err = np.array([[row["value"] - row["ci_low"]], [row["ci_high"] - row["value"]]])
        ax.errorbar(
            [i],
            [row["value"]],
            yerr=np.nan_to_num(err),
            color=color_for(model),
            marker=marker_for(model),
            ms=5,
            capsize=2,
        )
    ax.set_xticks(range(len(models)), [label_for(m) for m in models], rotation=30, ha="right")
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.grid(axis="x", visible=False)


def plot(tables: dict[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path):
    """Draw diversity.{fmt}: per-model means over problems with bootstrap intervals (three
    panels) and distinct-n against n (fourth panel)."""
    div = tables["diversity"]
    models = figure_models(list(div["model"].unique())) if len(div) else []
    with styled():
        fig, axes = new_figure(style, nrows=2, ncols=2, height_scale=1.6)
        flat = axes.ravel()
        for ax, (metric, title) in zip(flat[:3], PANELS, strict=True):
            _dots(ax, div, metric, models)
            ax.set_title(title, fontsize=9)
        flat[2].set_ylim(0, 1.02)
        ax = flat[3]
        handles = []
        for model in models:
            rows = div[div["metric"].str.fullmatch(r"distinct_\d")].copy()
            rows = rows[rows["model"] == model]
            rows["order"] = rows["metric"].str[-1].astype(int)
            rows = rows.sort_values("order")
            ax.fill_between(rows["order"], rows["ci_low"], rows["ci_high"],
                            color=color_for(model), alpha=0.15, lw=0)  # fmt: skip
            (line,) = ax.plot(
                rows["order"],
                rows["value"],
                color=color_for(model),
                marker=marker_for(model),
                ms=4,
                label=label_for(model),
            )
            handles.append(line)
        ax.set_xticks([1, 2, 3, 4])
        unit = str(div["ngram_unit"].iloc[0]) if "ngram_unit" in div.columns and len(div) else ""
        ax.set_xlabel(f"n (n-gram length in {'characters' if unit == 'char' else 'words'})")
        ax.set_title("distinct-n (distinct / all n-grams)", fontsize=9)
        n = int(div["n"].min()) if len(div) else 0
        bench = div["bench"].iloc[0] if len(div) else ""
        level = float(div["level"].iloc[0]) if len(div) else 0.95
        seeds = int(div["n_seeds"].max()) if "n_seeds" in div.columns and len(div) else 1
        over = f"seeds ({seeds}) and problems" if seeds > 1 else "problems"
        fig.suptitle(
            f"Diversity of the {n} samples of each problem on {bench}\n"
            f"(means over {over}; bars and bands: {level:.0%} bootstrap intervals)"
        )
        if handles:
            figure_legend(fig, handles, "outside lower center")
        return save_figure(fig, out_prefix, style)
