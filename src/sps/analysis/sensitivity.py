"""The sensitivity of SPS to its alternation period and IRL intensity, measured against GRPO.

A grid cell is a fixed-period SPS run, `sps-p{N}` with optional IRL overrides in its id
(`-lr{lr_scale}`, `-m{steps}`, `-tau{tau}`, `-buf` for irl.demos: buffer), read with
sps.runs.parse_method. Settings the id does not override are the config's `irl` section when
the analysis was given it, else NaN (shown as "default"). A grid exists when at least one
method carries an override; without one, or without a `grpo` run, the table is empty.

Per cell, against GRPO on the same problems and seeds (paired, two-level bootstrap):
- d_pass1, d_passn: the change in Pass@1 and in Pass@n (k = n, the largest common k), with
  intervals from the diff table, whether each excludes 0, and the seeds' share of each
  interval's variance (pass1_seed_share, passn_seed_share: above 0.5 the interval over few
  seeds is likely too narrow);
- d_coverage: the change in coverage at n (the share of problems with a correct sample; equal
  to d_passn when both models drew n samples of every problem);
- d_distinct_correct: the change in distinct correct completions per problem, with its
  interval, when both have diversity tables.
Intervals are not adjusted for the number of cells compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sps.analysis import diversity
from sps.analysis.bootstrap import Resampler, from_arrays, interval, paired_seeds
from sps.runs import Method, parse_method

if TYPE_CHECKING:
    from sps.analysis.bench import Settings

IRL_KEYS = ("lr_scale", "steps", "tau", "demos")
REFERENCE = "grpo"
COLUMNS = [
    "method", "bench", "period", "lr_scale", "steps", "tau", "demos", "overrides", "n_seeds",
    "n", "d_pass1", "d_pass1_low", "d_pass1_high", "pass1_excludes_0", "pass1_seed_share",
    "d_passn", "d_passn_low", "d_passn_high", "passn_excludes_0", "passn_seed_share",
    "d_coverage", "d_distinct_correct",
    "d_distinct_correct_low", "d_distinct_correct_high", "distinct_excludes_0", "level",
]  # fmt: skip


def grid_cells(models: list[str]) -> dict[str, Method]:
    """The fixed-period SPS methods among `models` (in order), or {} when none of them
    carries an IRL override (no grid was run)."""
    cells = {}
    for model in models:
        try:
            method = parse_method(model)
        except ValueError:
            continue  # base, snapshots and ids from elsewhere are not cells
        if method.kind == "fixed":
            cells[model] = method
    return cells if any(m.irl for m in cells.values()) else {}


def cell_settings(method: Method, defaults: Mapping[str, object] | None) -> dict[str, object]:
    """period and the four IRL settings of a cell: the id's override, else the config's."""
    defaults = defaults or {}
    out: dict[str, object] = {"period": method.period}
    for key in IRL_KEYS:
        value = method.irl.get(key, defaults.get(key))
        out[key] = ("" if value is None else str(value)) if key == "demos" else value
    out["lr_scale"] = np.nan if out["lr_scale"] is None else float(out["lr_scale"])
    out["steps"] = np.nan if out["steps"] is None else float(out["steps"])
    out["tau"] = np.nan if out["tau"] is None else float(out["tau"])
    out["overrides"] = ", ".join(f"{k}={v:g}" if k != "demos" else f"{k}={v}"
                                 for k, v in method.irl.items())  # fmt: skip
    return out


def excludes_zero(low: float, high: float) -> bool:
    return bool(low > 0 or high < 0)


def distinct_change(
    model: Mapping[object, pd.DataFrame],
    reference: Mapping[object, pd.DataFrame],
    resampler: Resampler,
    level: float,
) -> tuple[float, float, float]:
    """Paired change in distinct correct completions per problem (model minus reference, per
    problem and seed), with its interval."""
    ids_a, a = diversity.metric_values(model, "distinct_correct")
    ids_b, b = diversity.metric_values(reference, "distinct_correct")
    if ids_a != ids_b:
        raise ValueError("diversity tables of a grid cell and GRPO disagree on the problem set")
    x = from_arrays([a[sa] - b[sb] for sa, sb in paired_seeds(a, b)])
    low, high = interval(resampler.resample(x), level)
    return float(x.point[0]), float(low[0]), float(high[0])


def _ends(diff: pd.DataFrame, model: str) -> tuple[pd.Series, pd.Series] | None:
    rows = diff[(diff["model"] == model) & (diff["reference"] == REFERENCE)].sort_values("k")
    return (rows.iloc[0], rows.iloc[-1]) if len(rows) else None


def table(
    models: list[str],
    diff: pd.DataFrame,
    coverage: pd.DataFrame,
    per_problem_diversity: Mapping[str, Mapping[object, pd.DataFrame]],
    bench: str,
    settings: Settings,
) -> pd.DataFrame:
    """One row per grid cell (COLUMNS), buffer-demo cells last."""
    cells = grid_cells(models)
    if not cells or REFERENCE not in models:
        return pd.DataFrame(columns=COLUMNS)
    level = settings.level
    cov = coverage.set_index("model")["coverage"]
    div = per_problem_diversity
    rows = []
    for model, method in cells.items():
        ends = _ends(diff, model)
        if ends is None:
            continue
        first, last = ends
        row = {"method": model, "bench": bench, **cell_settings(method, settings.irl)}
        row |= {"n_seeds": int(first["n_seeds"]), "n": int(last["k"]), "level": level}
        for name, end in (("pass1", first), ("passn", last)):
            row |= {f"d_{name}": end["diff"], f"d_{name}_low": end["ci_low"],
                    f"d_{name}_high": end["ci_high"],
                    f"{name}_excludes_0": excludes_zero(end["ci_low"], end["ci_high"]),
                    f"{name}_seed_share": end.get("seed_share", np.nan)}  # fmt: skip
        row["d_coverage"] = float(cov[model] - cov[REFERENCE])
        found = (np.nan, np.nan, np.nan)
        if model in div and REFERENCE in div:
            n_problems = len(next(iter(div[model].values())))
            res = Resampler(n_problems, settings.bootstrap, settings.seed)
            found = distinct_change(div[model], div[REFERENCE], res, level)
        row |= dict(zip(["d_distinct_correct", "d_distinct_correct_low",
                         "d_distinct_correct_high"], found, strict=True))  # fmt: skip
        row["distinct_excludes_0"] = excludes_zero(found[1], found[2])
        rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS).assign(_buf=lambda f: f["demos"] == "buffer")
    order = ["_buf", "lr_scale", "steps", "tau", "period"]
    return frame.sort_values(order, ignore_index=True).drop(columns="_buf")


def strength_label(row: Mapping[str, object], keys: list[str]) -> str:
    """A heatmap row's label: the IRL settings in `keys` ("default" where unknown)."""
    names = {"lr_scale": "lr x{:g}", "steps": "M={:g}", "tau": "tau={:g}"}
    parts = []
    for key in keys:
        value = row[key]
        if key == "demos":
            parts.append(f"demos={value or 'default'}")
        elif isinstance(value, float) and np.isnan(value):
            parts.append(f"{key}=default")
        else:
            parts.append(names[key].format(value))
    return ", ".join(parts) or "default IRL"


def varying_keys(frame: pd.DataFrame) -> list[str]:
    """The IRL settings that differ between cells or are overridden (rows of the heatmap)."""
    keys = []
    for key in IRL_KEYS:
        values = frame[key].astype(str).unique()
        overridden = frame["overrides"].str.contains(f"{key}=", regex=False).any()
        if len(values) > 1 or overridden:
            keys.append(key)
    return keys
