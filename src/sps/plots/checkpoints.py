"""Pass@1 and Pass@k at the largest k against training step, one line per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from sps.plots.style import (
    band_line,
    color_for,
    figure_legend,
    figure_models,
    label_for,
    marker_for,
    new_figure,
    save_figure,
    styled,
)


def plot(tables: dict[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path):
    """Draw checkpoints.{fmt}: Pass@1 (left) and Pass@k_max (right) of the evaluation snapshots;
    step 0 is the base model, the last step the final model; lines are means over seeds, bands
    the bootstrap intervals over problems and seeds."""
    ckpt = tables["checkpoints"]
    with styled():
        fig, axes = new_figure(style, ncols=2)
        handles = []
        if ckpt.empty:
            for ax in axes:
                ax.text(0.5, 0.5, "no checkpoints evaluated", transform=ax.transAxes, ha="center")
        methods = figure_models(list(ckpt["method"].unique())) if len(ckpt) else []
        k_max = int(ckpt.groupby("method")["k"].max().min()) if len(ckpt) else 1
        for ax, k in zip(axes, (1, k_max), strict=True):
            for method in methods:
                rows = ckpt[(ckpt["method"] == method) & (ckpt["k"] == k)].sort_values("step")
                line = band_line(
                    ax,
                    rows["step"],
                    rows["pass_at_k"],
                    rows["ci_low"],
                    rows["ci_high"],
                    color_for(method),
                    0.12,
                    marker=marker_for(method),
                    ms=4,
                    label=label_for(method),
                )
                if k == 1:
                    handles.append(line)
            ax.set_title(f"Pass@{k}")
            ax.set_xlabel("training step (0 = base model)")
        level = float(ckpt["level"].iloc[0]) if len(ckpt) else 0.95
        axes[0].set_ylabel(f"Pass@k on the test problems ({level:.0%} bands)")
        seeds = int(ckpt["n_seeds"].max()) if "n_seeds" in ckpt and len(ckpt) else 1
        bench = ckpt["bench"].iloc[0] if len(ckpt) else ""
        n = int(ckpt["n"].min()) if len(ckpt) else 0
        over = f"mean over {seeds} seeds, " if seeds > 1 else ""
        fig.suptitle(f"Pass@k over training on {bench} ({over}{n} samples per problem)")
        if handles:
            figure_legend(fig, handles, "outside lower center")
        return save_figure(fig, out_prefix, style)
