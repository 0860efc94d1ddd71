"""Every analysis table of one benchmark, from the per-problem (n, c) tables and training metrics.

Model ids: `base`, trained methods (`grpo`, `sps-p4`, `sps-p4-lr0.3-m2`, ...), and evaluation
snapshots `{method}-step{k}` (the method's policy after k optimizer steps); sps.runs defines
them. Every model may have several training seeds (model -> seed -> table; the base model has
one), and so may the metrics and diversity tables. Every value is the mean over seeds and
problems; every interval comes from one Resampler over problems and seeds (bootstrap.py), so
intervals are paired across models, and a difference is formed per problem and seed (seed 1
minus seed 1; a one-seed model such as base is shared by every seed) before resampling.

Tables (all small; the figures and the summary read only these):
- passk:       model, bench, k, pass_at_k, ci_low, ci_high, seed_sd, seed_share, n_seeds, n,
               n_problems, level
- coverage:    model, bench, kind (model|checkpoint|union), n, coverage, ci_low, ci_high, seed_sd,
               n_seeds, n_problems, n_solved (by any seed)
- unsolved:    problem_id, bench (no sample of any model, checkpoint or seed solved it)
- diff:        model, reference, bench, k, diff (model - reference), ci_low, ci_high, sign_flip,
               seed_share, n_seeds (seed pairs), level
- asymptote:   model, bench, U, U_low, U_high, U_free, clipped, a, b, pass_at_n, rmse, ...,
               n_seeds
- crossover:   model, reference, bench, k_cross, k_low, k_high, share_none, n, n_seeds
- checkpoints: method, step, model, bench, k, pass_at_k, ci_low, ci_high, seed_sd, n_seeds, n,
               entropy, reward (both means over the seeds' training metrics near the step)
- entropy_fit: method, bench, target, a, b, R_at_H0, r2, n_points, n_seeds
- diversity:   model, bench, metric, value, ci_low, ci_high, seed_sd, n_seeds, n, n_problems,
               level, ngram_unit
- sensitivity: per SPS grid cell its change against GRPO (sensitivity.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sps.analysis import ceiling, diversity, sensitivity
from sps.analysis.bootstrap import Resampler, from_arrays, interval, sign_flip_share
from sps.analysis.passk import curve, default_ks, paired_values, problem_values
from sps.runs import parse_model

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
    "sensitivity",
)
REFERENCES = ("grpo", "base")  # differences are shown against these
Seeded = Mapping[str, Mapping[object, pd.DataFrame]]  # model (or method) -> seed -> table


@dataclass(frozen=True)
class Settings:
    """`analysis` config keys that change these tables, and the config's `irl` section (the
    IRL settings of runs whose id carries no override; None when not given)."""

    bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95
    entropy_window: int = 5
    irl: Mapping[str, object] | None = None


def split_checkpoint(model: str) -> tuple[str, int] | None:
    """(method, step) for a snapshot id `{method}-step{k}`, else None (also for ids that are
    not sps.runs model ids). A seed belongs in the key (`MODEL@SEED`), not in the id."""
    try:
        parsed = parse_model(model)
    except ValueError:
        return None
    if parsed.seed is not None:
        step = "" if parsed.step is None else f"-step{parsed.step}"
        raise ValueError(
            f"model {model!r}: give its training seed as {parsed.method}{step}@{parsed.seed}"
        )
    return None if parsed.step is None else (parsed.method, parsed.step)


def _n_min(tables: Mapping[object, pd.DataFrame]) -> int:
    return min(int(t["n"].min()) for t in tables.values())


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if not rows else pd.DataFrame(rows)[columns]


def _passk(tables: Seeded, finals: list[str], bench: str, res: Resampler, level: float):
    curves = [
        curve(tables[m], resampler=res, level=level).assign(model=m, bench=bench) for m in finals
    ]
    passk = pd.concat(curves, ignore_index=True)
    first = ["model", "bench", "k", "pass_at_k"]
    return passk[first + [c for c in passk.columns if c not in first]]


def _coverage(
    tables: Seeded, bench: str, settings: Settings
) -> tuple[pd.DataFrame, list[str], Resampler]:
    """Coverage at n per model (mean over its seeds, two-level interval), the union over
    every model, seed and snapshot, the unsolved problems, and the benchmark's Resampler."""
    flat = {(m, s): t for m, seeds in tables.items() for s, t in seeds.items()}
    solved = ceiling.solved_matrix({f"{m}@{s}": t for (m, s), t in flat.items()})
    res = Resampler(len(solved), settings.bootstrap, settings.seed)
    rows = []
    for model, seeds in tables.items():
        cols = [f"{model}@{s}" for s in seeds]
        x = from_arrays([solved[c].to_numpy(dtype=np.float64) for c in cols])
        low, high = interval(res.resample(x), settings.level)
        rows.append(
            {"model": model, "kind": "checkpoint" if split_checkpoint(model) else "model",
             "n": _n_min(seeds), "coverage": float(x.point[0]), "ci_low": low[0],
             "ci_high": high[0], "seed_sd": float(x.seed_sd()[0]), "n_seeds": len(seeds),
             "n_solved": int(solved[cols].any(axis=1).sum())}
        )  # fmt: skip
    any_solved = solved.any(axis=1)
    rows.append(
        {"model": ceiling.UNION, "kind": "union", "n": sum(_n_min({0: t}) for t in flat.values()),
         "coverage": float(any_solved.mean()), "ci_low": np.nan, "ci_high": np.nan,
         "seed_sd": np.nan, "n_seeds": len(flat), "n_solved": int(any_solved.sum())}
    )  # fmt: skip
    frame = pd.DataFrame(rows).assign(bench=bench, n_problems=len(solved))
    cols = ["model", "bench", "kind", "n", "coverage", "ci_low", "ci_high", "seed_sd"]
    cols += ["n_seeds", "n_problems", "n_solved"]
    return frame[cols], [str(i) for i in solved.index[~any_solved]], res


def _diff(tables: Seeded, finals: list[str], bench: str, res: Resampler, level: float):
    rows = []
    for ref in (r for r in REFERENCES if r in finals):
        for model in (m for m in finals if m != ref):
            ks = default_ks(min(_n_min(tables[model]), _n_min(tables[ref])))
            x = paired_values(tables[model], tables[ref], ks)
            boot = res.resample(x)
            low, high = interval(boot, level)
            flip, share = sign_flip_share(boot, x.point), x.seed_share()
            for j, k in enumerate(ks):
                rows.append(
                    {"model": model, "reference": ref, "k": k, "diff": x.point[j],
                     "ci_low": low[j], "ci_high": high[j], "sign_flip": flip[j],
                     "seed_share": share[j], "n_seeds": x.n_seeds}
                )  # fmt: skip
    cols = ["model", "reference", "k", "diff", "ci_low", "ci_high", "sign_flip", "seed_share"]
    return _frame(rows, [*cols, "n_seeds"]).assign(bench=bench, level=level)


def _asymptote(tables: Seeded, finals: list[str], bench: str, res: Resampler, level: float):
    rows = []
    for model in finals:
        ks = ceiling.fit_ks(_n_min(tables[model]))
        x = problem_values(tables[model], ks)
        fit = ceiling.asymptote(x, ks, res, level)
        rows.append({"model": model, **fit, "n_seeds": x.n_seeds})
    return pd.DataFrame(rows).assign(bench=bench, level=level)


def _crossover(tables: Seeded, finals: list[str], bench: str, res: Resampler, level: float):
    rows = []
    if "base" in finals:
        for model in (m for m in finals if m != "base"):
            ks = list(range(1, min(_n_min(tables[model]), _n_min(tables["base"])) + 1))
            diff = paired_values(tables["base"], tables[model], ks)
            found = ceiling.crossover(diff, ks, res, level)
            rows.append({"model": model, "reference": "base", **found, "n_seeds": diff.n_seeds})
    cols = ["model", "reference", "k_cross", "k_low", "k_high", "share_none", "n", "n_seeds"]
    return _frame(rows, cols).assign(bench=bench, level=level)


def near_step(metrics: pd.DataFrame, step: int, window: int) -> dict[str, float]:
    """Mean entropy and reward_mean over metrics rows with step in (step - window, step].

    Row s holds the rollouts of the policy after s updates, i.e. of the snapshot after s
    steps; the final model (step = rl.steps) has no row of its own, so its window ends at
    the last step.
    """
    rows = metrics[(metrics["step"] > step - window) & (metrics["step"] <= step)]
    return {"entropy": float(rows["entropy"].mean()), "reward": float(rows["reward_mean"].mean())}


def near_step_seeds(
    metrics: Mapping[object, pd.DataFrame], step: int, window: int
) -> dict[str, float]:
    """near_step averaged over the seeds' metrics (each seed weighs alike)."""
    found = [near_step(frame, step, window) for frame in metrics.values()]
    return {key: float(np.mean([f[key] for f in found])) for key in ("entropy", "reward")}


def _checkpoints(
    tables: Seeded,
    finals: list[str],
    metrics: Seeded,
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
                near = near_step_seeds(metrics[method], step, settings.entropy_window)
            frames.append(frame.assign(method=method, step=step, model=model, **near))
    cols = ["method", "step", "model", "k", "pass_at_k", "ci_low", "ci_high", "seed_sd"]
    cols += ["n_seeds", "n", "entropy", "reward", "level"]
    if not frames:
        return pd.DataFrame(columns=cols).assign(bench=bench)
    return pd.concat(frames, ignore_index=True)[cols].assign(bench=bench)


def block_means(metrics: Mapping[object, pd.DataFrame], window: int) -> pd.DataFrame:
    """Entropy and reward_mean per block of `window` steps, each seed's block mean averaged
    over the seeds that reach the block."""
    per_seed = []
    for frame in metrics.values():
        block = frame["step"] // max(1, window)
        per_seed.append(frame.groupby(block)[["entropy", "reward_mean"]].mean())
    return pd.concat(per_seed).groupby(level=0).mean()


def _entropy_fit(
    checkpoints: pd.DataFrame, metrics: Seeded, window: int, bench: str
) -> pd.DataFrame:
    """Per method two fits of R = -a exp(H) + b: R = test Pass@1 of the evaluated snapshots
    (base at step 0, snapshots, final model; means over seeds) against the training entropy
    near each (mean over seeds); and R = training reward_mean against entropy, both averaged
    over blocks of `window` steps and then over seeds."""
    rows = []
    for method in dict.fromkeys([*checkpoints["method"], *metrics]):  # the given model order
        points = checkpoints[(checkpoints["method"] == method) & (checkpoints["k"] == 1)]
        if len(points):
            fit = ceiling.entropy_fit(points["entropy"], points["pass_at_k"])
            seeds = int(points["n_seeds"].max())
            rows.append({"method": method, "target": "pass_at_1", **fit, "n_seeds": seeds})
        if method in metrics:
            means = block_means(metrics[method], window)
            fit = ceiling.entropy_fit(means["entropy"], means["reward_mean"])
            seeds = len(metrics[method])
            rows.append({"method": method, "target": "reward_mean", **fit, "n_seeds": seeds})
    cols = ["method", "target", "a", "b", "R_at_H0", "r2", "n_points", "n_seeds"]
    return _frame(rows, cols).assign(bench=bench)


def _diversity(per_problem: Seeded, bench: str, settings: Settings) -> pd.DataFrame:
    frames = []
    for model, seeds in per_problem.items():
        n_problems = len(next(iter(seeds.values())))
        res = Resampler(n_problems, settings.bootstrap, settings.seed)
        frames.append(diversity.aggregate(seeds, res, settings.level).assign(model=model))
    cols = ["model", "bench", "metric", "value", "ci_low", "ci_high", "seed_sd", "n_seeds"]
    cols += ["n", "n_problems", "level", "ngram_unit"]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True).assign(bench=bench)[cols]


def seeded(mapping: Mapping[str, object] | None) -> dict[str, dict[object, pd.DataFrame]]:
    """model -> seed -> table; a bare table stands for one seed (key None)."""
    return {m: dict(v) if isinstance(v, Mapping) else {None: v} for m, v in (mapping or {}).items()}


def analyze(
    bench: str,
    tables: Seeded,
    metrics: Mapping[str, object] | None = None,
    per_problem_diversity: Mapping[str, object] | None = None,
    final_step: int | None = None,
    settings: Settings | None = None,
) -> dict[str, pd.DataFrame]:
    """All tables of one benchmark (see the module docstring), by name. metrics and
    per_problem_diversity map a method or model to seed -> table (or to one table)."""
    settings = settings or Settings()
    tables, metrics = seeded(tables), seeded(metrics)
    div = seeded(per_problem_diversity)
    if not tables:
        raise ValueError("no models given")
    # also checks every model's problem set and every id
    coverage, unsolved, res = _coverage(tables, bench, settings)
    finals = [m for m in tables if not split_checkpoint(m)]
    if not finals:
        raise ValueError("only evaluation snapshots given; need at least one final model")
    level = settings.level
    checkpoints = _checkpoints(tables, finals, metrics, final_step, bench, res, settings)
    diff = _diff(tables, finals, bench, res, level)
    return {
        "passk": _passk(tables, finals, bench, res, level),
        "coverage": coverage,
        "unsolved": pd.DataFrame({"problem_id": unsolved, "bench": bench}),
        "diff": diff,
        "asymptote": _asymptote(tables, finals, bench, res, level),
        "crossover": _crossover(tables, finals, bench, res, level),
        "checkpoints": checkpoints,
        "entropy_fit": _entropy_fit(checkpoints, metrics, settings.entropy_window, bench),
        "diversity": _diversity(div, bench, settings),
        "sensitivity": sensitivity.table(finals, diff, coverage, div, bench, settings),
    }
