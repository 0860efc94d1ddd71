"""prepare_benchmark: read a benchmark's train and test splits into the problem tables."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pandas as pd

from sps.config import DataConfig
from sps.io import write_parquet_atomic, write_text_atomic
from sps.seeding import derive_seed
from sps.tasks.bench.schemas import ANSWER_TYPES, READERS, BadRow
from sps.tasks.bench.sources import Row, describe, read_rows
from sps.tasks.prompts import build_prompt

BENCHMARKS = tuple(READERS)
COLUMNS = ["id", "bench", "question", "gold", "answer_type", "choices", "prompt"]


def question_key(question: str) -> str:
    """Case and whitespace do not make a test question new."""
    return " ".join(question.lower().split())


def problem_key(problem: dict) -> str:
    """What makes two rows the same problem: the question, and the choices offered with it."""
    return question_key("\n".join([problem["question"], *(problem.get("choices") or [])]))


def read_problem(bench: str, split: str, number: int, raw: Row, seen: dict) -> dict:
    """One row into contract fields; BadRow if it is bad or repeats an earlier row's id or
    question. seen maps "id" and "question" to {key: first row number} and is updated."""
    if isinstance(raw, BadRow):
        raise raw
    problem = READERS[bench](raw)
    problem["id"] = problem.get("id") or f"{bench}-{split}-{number}"
    keys = {"id": problem["id"], "question": problem_key(problem)}
    for kind, key in keys.items():
        if key in seen[kind]:
            shown = f"id {key!r}" if kind == "id" else repr(problem["question"][:60])
            raise BadRow(f"duplicate {kind}", f"{shown} first seen at row {seen[kind][key]}")
    for kind, key in keys.items():
        seen[kind][key] = number
    return problem


def load_split(bench: str, split: str, data: DataConfig) -> tuple[list[dict], dict]:
    """Rows of one split read into contract fields; bad rows raise or are counted by reason.

    Under data.on_bad_row "error" the first bad row stops the load, naming the source and the
    row; under "skip" it is counted. A split left with no problem is an error either way.
    """
    src = data.split_source(bench, split)
    where = describe(src)
    rows = read_rows(src, data.max_row_chars)
    problems, skipped, seen = [], Counter(), {"id": {}, "question": {}}
    for number, raw in rows:
        try:
            problems.append(read_problem(bench, split, number, raw, seen))
        except BadRow as exc:
            if data.on_bad_row != "skip":
                raise ValueError(f"{where}: row {number}: {exc}") from None
            skipped[exc.reason] += 1
    if not problems:
        raise ValueError(f"{where}: nothing to load: all {len(rows)} rows are bad {dict(skipped)}")
    return problems, {"source": where, "read": len(rows), "skipped": dict(skipped)}


def subset(problems: list[dict], n: int, seed: int, bench: str, split: str) -> list[dict]:
    """A seeded random subset of n problems in source order (n = 0 keeps all)."""
    if not n or n >= len(problems):
        return problems
    keep = sorted(random.Random(derive_seed(seed, bench, split)).sample(range(len(problems)), n))
    return [problems[i] for i in keep]


def pick_shots(train: list[dict], k: int, seed: int, bench: str) -> list[dict]:
    """k + 1 candidate exemplars, so a train problem can skip itself and still get k."""
    if not k:
        return []
    rng = random.Random(derive_seed(seed, bench, "few_shot"))
    return rng.sample(train, min(k + 1, len(train)))


def table(bench: str, problems: list[dict], shots: list[dict], k: int) -> pd.DataFrame:
    def own_shots(problem: dict) -> list[dict]:
        return [s for s in shots if s["id"] != problem["id"]][:k]

    return pd.DataFrame(
        {
            "id": [p["id"] for p in problems],
            "bench": bench,
            "question": [p["question"] for p in problems],
            "gold": [p["gold"] for p in problems],
            "answer_type": ANSWER_TYPES[bench],
            "choices": [p.get("choices") for p in problems],
            "prompt": [
                build_prompt(bench, p["question"], p.get("choices"), own_shots(p)) for p in problems
            ],
        },
        columns=COLUMNS,
    )


def prepare_benchmark(bench: str, data_cfg: DataConfig, seed: int, out_dir: str | Path) -> dict:
    """Write out_dir/{train,test}.parquet and load.json (counts); returns the counts.

    Order: read each split (SplitSource.skip/limit applied), drop train problems whose
    question is also a test question, take the seeded subsets (data.n_train / n_test), then
    build prompts with exemplars drawn from the train split only.
    """
    if bench not in READERS:
        raise ValueError(f"unknown benchmark {bench!r}; expected one of {BENCHMARKS}")
    train, train_info = load_split(bench, "train", data_cfg)
    test, test_info = load_split(bench, "test", data_cfg)
    test_keys = {question_key(p["question"]) for p in test}
    kept = [p for p in train if question_key(p["question"]) not in test_keys]
    overlap = len(train) - len(kept)
    train = subset(kept, data_cfg.n_train, seed, bench, "train")
    test = subset(test, data_cfg.n_test, seed, bench, "test")
    shots = pick_shots(kept, data_cfg.few_shot, seed, bench)
    out = Path(out_dir)
    for split, problems in (("train", train), ("test", test)):
        write_parquet_atomic(
            table(bench, problems, shots, data_cfg.few_shot), out / f"{split}.parquet"
        )
    counts = {
        "bench": bench,
        "train": {**train_info, "loaded": len(train)},
        "test": {**test_info, "loaded": len(test)},
        "overlap_removed": overlap,
    }
    write_text_atomic(json.dumps(counts, indent=2) + "\n", out / "load.json")
    return counts


__all__ = ["BENCHMARKS", "prepare_benchmark", "question_key"]
