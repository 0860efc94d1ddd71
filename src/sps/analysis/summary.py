"""results/summary.md: per bench, Pass@k at a few k, coverage, final training diagnostics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sps.analysis.ceiling import UNION
from sps.plots.style import model_order

SHOWN_KS = (1, 4, 16, 64)
FINAL_STEPS = 5  # "final" training values average the last few steps, which are noisy one by one


def final_values(metrics: pd.DataFrame) -> dict[str, float]:
    """Mean distinct_ratio and reward_mean over the last FINAL_STEPS steps."""
    last = metrics.sort_values("step").tail(FINAL_STEPS)
    return {
        "final_distinct_ratio": float(last["distinct_ratio"].mean()),
        "final_reward": float(last["reward_mean"].mean()),
    }


def bench_table(
    passk: pd.DataFrame, coverage: pd.DataFrame, metrics: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """One row per model: pass_at_{k} for shown k, pass_at_n, coverage_at_n, final values."""
    common = set.intersection(*(set(g["k"]) for _, g in passk.groupby("model")))
    ks = [k for k in SHOWN_KS if k in common]
    cov = coverage.set_index("model")
    rows = []
    for model in model_order([m for m in passk["model"].unique() if m != UNION]):
        curve = passk[passk["model"] == model].set_index("k")["pass_at_k"].sort_index()
        row = {"model": model, "n": int(curve.index.max())}
        row |= {f"pass_at_{k}": float(curve[k]) for k in ks}
        row |= {
            "pass_at_n": float(curve.iloc[-1]),
            "coverage_at_n": float(cov.loc[model, "coverage"]),
        }
        empty = {"final_distinct_ratio": np.nan, "final_reward": np.nan}
        rows.append(row | (final_values(metrics[model]) if model in metrics else empty))
    return pd.DataFrame(rows)


def crossover_k(passk: pd.DataFrame, model: str, reference: str = "base") -> int | None:
    """Smallest k at which `reference` Pass@k reaches `model`'s (None if it never does)."""
    a = passk[passk["model"] == model].set_index("k")["pass_at_k"]
    b = passk[passk["model"] == reference].set_index("k")["pass_at_k"]
    ks = sorted(set(a.index) & set(b.index))
    return next((k for k in ks if b[k] >= a[k]), None)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(table: pd.DataFrame) -> str:
    """The summary table as markdown; the Pass@n header names n when all models share it."""
    ns = table["n"].unique()
    n_name = f"Pass@{ns[0]}" if len(ns) == 1 else "Pass@n"
    cov_name = f"coverage@{ns[0]}" if len(ns) == 1 else "coverage@n"
    names = {
        "model": "model",
        "pass_at_n": n_name,
        "coverage_at_n": cov_name,
        "final_distinct_ratio": "final distinct_ratio",
        "final_reward": "final reward",
    }
    cols = [c for c in table.columns if c != "n" and not (len(ns) == 1 and c == f"pass_at_{ns[0]}")]
    header = [names.get(c, c.replace("pass_at_", "Pass@")) for c in cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(cols)]
    lines += [
        "| " + " | ".join(_fmt(v) for v in row) + " |" for row in table[cols].itertuples(False)
    ]
    return "\n".join(lines)


def bench_section(
    bench: str, table: pd.DataFrame, coverage: pd.DataFrame, passk: pd.DataFrame
) -> str:
    """Markdown for one bench: table, union coverage, unsolved count, base crossovers."""
    union = coverage.set_index("model").loc[UNION]
    unsolved = int(union["n_problems"] - union["n_solved"])
    lines = [
        f"## {bench}",
        "",
        f"{int(union['n_problems'])} problems. Pass@k: unbiased estimator averaged over problems; "
        f"final values: mean over the last {FINAL_STEPS} training steps (blank for base).",
        "",
        markdown_table(table),
        "",
        f"Union coverage (solved by any sample of any model): {union['coverage']:.3f} "
        f"({int(union['n_solved'])} / {int(union['n_problems'])} problems).",
        "",
        f"Problems unsolved by every model: {unsolved}.",
    ]
    trained = [m for m in table["model"] if m != "base"]
    if "base" in set(table["model"]) and trained:
        cross = {m: crossover_k(passk, m) for m in trained}
        text = ", ".join(f"{m}: {'never' if k is None else f'k = {k}'}" for m, k in cross.items())
        lines += ["", f"Smallest k where base Pass@k reaches the trained model's: {text}."]
    return "\n".join(lines) + "\n"


def summary_path_for(out: str | Path, bench: str) -> Path:
    """The per-bench CSV written beside summary.md."""
    return Path(out).with_name(f"summary_{bench}.csv")
