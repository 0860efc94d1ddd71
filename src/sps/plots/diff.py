"""Pass@k of each model minus GRPO's (and minus base's), with paired bootstrap intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from sps.plots.passk import log2_k_axis
from sps.plots.style import (
    GREY,
    band_line,
    color_for,
    figure_legend,
    figure_models,
    label_for,
    marker_for,
    model_order,
    new_figure,
    save_figure,
    styled,
)

REFERENCES = ("grpo", "base")


def plot(tables: dict[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path):
    """Draw diff.{fmt}: one panel per reference (GRPO, then base), one line per model."""
    diff = tables["diff"]
    refs = [r for r in REFERENCES if r in set(diff["reference"])] or ["grpo"]
    level = float(diff["level"].iloc[0]) if len(diff) else 0.95
    with styled():
        fig, axes = new_figure(style, ncols=len(refs), squeeze=False)
        handles: dict[str, Any] = {}
        for ax, ref in zip(axes[0], refs, strict=True):
            rows = diff[diff["reference"] == ref]
            ax.axhline(0, color=GREY, lw=1.0, zorder=1)
            for model in figure_models(list(rows["model"].unique())):
                part = rows[rows["model"] == model].sort_values("k")
                line = band_line(
                    ax,
                    part["k"],
                    part["diff"],
                    part["ci_low"],
                    part["ci_high"],
                    color_for(model),
                    0.15,
                    marker=marker_for(model),
                    ms=3.5,
                    label=label_for(model),
                )
                handles.setdefault(model, line)
            if len(rows):
                log2_k_axis(ax, sorted(int(k) for k in rows["k"].unique()), "k")
            else:
                ax.text(0.5, 0.5, f"no {label_for(ref)} run", transform=ax.transAxes, ha="center")
            ax.set_title(f"Pass@k minus {label_for(ref)}'s")
        axes[0][0].set_ylabel(f"difference in Pass@k ({level:.0%} paired bootstrap)")
        seeds = int(diff["n_seeds"].max()) if "n_seeds" in diff and len(diff) else 1
        pairing = f"paired by problem and seed, {seeds} seeds" if seeds > 1 else "paired"
        bench = diff["bench"].iloc[0] if len(diff) else ""
        fig.suptitle(f"Differences on {bench} ({pairing})\nabove 0, the model beats the reference")
        figure_legend(fig, [handles[m] for m in model_order(list(handles))], "outside lower center")
        return save_figure(fig, out_prefix, style)
