"""Test Pass@1 against training entropy over checkpoints, with R = -a exp(H) + b per method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sps.plots.style import (
    color_for,
    figure_models,
    label_for,
    marker_for,
    new_figure,
    save_figure,
    styled,
)

NO_FIT = "no fit"
TOO_FEW = "no fit (it needs 3 evaluated steps)"


def plot(tables: dict[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path):
    """Draw entropy.{fmt}: points (H near step, Pass@1; means over seeds, bars: bootstrap
    intervals over problems and seeds) per snapshot, the fitted curve (dashed where it
    extrapolates to H = 0) and its prediction at H = 0 as an open marker."""
    ckpt, fits = tables["checkpoints"], tables["entropy_fit"]
    points = ckpt[ckpt["k"] == 1] if len(ckpt) else ckpt
    fits = fits[fits["target"] == "pass_at_1"] if len(fits) else fits
    base = points[points["step"] == 0] if len(points) else points
    # step 0 is the base model every method starts from: drawn once where it is one point
    shared = len(base) > 0 and len(base[["entropy", "pass_at_k"]].drop_duplicates()) == 1
    with styled():
        fig, ax = new_figure(style)
        for method in figure_models(list(points["method"].unique())) if len(points) else []:
            rows = points[points["method"] == method].sort_values("step")
            color = color_for(method)
            fit = fits[fits["method"] == method]
            label = label_for(method)
            if len(fit) and np.isfinite(fit["a"].iloc[0]):
                a, b = float(fit["a"].iloc[0]), float(fit["b"].iloc[0])
                h_lo, h_hi = float(rows["entropy"].min()), float(rows["entropy"].max())
                inside = np.linspace(h_lo, h_hi, 50)
                outside = np.linspace(0, h_lo, 20)
                ax.plot(inside, b - a * np.exp(inside), color=color, lw=1.2)
                ax.plot(outside, b - a * np.exp(outside), color=color, lw=1.0, ls="--")
                ax.plot([0], [b - a], marker="o", mfc="white", color=color, ms=6, zorder=4)
                label += f": R(H=0) = {b - a:.2f}, R² = {float(fit['r2'].iloc[0]):.2f}"
            _points(ax, rows[rows["step"] > 0] if shared else rows, method, color, label)
        if shared:
            _points(ax, base.iloc[:1], "base", color_for("base"), label_for("base"))
        if points.empty:
            ax.text(0.5, 0.5, "no checkpoints evaluated", transform=ax.transAxes, ha="center")
        ax.set_xlim(left=0)
        ax.set_xlabel("training entropy near the step, H (nats; labels: step)")
        ax.set_ylabel("test Pass@1 (mean over seeds, bars: interval)")
        bench = ckpt["bench"].iloc[0] if len(ckpt) else ""
        ax.set_title(f"Entropy vs performance on {bench}: {_fit_title(fits)}")
        ax.legend(loc="best", fontsize=7)
        return save_figure(fig, out_prefix, style)


def _points(ax, rows: pd.DataFrame, model: str, color: str, label: str) -> None:
    """One marker per evaluated step with its interval, labelled by the step."""
    err = [rows["pass_at_k"] - rows["ci_low"], rows["ci_high"] - rows["pass_at_k"]]
    ax.errorbar(
        rows["entropy"],
        rows["pass_at_k"],
        yerr=np.nan_to_num(np.asarray(err, dtype=float)),
        ls="none",
        marker=marker_for(model),
        color=color,
        ms=5,
        capsize=2,
        label=label,
    )
    for row in rows.itertuples():
        ax.annotate(
            f"{row.step}",
            (row.entropy, row.pass_at_k),
            fontsize=6,
            xytext=(3, 3),
            textcoords="offset points",
            color=color,
        )


def _fit_title(fits: pd.DataFrame) -> str:
    """The formula when a curve is drawn; else why not, so the title promises nothing absent.
    A fit needs 3 points with different entropies (analysis.ceiling.entropy_fit); without
    evaluation snapshots a method has 2, base and final."""
    if len(fits) and np.isfinite(fits["a"].to_numpy(dtype=float)).any():
        return "R = -a exp(H) + b (open: H = 0)"
    if len(fits) and int(fits["n_points"].max()) < 3:
        return TOO_FEW
    return NO_FIT
