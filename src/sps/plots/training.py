"""One method's Pass@k curves at each evaluated training step (base model at step 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb

from sps.plots.passk import log2_k_axis
from sps.plots.style import band_line, color_for, label_for, new_figure, save_figure, styled


def step_colours(method: str, n: int) -> list[tuple[float, float, float]]:
    """n shades of the method's colour, pale (early) to full (final), mixed with white."""
    rgb = np.array(to_rgb(color_for(method)))
    weights = np.linspace(0.3, 1.0, n) if n > 1 else np.ones(1)
    return [tuple(w * rgb + (1 - w) * np.ones(3)) for w in weights]


def plot(
    tables: dict[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path, method: str
) -> list[Path]:
    """Draw training_{method}.{fmt}: Pass@k vs k at every step with bands; the base model
    (step 0) in black, dashed."""
    ckpt = tables["checkpoints"]
    rows = ckpt[ckpt["method"] == method] if len(ckpt) else ckpt
    steps = sorted(int(s) for s in rows["step"].unique()) if len(rows) else []
    with styled():
        fig, ax = new_figure(style)
        trained = [s for s in steps if not (s == 0 and (rows["model"] == "base").any())]
        colours = dict(zip(trained, step_colours(method, len(trained)), strict=True))
        for step in steps:
            part = rows[rows["step"] == step].sort_values("k")
            is_base = step == 0 and part["model"].iloc[0] == "base"
            color = "black" if is_base else colours[step]
            final = step == max(steps) and not is_base
            label = f"step {step}" + (" (base model)" if is_base else " (final)" if final else "")
            band_line(
                ax,
                part["k"],
                part["pass_at_k"],
                part["ci_low"],
                part["ci_high"],
                color,
                0.1,
                ls="--" if is_base else "-",
                marker="o",
                ms=3,
                label=label,
            )
        if steps:
            log2_k_axis(ax, sorted(int(k) for k in rows["k"].unique()), "k (samples per problem)")
            ax.legend(loc="lower right")
        else:
            ax.text(0.5, 0.5, "no checkpoints evaluated", transform=ax.transAxes, ha="center")
        seeds = int(rows["n_seeds"].max()) if "n_seeds" in rows and len(rows) else 1
        ax.set_ylabel("Pass@k (bands: bootstrap over problems and seeds)", fontsize=9)
        bench = ckpt["bench"].iloc[0] if len(ckpt) else ""
        over = f" (mean over {seeds} seeds)" if seeds > 1 else ""
        ax.set_title(f"{label_for(method)} on {bench}: Pass@k after each evaluated training step"
                     f"{over}", fontsize=9)  # fmt: skip
        return save_figure(fig, out_prefix, style)
