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
    figure_models,
    label_for,
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


def seed_band(frames: Mapping[object, pd.DataFrame], column: str, window: int) -> pd.DataFrame:
    """step, mean, low, high: each seed's rolling mean (centred, `window` steps), then per
    step the mean over the seeds that have the step and the range (min, max) over them."""
    smoothed = {
        seed: frame.sort_values("step")
        .set_index("step")[column]
        .rolling(window, center=True, min_periods=1)
        .mean()
        for seed, frame in frames.items()
    }
    wide = pd.DataFrame(smoothed)
    return pd.DataFrame(
        {"step": wide.index.to_numpy(), "mean": wide.mean(axis=1).to_numpy(),
         "low": wide.min(axis=1).to_numpy(), "high": wide.max(axis=1).to_numpy()}
    )  # fmt: skip


def _draw_run(
    ax: Axes, frames: Mapping[object, pd.DataFrame], model: str, column: str, window: int
) -> None:
    band = seed_band(frames, column, window)
    color = color_for(model)
    if len(frames) > 1:
        ax.fill_between(band["step"], band["low"], band["high"], color=color, alpha=0.18, lw=0)
    label = label_for(model) + (f" ({len(frames)} seeds)" if len(frames) > 1 else "")
    ax.plot(band["step"], band["mean"], color=color, lw=1.3, label=label)


def irl_runs(steps: np.ndarray) -> list[tuple[float, float]]:
    """(start, width) of each run of consecutive IRL steps, for broken_barh."""
    spans: list[tuple[float, float]] = []
    for step in np.sort(steps):
        if spans and spans[-1][0] + spans[-1][1] == step - 0.5:
            spans[-1] = (spans[-1][0], spans[-1][1] + 1)
        else:
            spans.append((step - 0.5, 1.0))
    return spans


def _draw_phases(
    ax: Axes, metrics: Mapping[str, Mapping[object, pd.DataFrame]], runs: list[str]
) -> None:
    """One lane per SPS method with its IRL steps shaded in its colour, each seed at opacity
    1 / seeds: a step where every seed ran IRL is fully shaded."""
    for lane, model in enumerate(runs):
        for frame in metrics[model].values():
            steps = frame.loc[frame["phase"] == "irl", "step"].to_numpy()
            alpha = 1 / len(metrics[model])
            ax.broken_barh(
                irl_runs(steps), (lane - 0.4, 0.8), color=color_for(model), alpha=alpha, lw=0
            )
    ax.set_yticks(range(len(runs)), [label_for(m) for m in runs], fontsize=7)
    ax.set_ylim(len(runs) - 0.5, -0.5)
    ax.grid(False)
    ax.set_title("IRL steps (shaded by the share of seeds), one lane per SPS method",
                 loc="left", fontsize=8)  # fmt: skip


def plot_dynamics(
    metrics: Mapping[str, Mapping[object, pd.DataFrame]],
    style: dict[str, Any],
    out_prefix: str | Path,
) -> list[Path]:
    """Draw dynamics.{fmt}: three stacked panels sharing the step axis, per method the mean
    over its seeds with a band spanning the seeds (min to max), and below them a lane per SPS
    method with its IRL steps shaded. metrics: method -> seed -> metrics frame."""
    n_steps = max(len(f) for seeds in metrics.values() for f in seeds.values())
    window = smoothing_window(n_steps)
    models = figure_models(list(metrics))
    sps_runs = [m for m in models if any((f["phase"] == "irl").any() for f in metrics[m].values())]
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
        notes = ["lines: mean over seeds, bands: range over seeds"]
        if window > 1:
            notes.append(f"rolling mean over {window} steps")
        axes[0].set_title("; ".join(notes), loc="right", fontsize=8)
        return save_figure(fig, out_prefix, style)
