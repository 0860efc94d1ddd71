"""Problem tables (architecture.md's data contract) and per-row grading, for every benchmark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sps.config import TaskConfig
from sps.io import read_parquet, write_parquet_atomic
from sps.rollout.base import derive_seed
from sps.tasks import countdown

PROBLEM_COLUMNS = ["id", "bench", "question", "gold", "answer_type", "choices", "prompt"]
SPLITS = ("test", "train", "sft")  # generated in this order, each excluding the ones before


def countdown_table(problems: list[countdown.Problem]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [p.id for p in problems],
            "bench": "countdown",
            "question": [
                f"Use {', '.join(map(str, p.numbers))} once each with + - * / to make {p.target}."
                for p in problems
            ],
            "gold": [sorted(p.solutions())[0] for p in problems],
            "answer_type": "countdown",
            "choices": None,
            "prompt": [p.prompt() for p in problems],
            "numbers": [list(p.numbers) for p in problems],
            "target": [p.target for p in problems],
            "n_solutions": [p.n_solutions for p in problems],
        }
    )


def prepare_countdown(cfg: TaskConfig, seed: int, out_dir: str | Path) -> dict[str, int]:
    """Write test, train and sft tables of distinct problems; returns rows per split."""
    sizes = {"test": cfg.n_test, "train": cfg.n_train, "sft": cfg.n_sft}
    seen: set[tuple] = set()
    counts = {}
    for split in SPLITS:
        problems = countdown.generate(
            derive_seed(seed, "countdown", split),
            sizes[split],
            cfg.count,
            cfg.max_number,
            cfg.max_target,
            cfg.min_solutions,
            exclude=seen,
        )
        seen |= {countdown.problem_key(p) for p in problems}
        write_parquet_atomic(countdown_table(problems), Path(out_dir) / f"{split}.parquet")
        counts[split] = len(problems)
    return counts


def load_problems(path: str | Path) -> pd.DataFrame:
    return read_parquet(path, PROBLEM_COLUMNS)


def countdown_problems(table: pd.DataFrame) -> list[countdown.Problem]:
    return [
        countdown.Problem(tuple(int(x) for x in r.numbers), int(r.target), int(r.n_solutions))
        for r in table.itertuples()
    ]


def grade_row(row, completion: str) -> tuple[str, bool]:
    """(extracted answer, correct) for one problem row of any supported benchmark."""
    if row.bench == "countdown":
        return countdown.grade(completion, [int(x) for x in row.numbers], int(row.target))
    raise ValueError(f"no grader for benchmark {row.bench!r} (problem {row.id})")
