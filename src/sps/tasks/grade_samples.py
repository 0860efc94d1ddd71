"""Grading one sample shard: the `grade` job between sampling and every count.

Sampling (hours on GPUs) writes completions only; this job turns a shard into its grades, so
a grader fix regrades in minutes and never resamples. The grades keep the shard's row order,
so grade row i is sample row i: GRADE_COLUMNS, with grade one of ok, unparsed, timeout,
too_long (every status but ok is graded wrong).

One `grade_rows` call grades the whole shard: the MATH grader builds one process pool per
call (about 2.7 s), so that is one pool per job.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from sps.analysis import io
from sps.config import GradingConfig
from sps.tasks.data import grade_rows, load_problems

GRADE_COLUMNS = ["problem_id", "sample_idx", "pred", "correct", "grade"]


def grade_table(
    samples: pd.DataFrame, problems: pd.DataFrame, grading: GradingConfig
) -> pd.DataFrame:
    """GRADE_COLUMNS for every row of `samples` (problem_id, sample_idx, completion), in
    order, against `problems` (the data table, one row per id)."""
    rows = {str(r.id): r for r in problems.itertuples(index=False)}
    pids = samples["problem_id"].astype(str).tolist()
    unknown = next((p for p in pids if p not in rows), None)
    if unknown is not None:
        raise ValueError(f"problem {unknown!r} of the samples is not in the problem table")
    graded = grade_rows([rows[p] for p in pids], samples["completion"].tolist(), grading)
    return pd.DataFrame(
        {
            "problem_id": pids,
            "sample_idx": samples["sample_idx"].to_numpy(),
            "pred": [pred for pred, _, _ in graded],
            "correct": [bool(correct) for _, correct, _ in graded],
            "grade": [status for _, _, status in graded],
        },
        columns=GRADE_COLUMNS,
    )


def grade_shard(
    samples: str | Path, data: str | Path, grading: GradingConfig, log=print
) -> pd.DataFrame:
    """The grades of one sample shard, after checking that it holds every problem of `data`
    and no other, with the same sample indices each, once; errors name the shard and the
    problem. (Whether the shards together hold 0..n-1 is checked by their readers.)"""
    checked = io.read_checked_shard(samples, ("completion",), io.problem_ids(data), str(data))
    table = checked[0].to_pandas()
    start = time.time()
    grades = grade_table(table, load_problems(data), grading)
    status = grades["grade"].value_counts()
    log(
        f"{samples}: {len(grades)} samples graded in {time.time() - start:.1f} s, accuracy "
        f"{grades['correct'].mean():.3f}, "
        + ", ".join(f"{s} {int(status.get(s, 0))}" for s in ("unparsed", "timeout", "too_long"))
    )
    return grades
