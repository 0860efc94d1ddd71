"""Training dynamics: reward, entropy and distinct ratio against step, IRL steps marked."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from sps.plots.style import (
    GREY,
    color_for,
    figure_legend,
    label_for,
    model_order,
    new_figure,
    save_figure,
    styled,
)

METRIC_COLUMNS = ("step", "phase", "reward_mean", "entropy", "distinct_ratio")
PANELS = (
    ("reward_mean", "mean reward"),
    ("entropy", "token entropy (nats)"),
    ("distinct_ratio", "distinct ratio |U|/G"),
)


def smoothing_window(n_steps: int) -> int:
    """Rolling-mean window: 1 (raw) up to 50 steps, then about n_steps / 50."""
    return max(1, round(n_steps / 50))


def _draw_run(ax: Axes, frame: pd.DataFrame, model: str, column: str, window: int) -> None:
    frame = frame.sort_values("step")
    values = frame[column].rolling(window, center=True, min_periods=1).mean()
    color = color_for(model)
    ax.plot(frame["step"], values, color=color, lw=1.3, label=label_for(model))
    irl = (frame["phase"] == "irl").to_numpy()
    if irl.any():  # IRL steps as small vertical ticks sitting on the line
        ax.plot(frame["step"][irl], values[irl], ls="none", marker="|", ms=5, mew=1.0, color=color)


def plot_dynamics(
    metrics: Mapping[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path
) -> list[Path]:
    """Draw dynamics.{fmt}: three stacked panels sharing the step axis, one line per run."""
    window = smoothing_window(max(len(f) for f in metrics.values()))
    with styled():
        fig, axes = new_figure(style, nrows=len(PANELS), height_scale=1.75, sharex=True)
        for ax, (column, label) in zip(axes, PANELS, strict=True):
            for model in model_order(list(metrics)):
                _draw_run(ax, metrics[model], model, column, window)
            ax.set_ylabel(label)
        axes[-1].set_xlabel("optimizer step")
        handles, _ = axes[0].get_legend_handles_labels()
        if any((f["phase"] == "irl").any() for f in metrics.values()):
            handles.append(
                Line2D(
                    [], [], ls="none", marker="|", ms=9, mew=1.5, color=GREY, label="IRL step (SPS)"
                )
            )
        figure_legend(fig, handles)
        if window > 1:
            axes[0].set_title(f"rolling mean over {window} steps", loc="right", fontsize=8)
        return save_figure(fig, out_prefix, style)
