"""Every analysis table of one benchmark, from the per-problem (n, c) tables and training metrics.

Model ids: `base`, trained methods (`grpo`, `sps-p4`, ...), and evaluation snapshots
`{method}-step{k}` (the method's policy after k optimizer steps). A model may have several
seeds; its curve is then the mean over seeds (see passk.curve). All intervals come from one
Resampler, so they are paired across models (same resampled problems).

Tables (all small; the figures and the summary read only these):
- passk:       model, bench, k, pass_at_k, ci_low, ci_high, seed_sd, n_seeds, n, n_problems, level
- coverage:    model, bench, kind (model|checkpoint|union), n, coverage, n_problems, n_solved
- unsolved:    problem_id, bench (no sample of any model, checkpoint or seed solved it)
- diff:        model, reference, bench, k, diff (model - reference), ci_low, ci_high, sign_flip
- asymptote:   model, bench, U, U_low, U_high, U_free, clipped, a, b, pass_at_n, rmse, ...
- crossover:   model, reference, bench, k_cross, k_low, k_high, share_none, n
- checkpoints: method, step, model, bench, k, pass_at_k, ci_low, ci_high, n, entropy, reward
- entropy_fit: method, bench, target, a, b, R_at_H0, r2, n_points
- diversity:   model, bench, metric, value, ci_low, ci_high, n, n_problems, level, ngram_unit
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sps.analysis import ceiling, diversity
from sps.analysis.bootstrap import Resampler, interval, sign_flip_share
from sps.analysis.passk import curve, default_ks, problem_values

CHECKPOINT_RE = re.compile(r"^(?P<method>.+)-step(?P<step>\d+)$")
TABLES = (
    "passk",
    "coverage",
    "unsolved",
    "diff",
    "asymptote",
    "crossover",
    "checkpoints",
    "entropy_fit",
    "diversity",
)
REFERENCES = ("grpo", "base")  # differences are shown against these
Tables = Mapping[str, Mapping[object, pd.DataFrame]]  # model -> seed -> (problem_id, n, c)


@dataclass(frozen=True)
class Settings:
    """`analysis` config keys that change these tables."""

    bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95
    entropy_window: int = 5


def split_checkpoint(model: str) -> tuple[str, int] | None:
    """(method, step) for a snapshot id `{method}-step{k}`, else None."""
    match = CHECKPOINT_RE.match(model)
    return (match["method"], int(match["step"])) if match else None


def _n_min(tables: Mapping[object, pd.DataFrame]) -> int:
    return min(int(t["n"].min()) for t in tables.values())


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if not rows else pd.DataFrame(rows)[columns]


def _passk(tables: Tables, finals: list[str], bench: str, res: Resampler, level: float):
    curves = [
        curve(tables[m], resampler=res, level=level).assign(model=m, bench=bench) for m in finals
    ]
    passk = pd.concat(curves, ignore_index=True)
    first = ["model", "bench", "k", "pass_at_k"]
    return passk[first + [c for c in passk.columns if c not in first]]


def _coverage(tables: Tables, bench: str) -> tuple[pd.DataFrame, list[str]]:
    """Coverage at n per model (mean over its seeds) and the union over everything."""
    flat = {(m, s): t for m, seeds in tables.items() for s, t in seeds.items()}
    solved = ceiling.solved_matrix({f"{m}@{s}": t for (m, s), t in flat.items()})
    rows = []
    for model, seeds in tables.items():
        cols = [f"{model}@{s}" for s in seeds]
        rows.append(
            {
                "model": model,
                "kind": "checkpoint" if split_checkpoint(model) else "model",
                "n": _n_min(seeds),
                "coverage": float(solved[cols].mean(axis=0).mean()),
                "n_solved": int(solved[cols].any(axis=1).sum()),
            }
        )
    any_solved = solved.any(axis=1)
    n_union = sum(int(t["n"].min()) for t in flat.values())
    rows.append(
        {
            "model": ceiling.UNION,
            "kind": "union",
            "n": n_union,
            "coverage": float(any_solved.mean()),
            "n_solved": int(any_solved.sum()),
        }
    )
    frame = pd.DataFrame(rows).assign(bench=bench, n_problems=len(solved))
    cols = ["model", "bench", "kind", "n", "coverage", "n_problems", "n_solved"]
    return frame[cols], [str(i) for i in solved.index[~any_solved]]


def _diff(tables: Tables, finals: list[str], bench: str, res: Resampler, level: float):
    rows = []
    for ref in (r for r in REFERENCES if r in finals):
        for model in (m for m in finals if m != ref):
            ks = default_ks(min(_n_min(tables[model]), _n_min(tables[ref])))
            groups, values = ceiling.paired_groups(
                problem_values(tables[model], ks), problem_values(tables[ref], ks)
            )
            point = np.bincount(groups, minlength=len(values)) @ values / len(groups)
            boot = res.means(values, groups)
            low, high = interval(boot, level)
            flip = sign_flip_share(boot, point)
            for j, k in enumerate(ks):
                rows.append(
                    {"model": model, "reference": ref, "k": k, "diff": point[j],
                     "ci_low": low[j], "ci_high": high[j], "sign_flip": flip[j]}
                )  # fmt: skip
    cols = ["model", "reference", "k", "diff", "ci_low", "ci_high", "sign_flip"]
    return _frame(rows, cols).assign(bench=bench, level=level)


def _asymptote(tables: Tables, finals: list[str], bench: str, res: Resampler, level: float):
    rows = []
    for model in finals:
        ks = ceiling.fit_ks(_n_min(tables[model]))
        groups, values = problem_values(tables[model], ks)
        rows.append({"model": model, **ceiling.asymptote(groups, values, ks, res, level)})
    return pd.DataFrame(rows).assign(bench=bench, level=level)


def _crossover(tables: Tables, finals: list[str], bench: str, res: Resampler, level: float):
    rows = []
    if "base" in finals:
        for model in (m for m in finals if m != "base"):
            ks = list(range(1, min(_n_min(tables[model]), _n_min(tables["base"])) + 1))
            ref = problem_values(tables["base"], ks)
            found = ceiling.crossover(ref, problem_values(tables[model], ks), ks, res, level)
            rows.append({"model": model, "reference": "base", **found})
    cols = ["model", "reference", "k_cross", "k_low", "k_high", "share_none", "n"]
    return _frame(rows, cols).assign(bench=bench, level=level)


def near_step(metrics: pd.DataFrame, step: int, window: int) -> dict[str, float]:
    """Mean entropy and reward_mean over metrics rows with step in (step - window, step].

    Row s holds the rollouts of the policy after s updates, i.e. of the snapshot after s
    steps; the final model (step = rl.steps) has no row of its own, so its window ends at
    the last step.
    """
    rows = metrics[(metrics["step"] > step - window) & (metrics["step"] <= step)]
    return {"entropy": float(rows["entropy"].mean()), "reward": float(rows["reward_mean"].mean())}


def _checkpoints(
    tables: Tables,
    finals: list[str],
    metrics: Mapping[str, pd.DataFrame],
    final_step: int | None,
    bench: str,
    res: Resampler,
    settings: Settings,
) -> pd.DataFrame:
    snapshots: dict[str, dict[int, str]] = {}
    for model in tables:
        found = split_checkpoint(model)
        if found:
            snapshots.setdefault(found[0], {})[found[1]] = model
    frames = []
    for method in (m for m in finals if m != "base"):
        points = dict(snapshots.get(method, {}))
        if "base" in tables:
            points[0] = "base"
        if final_step is not None:
            points[final_step] = method
        if len(points) < 2:
            continue
        ks = default_ks(min(_n_min(tables[m]) for m in points.values()))
        for step, model in sorted(points.items()):
            frame = curve(tables[model], ks, res, settings.level)
            near = {"entropy": np.nan, "reward": np.nan}
            if method in metrics:
                near = near_step(metrics[method], step, settings.entropy_window)
            frames.append(frame.assign(method=method, step=step, model=model, **near))
    cols = ["method", "step", "model", "k", "pass_at_k", "ci_low", "ci_high", "n"]
    cols += ["entropy", "reward", "level"]
    if not frames:
        return pd.DataFrame(columns=cols).assign(bench=bench)
    return pd.concat(frames, ignore_index=True)[cols].assign(bench=bench)


def _entropy_fit(
    checkpoints: pd.DataFrame, metrics: Mapping[str, pd.DataFrame], window: int, bench: str
) -> pd.DataFrame:
    """Per method two fits of R = -a exp(H) + b: R = test Pass@1 of the evaluated snapshots
    (base at step 0, snapshots, final model) against the training entropy near each; and
    R = training reward_mean against entropy, both averaged over blocks of `window` steps."""
    rows = []
    for method in dict.fromkeys([*checkpoints["method"], *metrics]):  # the given model order
        points = checkpoints[(checkpoints["method"] == method) & (checkpoints["k"] == 1)]
        if len(points):
            fit = ceiling.entropy_fit(points["entropy"], points["pass_at_k"])
            rows.append({"method": method, "target": "pass_at_1", **fit})
        if method in metrics:
            frame = metrics[method]
            block = frame["step"] // max(1, window)
            means = frame.groupby(block)[["entropy", "reward_mean"]].mean()
            fit = ceiling.entropy_fit(means["entropy"], means["reward_mean"])
            rows.append({"method": method, "target": "reward_mean", **fit})
    cols = ["method", "target", "a", "b", "R_at_H0", "r2", "n_points"]
    return _frame(rows, cols).assign(bench=bench)


def _diversity(
    per_problem: Mapping[str, pd.DataFrame], bench: str, settings: Settings
) -> pd.DataFrame:
    frames = []
    for model, table in per_problem.items():
        res = Resampler(len(table), settings.bootstrap, settings.seed)
        frames.append(diversity.aggregate(table, res, settings.level).assign(model=model))
    cols = ["model", "bench", "metric", "value", "ci_low", "ci_high", "n", "n_problems", "level"]
    cols += ["ngram_unit"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True).assign(bench=bench)[cols]


def analyze(
    bench: str,
    tables: Tables,
    metrics: Mapping[str, pd.DataFrame] | None = None,
    per_problem_diversity: Mapping[str, pd.DataFrame] | None = None,
    final_step: int | None = None,
    settings: Settings | None = None,
) -> dict[str, pd.DataFrame]:
    """All tables of one benchmark (see the module docstring), by name."""
    settings = settings or Settings()
    metrics = dict(metrics or {})
    if not tables:
        raise ValueError("no models given")
    coverage, unsolved = _coverage(tables, bench)  # also checks every model's problem set
    finals = [m for m in tables if not split_checkpoint(m)]
    if not finals:
        raise ValueError("only evaluation snapshots given; need at least one final model")
    res = Resampler(int(coverage["n_problems"].iloc[0]), settings.bootstrap, settings.seed)
    level = settings.level
    checkpoints = _checkpoints(tables, finals, metrics, final_step, bench, res, settings)
    return {
        "passk": _passk(tables, finals, bench, res, level),
        "coverage": coverage,
        "unsolved": pd.DataFrame({"problem_id": unsolved, "bench": bench}),
        "diff": _diff(tables, finals, bench, res, level),
        "asymptote": _asymptote(tables, finals, bench, res, level),
        "crossover": _crossover(tables, finals, bench, res, level),
        "checkpoints": checkpoints,
        "entropy_fit": _entropy_fit(checkpoints, metrics, settings.entropy_window, bench),
        "diversity": _diversity(per_problem_diversity or {}, bench, settings),
    }
