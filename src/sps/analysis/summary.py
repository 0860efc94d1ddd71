"""results/summary.md and its CSV tables, from the cached analysis tables of each benchmark.

Per benchmark: the headline table (one row per model: Pass@k at a few k, coverage at n, the
fitted ceiling U, the k where base overtakes, distinct correct completions per problem, final
training values), paired differences to GRPO and base, Pass@k over training, the
entropy-performance fits, diversity, the SPS sensitivity grid, and the problems no model
solved. Every value is a mean over the model's training seeds (the analysis tables already
are; the final training values are averaged here, with their standard deviation over seeds).
Every table is also written as summary_{bench}[_{table}].csv beside summary.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sps.analysis.ceiling import UNION
from sps.analysis.grading import grading_markdown
from sps.plots.style import model_order

SHOWN_KS = (1, 4, 16, 64)
FINAL_STEPS = 5  # "final" training values average the last few steps, which are noisy one by one
UNSOLVED_LISTED = 200  # ids listed in the markdown; the CSV has all
CSV_TABLES = ("", "diff", "checkpoints", "entropy", "diversity", "unsolved", "sensitivity")
SEED_DOMINATED = 0.5  # seed_share above which an interval over few seeds is likely too narrow
FINAL = ("final_distinct_ratio", "final_reward")


def final_values(metrics: pd.DataFrame) -> dict[str, float]:
    """Mean distinct_ratio and reward_mean over the last FINAL_STEPS steps."""
    last = metrics.sort_values("step").tail(FINAL_STEPS)
    return {
        "final_distinct_ratio": float(last["distinct_ratio"].mean()),
        "final_reward": float(last["reward_mean"].mean()),
    }


def final_values_seeds(metrics: Mapping[object, pd.DataFrame]) -> dict[str, float]:
    """final_values of each seed's run, their mean and standard deviation (`_sd`, NaN for one
    seed) over seeds, and the number of seeds."""
    found = [final_values(frame) for frame in metrics.values()]
    out: dict[str, float] = {"final_seeds": len(found)}
    for key in FINAL:
        values = [f[key] for f in found]
        out[key] = float(np.mean(values))
        out[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
    return out


def _by_model(frame: pd.DataFrame | None, model: str) -> pd.Series | None:
    if frame is None or frame.empty or model not in set(frame["model"]):
        return None
    return frame[frame["model"] == model].iloc[0]


def bench_table(
    passk: pd.DataFrame,
    coverage: pd.DataFrame,
    metrics: Mapping[str, Mapping[object, pd.DataFrame]],
    tables: Mapping[str, pd.DataFrame] | None = None,
    shown_ks: Sequence[int] = SHOWN_KS,
) -> pd.DataFrame:
    """One row per final model: n_seeds, pass_at_{k} (+ _low/_high) for shown k and n,
    coverage_at_n, U (+ interval), k_cross (+ interval), distinct correct per problem, final
    values (means over seeds, with _sd). metrics: method -> seed -> metrics frame.

    `tables` holds the optional asymptote, crossover and diversity tables."""
    tables = tables or {}
    common = set.intersection(*(set(g["k"]) for _, g in passk.groupby("model")))
    ks = [k for k in shown_ks if k in common]
    cov = coverage.set_index("model")
    rows = []
    for model in model_order([m for m in passk["model"].unique() if m != UNION]):
        curve = passk[passk["model"] == model].set_index("k").sort_index()
        row: dict[str, object] = {"model": model, "n": int(curve.index.max())}
        row["n_seeds"] = int(curve["n_seeds"].iloc[0]) if "n_seeds" in curve else 1
        for k, name in [(k, str(k)) for k in ks] + [(int(curve.index.max()), "n")]:
            row[f"pass_at_{name}"] = float(curve.loc[k, "pass_at_k"])
            row[f"pass_at_{name}_low"] = float(curve.loc[k, "ci_low"])
            row[f"pass_at_{name}_high"] = float(curve.loc[k, "ci_high"])
            share = curve["seed_share"].get(k, np.nan) if "seed_share" in curve else np.nan
            row[f"pass_at_{name}_seed_share"] = float(share)
        row["coverage_at_n"] = float(cov.loc[model, "coverage"])
        fit = _by_model(tables.get("asymptote"), model)
        row |= {c: np.nan for c in ("U", "U_low", "U_high", "fit_rmse")}
        row |= {"U_form": "", "U_clipped": ""}
        if fit is not None:
            row |= {c: float(fit[c]) for c in ("U", "U_low", "U_high")}
            row |= {"U_form": fit["form"], "fit_rmse": float(fit["rmse"])}
            row["U_clipped"] = fit["clipped"]
        cross = _by_model(tables.get("crossover"), model)
        row |= {c: np.nan for c in ("k_cross", "k_cross_low", "k_cross_high")}
        if cross is not None:
            row |= {"k_cross": cross["k_cross"], "k_cross_low": cross["k_low"]}
            row["k_cross_high"] = cross["k_high"]
        div = tables.get("diversity")
        for metric in ("distinct_correct", "distinct_correct_solved"):
            value = np.nan
            if div is not None and not div.empty:
                hit = div[(div["model"] == model) & (div["metric"] == metric)]
                value = float(hit["value"].iloc[0]) if len(hit) else np.nan
            row[metric] = value
        empty = {"final_seeds": 0} | {f"{k}{sd}": np.nan for k in FINAL for sd in ("", "_sd")}
        rows.append(row | (final_values_seeds(metrics[model]) if model in metrics else empty))
    return pd.DataFrame(rows)


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _ci(point: float, low: float, high: float, digits: int = 3) -> str:
    if np.isnan(point):
        return ""
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _sd(mean: float, sd: float, digits: int = 3) -> str:
    """'0.283 ± 0.012' (sd over seeds), or the mean alone for one seed."""
    if np.isnan(mean):
        return ""
    return _fmt(mean, digits) if np.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _cross_text(row: pd.Series) -> str:
    """'37 [20, 90]', '37 [20, > n]', 'none within n [120, > n]' or 'none within n'."""
    if np.isnan(row["k_cross"]):
        return ""
    n = int(row["n"])
    if np.isinf(row["k_cross_low"]):
        return f"none within {n}"
    high = f"> {n}" if np.isinf(row["k_cross_high"]) else f"{int(row['k_cross_high'])}"
    point = f"none within {n}" if np.isinf(row["k_cross"]) else f"{int(row['k_cross'])}"
    return f"{point} [{int(row['k_cross_low'])}, {high}]"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown_table(table: pd.DataFrame) -> str:
    """The headline table: Pass@k (intervals at k = 1 and n), coverage@n, U, crossover, ..."""
    n_values = table["n"].unique()
    n_name = str(n_values[0]) if len(n_values) == 1 else "n"
    ks = [c[8:] for c in table.columns if c.startswith("pass_at_") and c[8:].isdigit()]
    ks = [k for k in ks if not (len(n_values) == 1 and int(k) == n_values[0])]
    header = ["model", "seeds", *(f"Pass@{k}" for k in ks), f"Pass@{n_name}"]
    header += [f"coverage@{n_name}"]
    header += ["U (fit)", "base overtakes at k", "distinct correct / problem"]
    header += ["final reward", "final distinct ratio"]
    rows = []
    for _, r in table.iterrows():
        cells = [str(r["model"]), str(int(r["n_seeds"]))]
        for k in ks:
            value = r[f"pass_at_{k}"]
            if k == "1":
                ci = _ci(value, r[f"pass_at_{k}_low"], r[f"pass_at_{k}_high"])
                cells.append(ci + _seed_flag(r.get(f"pass_at_{k}_seed_share", np.nan)))
            else:
                cells.append(_fmt(value))
        flag = _seed_flag(r.get("pass_at_n_seed_share", np.nan))
        cells.append(_ci(r["pass_at_n"], r["pass_at_n_low"], r["pass_at_n_high"]) + flag)
        cells.append(_fmt(r["coverage_at_n"]))
        u = _ci(r["U"], r["U_low"], r["U_high"])
        notes = [r["U_form"]] + ([f"at bound: {r['U_clipped'][3:]}"] if r["U_clipped"] else [])
        cells.append(f"{u} ({', '.join(notes)})" if u else "")
        cells.append(_cross_text(r))
        cells.append(_fmt(r["distinct_correct"], 2))
        cells += [_sd(r["final_reward"], r["final_reward_sd"])]
        cells += [_sd(r["final_distinct_ratio"], r["final_distinct_ratio_sd"])]
        rows.append(cells)
    return markdown(header, rows)


def diff_rows(diff: pd.DataFrame) -> pd.DataFrame:
    """The k = 1 and k = n rows of each (model, reference) pair, references GRPO then base."""
    if diff.empty:
        return diff
    ends = diff.sort_values("k").groupby(["model", "reference"], sort=False)
    picked = pd.concat([ends.head(1), ends.tail(1)]).drop_duplicates()
    order = {m: i for i, m in enumerate(model_order(list(diff["model"].unique())))}
    picked = picked.assign(
        _ref=picked["reference"].map({"grpo": 0, "base": 1}), _m=picked["model"].map(order)
    )
    return picked.sort_values(["_ref", "_m", "k"]).drop(columns=["_ref", "_m"])


def _seed_flag(share: object) -> str:
    """'†' when the seeds carry most of an interval's variance (likely too narrow, see the
    bootstrap's known limit), else ''."""
    return " †" if isinstance(share, float) and share > SEED_DOMINATED else ""


def diff_markdown(diff: pd.DataFrame) -> str:
    rows = [
        [
            r.model,
            r.reference,
            str(int(r.k)),
            _ci(r.diff, r.ci_low, r.ci_high) + _seed_flag(getattr(r, "seed_share", np.nan)),
            f"{r.sign_flip:.1%}",
            str(int(getattr(r, "n_seeds", 1))),
        ]
        for r in diff_rows(diff).itertuples()
    ]
    header = ["model", "minus", "k", "difference in Pass@k [95% CI]", "sign flips", "seeds"]
    return markdown(header, rows)


def _star(excludes: object) -> str:
    return " *" if bool(excludes) else ""


def sensitivity_markdown(sens: pd.DataFrame) -> str:
    """One row per grid cell: settings, seeds, paired changes against GRPO (* excludes 0)."""
    rows = []
    for r in sens.itertuples():
        pass1 = _ci(r.d_pass1, r.d_pass1_low, r.d_pass1_high) + _star(r.pass1_excludes_0)
        pass1 += _seed_flag(getattr(r, "pass1_seed_share", np.nan))
        passn = _ci(r.d_passn, r.d_passn_low, r.d_passn_high) + _star(r.passn_excludes_0)
        passn += _seed_flag(getattr(r, "passn_seed_share", np.nan))
        distinct = _ci(r.d_distinct_correct, r.d_distinct_correct_low,
                       r.d_distinct_correct_high, 2) + _star(r.distinct_excludes_0)  # fmt: skip
        rows.append(
            [r.method, str(int(r.period)), _fmt(r.lr_scale, 2), _fmt(r.steps, 0), _fmt(r.tau, 2),
             str(r.demos), str(int(r.n_seeds)), pass1, passn, _fmt(r.d_coverage), distinct]
        )  # fmt: skip
    n_name = str(int(sens["n"].iloc[0])) if sens["n"].nunique() == 1 else "n"
    header = ["cell", "N", "lr_scale", "M", "tau", "demos", "seeds", "ΔPass@1 [CI]"]
    header += [f"ΔPass@{n_name} [CI]", f"Δcoverage@{n_name}", "Δdistinct correct [CI]"]
    return markdown(header, rows)


def sensitivity_lines(sens: pd.DataFrame, level: float) -> list[str]:
    """The summary's sensitivity section: what was tried, the table, and how to read it."""
    cells, pct = len(sens), f"{level:.0%}"
    tried = ", ".join(f"`{m}`" for m in sens["method"])
    by_chance = f" (about {(1 - level) * 2 * cells:.1f} on average)"
    return [
        "",
        f"### SPS sensitivity: each grid cell minus GRPO\n\nCells tried ({cells}, every SPS "
        f"run at a fixed period in this analysis, none left out): {tried}. N: RL steps between "
        "IRL phases; lr_scale, M (irl.steps), tau and demos: the cell's IRL settings (blank: "
        "not given to the analysis). Δ: the cell minus GRPO on the same test problems and "
        f"seeds, [{pct} paired bootstrap interval over problems and seeds]; * marks an "
        "interval that excludes 0; †: the seeds carry over half of its variance, where an "
        "interval over few seeds is too narrow. The intervals are not adjusted for the number "
        "of cells: "
        f"if no cell differed from GRPO, some of the {2 * cells} Pass@ intervals would still "
        f"exclude 0 by chance{by_chance}. Δcoverage equals ΔPass@n when every problem has n "
        "samples.",
        "",
        sensitivity_markdown(sens),
    ]


def checkpoint_table(checkpoints: pd.DataFrame) -> pd.DataFrame:
    """Wide: one row per (method, measure), one column per step; Pass@1 and Pass@k_max."""
    if checkpoints.empty:
        return pd.DataFrame()
    frames = []
    for method, rows in checkpoints.groupby("method", sort=False):
        k_max = int(rows["k"].max())
        for k, name in ((1, "Pass@1"), (k_max, f"Pass@{k_max}")):
            pick = rows[rows["k"] == k].set_index("step")["pass_at_k"]
            frames.append(pd.DataFrame([pick.rename(None)]).assign(method=method, measure=name))
        entropy = rows.drop_duplicates("step").set_index("step")["entropy"]
        frames.append(pd.DataFrame([entropy.rename(None)]).assign(method=method, measure="entropy"))
    table = pd.concat(frames, ignore_index=True)
    steps = sorted(c for c in table.columns if c not in ("method", "measure"))
    order = {m: i for i, m in enumerate(model_order(list(table["method"].unique())))}
    table = table.sort_values("method", key=lambda s: s.map(order), kind="stable")
    return table[["method", "measure", *steps]].reset_index(drop=True)


def frame_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    rows = [[_fmt(v, digits) for v in row] for row in table.itertuples(index=False)]
    return markdown([str(c) for c in table.columns], rows)


def diversity_table(diversity: pd.DataFrame) -> pd.DataFrame:
    """Wide: one row per model, one column per diversity metric (means over problems)."""
    if diversity.empty:
        return pd.DataFrame()
    wide = diversity.pivot(index="model", columns="metric", values="value")
    wide = wide.reindex(model_order(list(wide.index)))
    first = ["distinct_answers", "distinct_correct", "distinct_correct_norm"]
    first += ["distinct_correct_solved", "top1_share"]
    cols = [c for c in first if c in wide.columns] + [c for c in wide.columns if c not in first]
    return wide[cols].reset_index().rename_axis(columns=None)


def bench_section(
    bench: str,
    table: pd.DataFrame,
    coverage: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """Markdown for one bench: headline table, union coverage, unsolved problems, then the
    differences, checkpoints, entropy fits and diversity tables when given."""
    tables = tables or {}
    union = coverage.set_index("model").loc[UNION]
    level = 0.95
    if "asymptote" in tables and not tables["asymptote"].empty:
        level = float(tables["asymptote"]["level"].iloc[0])
    pct = f"{level:.0%}"
    lines = [
        f"## {bench}",
        "",
        f"{int(union['n_problems'])} test problems. Every value is a mean over the model's "
        "training seeds (column seeds; base has one) and the problems; every interval a "
        f"{pct} bootstrap over problems and seeds (one seed: over problems only; †: the "
        "seeds carry over half of its variance, where an interval over few seeds is too "
        "narrow, README, The analysis). Pass@k: "
        "unbiased estimator. U: asymptote of the fitted curve, "
        "kept in [Pass@n, 1], in the form that fits better: power, Pass@k ~ U - a k^-b, or "
        "beta, Pass@k ~ U (1 - E[(1-p)^k]) with per-problem success p ~ Beta (whose tail is the "
        "power law); 'at bound' when the unconstrained fit lies outside. Base overtakes at k: "
        "smallest k from which "
        "base Pass@k stays above the model's ('none' within n samples), with its paired "
        "interval ('> n': too many resamples without a crossover). Distinct correct: distinct "
        "correct completions per problem (mean over all problems). Final values: mean over the "
        f"last {FINAL_STEPS} training steps (all of them in a shorter run), then mean ± standard "
        "deviation over seeds (blank for base).",
        "",
        markdown_table(table),
        "",
        f"Union coverage (solved by any sample of any model or checkpoint): "
        f"{union['coverage']:.3f} ({int(union['n_solved'])} / {int(union['n_problems'])} "
        "problems).",
    ]
    unsolved = tables.get("unsolved")
    if unsolved is not None:
        ids = [str(i) for i in unsolved["problem_id"]]
        shown = ", ".join(f"`{i}`" for i in ids[:UNSOLVED_LISTED])
        more = f" and {len(ids) - UNSOLVED_LISTED} more" if len(ids) > UNSOLVED_LISTED else ""
        lines += ["", f"Problems no sample of any model solved ({len(ids)}): {shown or 'none'}"
                  f"{more}."]  # fmt: skip
    else:
        unsolved_n = int(union["n_problems"] - union["n_solved"])
        lines += ["", f"Problems unsolved by every model: {unsolved_n}."]
    if "diff" in tables and not tables["diff"].empty:
        lines += [
            "",
            f"### Paired differences (k = 1 and k = n)\n\nModel minus reference on the same "
            f"problems and seeds (seed s minus seed s; base is shared by every seed), [{pct} "
            "paired bootstrap interval over problems and seeds]; sign flips: share of resamples "
            "in which the difference has the other sign; †: the seeds carry over half of the "
            "interval's variance, where intervals over few seeds are too narrow (README, The "
            "analysis). Every k is in the CSV.",
            "",
            diff_markdown(tables["diff"]),
        ]
    sens = tables.get("sensitivity")
    if sens is not None and not sens.empty:
        lines += sensitivity_lines(sens, level)
    ckpt = checkpoint_table(tables.get("checkpoints", pd.DataFrame()))
    if not ckpt.empty:
        snapshots = len(ckpt.columns) > 4  # method, measure, step 0 (base), the final step
        what = (
            "each method's evaluation snapshots by training step"
            if snapshots
            else "the base and final models (no evaluation snapshots: rl.eval_steps is empty)"
        )
        lines += [
            "",
            f"### Over training\n\nTest Pass@k of {what} (step 0: base model; last step: final "
            "model), and the mean training entropy near each step.",
            "",
            frame_markdown(ckpt),
        ]
    fits = tables.get("entropy_fit")
    if fits is not None and not fits.empty:
        lines += [
            "",
            "### Entropy-performance fit R = -a exp(H) + b\n\nR_at_H0 = b - a, the performance "
            "predicted when the entropy has collapsed. `pass_at_1`: test Pass@1 of the "
            "snapshots against the training entropy near each; `reward_mean`: training reward "
            "against entropy, both averaged over blocks of training steps. A fit needs three "
            "points with different entropies: with fewer (n_points; without evaluation "
            "snapshots `pass_at_1` has two, base and final) its row is blank.",
            "",
            frame_markdown(fits.drop(columns=["bench"], errors="ignore")),
        ]
    grading = tables.get("grading")
    if grading is not None and not grading.empty:
        lines += ["", grading_markdown(grading)]
    div = diversity_table(tables.get("diversity", pd.DataFrame()))
    if not div.empty:
        lines += [
            "",
            "### Diversity of the n samples per problem (means over problems)",
            "",
            frame_markdown(div, 3),
        ]
    return "\n".join(lines) + "\n"


def summary_path_for(out: str | Path, bench: str, table: str = "") -> Path:
    """A CSV written beside summary.md: summary_{bench}.csv (headline) or _{table}.csv."""
    suffix = f"_{table}" if table else ""
    return Path(out).with_name(f"summary_{bench}{suffix}.csv")


def csv_tables(table: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The CSV of every summary table, by CSV_TABLES name."""
    empty = pd.DataFrame()
    return {
        "": table,
        "diff": tables.get("diff", empty),
        "checkpoints": checkpoint_table(tables.get("checkpoints", empty)),
        "entropy": tables.get("entropy_fit", empty),
        "diversity": diversity_table(tables.get("diversity", empty)),
        "unsolved": tables.get("unsolved", empty),
        "grading": tables.get("grading", empty),
        "sensitivity": tables.get("sensitivity", empty),
    }
