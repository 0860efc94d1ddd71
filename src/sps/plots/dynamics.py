"""Training dynamics: reward, entropy and distinct ratio against step, IRL steps shaded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from sps.plots.style import (
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
    ax.plot(frame["step"], values, color=color_for(model), lw=1.3, label=label_for(model))


def irl_runs(steps: np.ndarray) -> list[tuple[float, float]]:
    """(start, width) of each run of consecutive IRL steps, for broken_barh."""
    spans: list[tuple[float, float]] = []
    for step in np.sort(steps):
        if spans and spans[-1][0] + spans[-1][1] == step - 0.5:
            spans[-1] = (spans[-1][0], spans[-1][1] + 1)
        else:
            spans.append((step - 0.5, 1.0))
    return spans


def _draw_phases(ax: Axes, metrics: Mapping[str, pd.DataFrame], runs: list[str]) -> None:
    """One lane per SPS run with its IRL steps shaded in the run's colour."""
    for lane, model in enumerate(runs):
        frame = metrics[model]
        steps = frame.loc[frame["phase"] == "irl", "step"].to_numpy()
        ax.broken_barh(irl_runs(steps), (lane - 0.4, 0.8), color=color_for(model), lw=0)
    ax.set_yticks(range(len(runs)), [label_for(m) for m in runs], fontsize=7)
    ax.set_ylim(len(runs) - 0.5, -0.5)
    ax.grid(False)
    ax.set_title("IRL steps (shaded), one lane per SPS run", loc="left", fontsize=8)


def plot_dynamics(
    metrics: Mapping[str, pd.DataFrame], style: dict[str, Any], out_prefix: str | Path
) -> list[Path]:
    """Draw dynamics.{fmt}: three stacked panels sharing the step axis, one line per run, and
    below them a lane per SPS run with its IRL steps shaded."""
    window = smoothing_window(max(len(f) for f in metrics.values()))
    models = model_order(list(metrics))
    sps_runs = [m for m in models if (metrics[m]["phase"] == "irl").any()]
    lanes = [0.22 + 0.1 * len(sps_runs)] if sps_runs else []
    with styled():
        fig, axes = new_figure(
            style,
            nrows=len(PANELS) + len(lanes),
            height_scale=1.75 + 0.1 * len(sps_runs),
            sharex=True,
            gridspec_kw={"height_ratios": [1.0] * len(PANELS) + lanes},
        )
        for ax, (column, label) in zip(axes, PANELS, strict=False):
            for model in models:
                _draw_run(ax, metrics[model], model, column, window)
            ax.set_ylabel(label)
        if sps_runs:
            _draw_phases(axes[-1], metrics, sps_runs)
        axes[-1].set_xlabel("optimizer step")
        handles, _ = axes[0].get_legend_handles_labels()
        figure_legend(fig, handles)
        if window > 1:
            axes[0].set_title(f"rolling mean over {window} steps", loc="right", fontsize=8)
        return save_figure(fig, out_prefix, style)
