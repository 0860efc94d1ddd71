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
sampling.n). Per model the table holds the mean over problems with a bootstrap interval;
distinct_correct_solved averages distinct_correct over the problems the model solved.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sps.analysis.bootstrap import Resampler, interval

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


def read_samples(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The columns diversity needs from every shard, with the file named when one lacks one."""
    tables = []
    for path in paths:
        names = pq.read_schema(path).names
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ValueError(f"missing column(s) {missing} in {path}")
        tables.append(pq.read_table(path, columns=list(COLUMNS)))
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def aggregate(
    per_problem: pd.DataFrame, resampler: Resampler | None = None, level: float = 0.95
) -> pd.DataFrame:
    """Long table, one row per metric: value (mean over problems), ci_low, ci_high, n.

    Also distinct_correct_solved, the mean of distinct_correct over solved problems (no
    interval: the set of solved problems changes between resamples).
    """
    table = per_problem.sort_values("problem_id", ignore_index=True)
    values = table[list(METRICS)].to_numpy(dtype=np.float64)
    resampler = resampler or Resampler(len(table))
    with warnings.catch_warnings():  # a metric NaN for every problem stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values, axis=0)
    # distinct-n is NaN for a problem whose completions are all shorter than n: mean the rest
    filled = np.where(np.isnan(values), means, values)
    low, high = interval(resampler.means(filled), level)
    rows = pd.DataFrame({"metric": list(METRICS), "value": means, "ci_low": low, "ci_high": high})
    solved = table[table["c"] > 0]
    extra = {
        "metric": "distinct_correct_solved",
        "value": float(solved["distinct_correct"].mean()) if len(solved) else np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
    }
    rows = pd.concat([rows, pd.DataFrame([extra])], ignore_index=True)
    unit = str(table["ngram_unit"].iloc[0]) if "ngram_unit" in table.columns else "char"
    return rows.assign(n=int(table["n"].min()), n_problems=len(table), level=level, ngram_unit=unit)
