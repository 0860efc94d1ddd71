"""Diversity of each problem's n samples, then aggregated per model.

Per problem, over its n samples:
- distinct_answers: distinct non-empty final answers (the `pred` column);
- distinct_correct: distinct correct completions, as exact strings;
- distinct_correct_norm: the same after whitespace normalisation (runs of whitespace become one
  space, ends stripped), so completions differing only in spacing count once;
- distinct_{1..4}: distinct-n, |distinct n-grams| / |n-grams| over all n samples' completions.
  Tokens are characters by default (the built-in model's tokenizer is character level, so
  these are its tokens) or whitespace-separated words (`analysis.ngram_unit: whitespace`);
- top1_share: share of the n samples equal to the most frequent completion (1 = collapsed).

Distinct counts grow with n, so compare models at the same n (every final model has n =
sampling.n). Per model the table holds the mean over seeds and problems with a two-level
bootstrap interval (bootstrap.py) and the seeds' spread; distinct_correct_solved averages
distinct_correct over the problems each seed solved.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sps.analysis import io
from sps.analysis.bootstrap import Resampler, from_arrays, interval

COLUMNS = ("problem_id", "sample_idx", "completion", "pred", "correct")
NGRAMS = (1, 2, 3, 4)
UNITS = ("char", "whitespace")
METRICS = (
    "distinct_answers",
    "distinct_correct",
    "distinct_correct_norm",
    *(f"distinct_{n}" for n in NGRAMS),
    "top1_share",
)
_WS = re.compile(r"\s+")


def normalise_ws(text: str) -> str:
    return _WS.sub(" ", text).strip()


def tokens(text: str, unit: str) -> Sequence[str]:
    if unit == "char":
        return text
    if unit == "whitespace":
        return text.split()
    raise ValueError(f"ngram unit must be one of {UNITS}, got {unit!r}")


def distinct_n(counts: Counter, n: int, unit: str = "char") -> float:
    """|distinct n-grams| / |n-grams| over completions given with their multiplicities.

    Repeated completions add to the total but not to the distinct set, so only the distinct
    completions are scanned. NaN when no completion has n tokens.
    """
    seen: set[tuple[str, ...]] = set()
    total = 0
    for text, times in counts.items():
        toks = tokens(text, unit)
        grams = len(toks) - n + 1
        if grams > 0:
            total += grams * times
            seen.update(tuple(toks[i : i + n]) for i in range(grams))
    return len(seen) / total if total else np.nan


def problem_row(frame: pd.DataFrame, unit: str = "char") -> dict[str, float]:
    """The diversity metrics of one problem's samples (rows of one problem_id)."""
    completions = Counter(frame["completion"].astype(str))
    correct = frame.loc[frame["correct"].astype(bool), "completion"].astype(str)
    preds = frame["pred"].dropna().astype(str)
    row = {
        "n": len(frame),
        "c": int(frame["correct"].sum()),
        "distinct_answers": int(preds[preds.str.strip() != ""].nunique()),
        "distinct_correct": int(correct.nunique()),
        "distinct_correct_norm": len({normalise_ws(t) for t in correct}),
    }
    row |= {f"distinct_{n}": distinct_n(completions, n, unit) for n in NGRAMS}
    row["top1_share"] = max(completions.values()) / len(frame)
    return row


def problem_table(samples: pd.DataFrame, unit: str = "char") -> pd.DataFrame:
    """One row per problem (sorted by problem_id): n, c, every metric and ngram_unit."""
    missing = [c for c in COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(f"samples lack column(s) {missing}")
    rows = [
        {"problem_id": str(pid), **problem_row(group, unit)}
        for pid, group in samples.groupby("problem_id", sort=True, observed=True)
    ]
    table = pd.DataFrame(rows).sort_values("problem_id", ignore_index=True)
    return table.assign(ngram_unit=unit)


def read_samples(
    paths: Sequence[str | Path],
    grades: Sequence[str | Path] | None = None,
    data: str | Path | None = None,
    n: int | None = None,
) -> pd.DataFrame:
    """COLUMNS of one model's samples: completions from the sample shards, pred and correct
    from `grades` (one grade shard per sample shard, matching it row for row), or from the
    sample files themselves when no grades are given. Both sets pass io.read_shards' checks
    (every problem of `data`, n samples each)."""
    if grades is None:
        return io.concat(io.read_shards(paths, COLUMNS[2:], data, n))
    if len(grades) != len(paths):
        raise ValueError(f"{len(paths)} sample shards but {len(grades)} grade shards")
    samples = io.read_shards(paths, ("completion",), data, n)
    graded = io.read_shards(grades, ("pred", "correct"), data, n)
    tables = []
    for s_path, g_path, s, g in zip(paths, grades, samples, graded, strict=True):
        io.check_aligned(s, g, s_path, g_path)
        tables.append(s.append_column("pred", g["pred"]).append_column("correct", g["correct"]))
    return io.concat(tables)


def _seed_arrays(
    per_problem: Mapping[object, pd.DataFrame],
) -> tuple[list[pd.DataFrame], list[np.ndarray]]:
    """Each seed's table sorted by problem_id, and its metric values (P x metrics) with a
    problem's NaN (distinct-n of completions shorter than n) filled by the seed's mean."""
    tables = [t.sort_values("problem_id", ignore_index=True) for t in per_problem.values()]
    if not tables:
        raise ValueError("no diversity tables given")
    ids = tables[0]["problem_id"].astype(str).to_numpy()
    for table in tables[1:]:
        if not np.array_equal(table["problem_id"].astype(str).to_numpy(), ids):
            raise ValueError("the seeds of one model disagree on the problem set (diversity)")
    arrays = []
    for table in tables:
        values = table[list(METRICS)].to_numpy(dtype=np.float64)
        with warnings.catch_warnings():  # a metric NaN for every problem stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(values, axis=0)
        arrays.append(np.where(np.isnan(values), means, values))
    return tables, arrays


def metric_values(
    per_problem: Mapping[object, pd.DataFrame], metric: str
) -> tuple[list[str], dict[object, np.ndarray]]:
    """The problem ids (sorted) and seed -> one metric's values on them (NaN filled as above)."""
    tables, arrays = _seed_arrays(per_problem)
    ids = tables[0]["problem_id"].astype(str).tolist()
    return ids, dict(zip(per_problem, (a[:, METRICS.index(metric)] for a in arrays), strict=True))


def aggregate(
    per_problem: pd.DataFrame | Mapping[object, pd.DataFrame],
    resampler: Resampler | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Long table, one row per metric: value (mean over seeds and problems), ci_low, ci_high
    (two-level bootstrap over problems and seeds), seed_sd (of the seeds' means), n_seeds, n.

    per_problem is one problem table, or seed -> table for several seeds on the same problems.
    Also distinct_correct_solved, the mean over seeds of the mean of distinct_correct over the
    seed's solved problems (no interval: the set of solved problems changes between resamples).
    """
    seeds = dict(per_problem) if isinstance(per_problem, Mapping) else {None: per_problem}
    tables, arrays = _seed_arrays(seeds)
    x = from_arrays(arrays)
    resampler = resampler or Resampler(x.n_problems)
    low, high = interval(resampler.resample(x), level)
    rows = pd.DataFrame(
        {"metric": list(METRICS), "value": x.point, "ci_low": low, "ci_high": high,
         "seed_sd": x.seed_sd()}
    )  # fmt: skip
    solved = [t.loc[t["c"] > 0, "distinct_correct"] for t in tables]
    per_seed = [float(s.mean()) if len(s) else np.nan for s in solved]
    extra = {
        "metric": "distinct_correct_solved",
        "value": float(np.mean(per_seed)),
        "ci_low": np.nan,
        "ci_high": np.nan,
        "seed_sd": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else np.nan,
    }
    rows = pd.concat([rows, pd.DataFrame([extra])], ignore_index=True)
    first = tables[0]
    unit = str(first["ngram_unit"].iloc[0]) if "ngram_unit" in first.columns else "char"
    return rows.assign(
        n_seeds=len(tables),
        n=min(int(t["n"].min()) for t in tables),
        n_problems=x.n_problems,
        level=level,
        ngram_unit=unit,
    )
