"""Data and grading health per benchmark: problems loaded and skipped, and how often the
grader found no answer (unparsed), gave up (timeout) or refused an over-long completion
(too_long) on each model's samples, read from the grade shards; and from the sample shards,
how often the sampler stopped a completion at the token limit, and its mean length.

A high unparsed rate means the prompt's answer format is not being followed, which caps
Pass@k as surely as wrong answers do; timeouts are counted wrong, so they must stay rare. A
high length rate means answers are cut off: the limit, not the model, is being measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from sps.analysis import io

STATUSES = ("unparsed", "timeout", "too_long")


def grade_counts(
    paths: list[str | Path], data: str | Path | None = None, n: int | None = None
) -> dict[str, int]:
    """Samples and each non-ok status over one model's grade shards, which must be complete
    (io.read_shards: every problem of `data`, n samples each)."""
    counts = dict.fromkeys(("samples", *STATUSES), 0)
    for table in io.read_shards(paths, ("grade",), data, n):
        grade = table.column("grade").to_pandas()
        counts["samples"] += len(grade)
        for status in STATUSES:
            counts[status] += int((grade == status).sum())
    return counts


def length_counts(
    paths: list[str | Path], data: str | Path | None = None, n: int | None = None
) -> dict[str, float]:
    """Samples the sampler stopped at max_new_tokens (finish_reason `length`) and the mean
    completion length in tokens, over one model's complete sample shards."""
    tables = io.read_shards(paths, ("finish_reason", "n_tokens"), data, n)
    reasons = pd.concat([t.column("finish_reason").to_pandas() for t in tables])
    tokens = pd.concat([t.column("n_tokens").to_pandas() for t in tables])
    return {"length": int((reasons == "length").sum()), "mean_tokens": float(tokens.mean())}


def load_counts(data_dir: str | Path) -> dict[str, object]:
    """Rows of the train and test tables, and what load.json (real benchmarks) adds: rows
    skipped and why, train rows dropped for repeating a test question."""
    data_dir = Path(data_dir)
    out: dict[str, object] = {
        f"{split}_problems": pq.read_metadata(data_dir / f"{split}.parquet").num_rows
        for split in ("train", "test")
    }
    counts = data_dir / "load.json"
    if counts.exists():
        out["load"] = json.loads(counts.read_text())
    return out


def grading_table(
    bench: str,
    data_dir: str | Path,
    shards: dict[str, list[str]],
    n: int | None = None,
    samples: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """One row per model: load counts (the same on every row) and grading rates; `shards`
    maps each model to its grade shards, complete over data_dir's test problems; `samples`
    (optional) to its sample shards, for the length-limit rate and the mean length."""
    loaded = load_counts(data_dir)
    test = Path(data_dir) / "test.parquet"
    rows = []
    for model, paths in shards.items():
        counts = grade_counts(paths, test, n)
        total = max(counts["samples"], 1)
        row = {
            "bench": bench,
            "model": model,
            "train_problems": loaded["train_problems"],
            "test_problems": loaded["test_problems"],
            "load": json.dumps(loaded.get("load", {}), sort_keys=True),
            **counts,
            **{f"{status}_rate": counts[status] / total for status in STATUSES},
        }
        if samples is not None:
            if model not in samples:
                raise ValueError(f"no sample shards given for {model}")
            lengths = length_counts(samples[model], test, n)
            row.update(lengths, length_rate=lengths["length"] / total)
        rows.append(row)
    return pd.DataFrame(rows)


def grading_markdown(table: pd.DataFrame) -> str:
    """The summary's data-and-grading paragraph and table."""
    first = table.iloc[0]
    load = json.loads(first["load"]) if first["load"] else {}
    lines = [
        "### Data and grading",
        "",
        f"Problems: {first['train_problems']} train, {first['test_problems']} test."
        + (f" Load report: `{json.dumps(load, sort_keys=True)}`." if load else "")
        + " Stopped at the token limit: share of samples cut at max_new_tokens (an answer"
        " there may be missing because of the limit).",
        "",
        "| model | samples | unparsed | unparsed rate | timeouts | timeout rate | too long "
        "| stopped at the token limit | mean tokens |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        too_long = getattr(r, "too_long", 0)  # tables written before the status existed
        length, tokens = _cell(r, "length_rate", 3), _cell(r, "mean_tokens", 1)
        lines.append(
            f"| {r.model} | {r.samples} | {r.unparsed} | {r.unparsed_rate:.3f} | {r.timeout} "
            f"| {r.timeout_rate:.4f} | {too_long} | {length} | {tokens} |"
        )
    return "\n".join(lines)


def _cell(row, column: str, digits: int) -> str:
    """A column written only when sample shards were read: blank in older tables."""
    value = getattr(row, column, None)
    return "" if value is None or pd.isna(value) else f"{value:.{digits}f}"
