"""Heatmap of the SPS sensitivity grid: each cell's Pass@1 and Pass@n minus GRPO's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from sps.analysis.sensitivity import strength_label, varying_keys
from sps.plots.style import new_figure, save_figure, styled

PANELS = ("pass1", "passn")
CMAP = "PuOr"  # diverging and colour-blind safe: orange below GRPO, purple above


def row_labels(sens: pd.DataFrame) -> list[str]:
    """Each cell's heatmap row: its IRL strength (the settings that vary or are overridden),
    buffer-demo cells marked."""
    keys = [k for k in varying_keys(sens) if k != "demos"]
    return [
        strength_label(r, keys) + (" (buffer demos)" if r["demos"] == "buffer" else "")
        for _, r in sens.iterrows()
    ]


def grid(sens: pd.DataFrame) -> tuple[list[str], list[int], list[bool]]:
    """Row labels in table order (buffer-demo rows last), column periods N, and per row
    whether it holds buffer-demo cells."""
    labels = list(dict.fromkeys(row_labels(sens)))
    buffer = [label.endswith("(buffer demos)") for label in labels]
    return labels, sorted(int(p) for p in sens["period"].unique()), buffer


def _panel(ax: Axes, sens: pd.DataFrame, name: str, title: str) -> Any:
    labels, periods, buffer = grid(sens)
    values = np.full((len(labels), len(periods)), np.nan)
    cells = zip(row_labels(sens), sens.iterrows(), strict=True)
    placed = [
        (labels.index(label), periods.index(int(row["period"])), row) for label, (_, row) in cells
    ]
    for i, j, row in placed:
        values[i, j] = row[f"d_{name}"]
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    limit = limit or 1.0
    image = ax.imshow(values, cmap=CMAP, vmin=-limit, vmax=limit, aspect="auto")
    for i, j, row in placed:
        value, low, high = row[f"d_{name}"], row[f"d_{name}_low"], row[f"d_{name}_high"]
        color = "white" if abs(value) > 0.6 * limit else "black"  # legible on dark cells
        ax.text(j, i - 0.12, f"{value:+.3f}", ha="center", va="center", fontsize=7, color=color)
        ax.text(j, i + 0.2, f"[{low:+.3f}, {high:+.3f}]", ha="center", va="center",
                fontsize=5, color=color)  # fmt: skip
        if row[f"{name}_excludes_0"]:  # the interval excludes 0: a heavy frame
            ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, lw=2, ec="black"))
    for i, is_buffer in enumerate(buffer):
        if is_buffer:
            ax.add_patch(Rectangle((-0.5, i - 0.5), len(periods), 1, fill=False, hatch="//",
                                   lw=0, ec="0.6"))  # fmt: skip
    ax.set_xticks(range(len(periods)), [f"N={p}" for p in periods])
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(title)
    ax.grid(False)
    return image


def plot(tables: dict[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path):
    """Draw sensitivity.{fmt}: per grid cell (rows: IRL strength, columns: N) the paired
    change in Pass@1 (left) and Pass@n (right) against GRPO, values and intervals written in,
    a heavy frame where the interval excludes 0, buffer-demo rows hatched; blank cells were
    not run. Without grid runs the figure says so."""
    sens = tables["sensitivity"]
    with styled():
        if sens.empty:
            fig, ax = new_figure(style)
            ax.text(0.5, 0.5, "no sensitivity grid runs\n(no SPS run with IRL overrides, or no "
                    "GRPO run)", ha="center", va="center", transform=ax.transAxes)  # fmt: skip
            ax.set_axis_off()
            return save_figure(fig, out_prefix, style)
        labels, periods, _ = grid(sens)
        wide = {**style, "width": style["width"] * max(1.4, 0.6 + 0.3 * len(periods))}
        fig, axes = new_figure(wide, ncols=2, height_scale=max(1.0, 0.5 + 0.2 * len(labels)))
        n = int(sens["n"].min())
        for ax, name in zip(axes, PANELS, strict=True):
            image = _panel(ax, sens, name, "ΔPass@1" if name == "pass1" else f"ΔPass@{n}")
            fig.colorbar(image, ax=ax, location="bottom", shrink=0.8, label="cell minus GRPO")
        axes[1].set_yticklabels([])
        level = float(sens["level"].iloc[0])
        seeds = int(sens["n_seeds"].min())
        bench = sens["bench"].iloc[0]
        fig.suptitle(
            f"SPS sensitivity on {bench}: cell minus GRPO, paired over problems and {seeds} "
            f"seed(s), [{level:.0%} interval]\nN: RL steps between IRL phases; heavy frame: the "
            "interval excludes 0; hatched: buffer demos; blank: not run",
            fontsize=9,
        )
        return save_figure(fig, out_prefix, style)
