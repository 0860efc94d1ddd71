"""Problem tables (architecture.md's data contract) and per-row grading, for every benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sps.config import GradingConfig, TaskConfig
from sps.io import read_parquet, write_parquet_atomic
from sps.seeding import derive_seed
from sps.tasks import countdown
from sps.tasks.prompts import countdown_chat, plain_text

DEFAULT_GRADING = GradingConfig()  # the schema's defaults
PROBLEM_COLUMNS = ["id", "bench", "question", "gold", "answer_type", "choices", "prompt"]
SPLITS = ("test", "train", "sft")  # generated in this order, each excluding the ones before


def countdown_table(
    problems: list[countdown.Problem],
    examples: list[tuple[countdown.Problem, countdown.Path]] | None = None,
) -> pd.DataFrame:
    """The problem table; with `examples` (task.prompt: chat) each row also holds `messages`,
    its chat turns as JSON (instruction, worked examples, the problem), and `prompt` is the
    same turns as one text (the model reads `messages` through its chat template)."""
    table = pd.DataFrame(
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
    if examples is None:
        return table
    worked = [(p.prompt().strip(), countdown.format_completion(x).strip()) for p, x in examples]
    turns = [countdown_chat(p.prompt().strip(), worked) for p in problems]
    return table.assign(
        prompt=[plain_text(t) for t in turns], messages=[json.dumps(t) for t in turns]
    )


def prepare_countdown(cfg: TaskConfig, seed: int, out_dir: str | Path) -> dict[str, int]:
    """Write test, train and sft tables of distinct problems; returns rows per split."""
    sizes = {"test": cfg.n_test, "train": cfg.n_train, "sft": cfg.n_sft}
    seen: set[tuple] = set()
    counts, examples = {}, None
    if cfg.prompt == "chat":  # generated first, so that no split holds a worked example
        shape = (cfg.count, cfg.max_number, cfg.max_target, cfg.min_solutions)
        shots_seed = derive_seed(seed, "countdown", "shots")
        examples = countdown.worked_examples(shots_seed, cfg.shots, *shape)
        seen = {countdown.problem_key(p) for p, _ in examples}
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
        table = countdown_table(problems, examples)
        write_parquet_atomic(table, Path(out_dir) / f"{split}.parquet")
        counts[split] = len(problems)
    return counts


def load_problems(path: str | Path) -> pd.DataFrame:
    return read_parquet(path, PROBLEM_COLUMNS)


def countdown_problems(table: pd.DataFrame) -> list[countdown.Problem]:
    return [
        countdown.Problem(tuple(int(x) for x in r.numbers), int(r.target), int(r.n_solutions))
        for r in table.itertuples()
    ]


def grade_countdown(row, completion: str, grading: GradingConfig) -> tuple[str, bool, str]:
    """(pred, correct, status) of one countdown completion: `too_long` past
    `grading.max_chars` (before any parsing), `unparsed` with no answer line, else `ok`, even
    when false steps make it wrong. `grading.check_steps` checks the work (countdown.grade)."""
    if len(completion) > grading.max_chars:
        return "", False, "too_long"
    numbers, target = [int(x) for x in row.numbers], int(row.target)
    pred, correct = countdown.grade(completion, numbers, target, grading.check_steps)
    return pred, correct, "ok" if pred else "unparsed"


def grade_row(row, completion: str, grading: GradingConfig = DEFAULT_GRADING) -> tuple[str, bool]:
    """(extracted answer, correct) for one problem row of any supported benchmark.

    The per-row path (training rewards); MATH goes through a shared worker pool. Sampled
    batches are graded with `grade_rows`.
    """
    if row.bench == "countdown":
        return grade_countdown(row, completion, grading)[:2]
    from sps.tasks.grading import grade

    result = grade(
        row.answer_type,
        completion,
        str(row.gold),
        row.choices,
        grading.timeout,
        grading.workers,
        grading.max_chars,
    )
    return result.pred, result.correct


def grade_rows(
    rows: list, completions: list[str], grading: GradingConfig = DEFAULT_GRADING
) -> list[tuple[str, bool, str]]:
    """(pred, correct, status) per completion; rows[i] is completions[i]'s problem row.

    Countdown is graded here exactly as by grade_row; the real benchmarks through the batch
    grader (MATH in a pool of `grading.workers`, `grading.timeout` s per answer).
    """
    from sps.tasks.grading import grade_many

    out: list[tuple[str, bool, str] | None] = [None] * len(rows)
    real = [i for i, r in enumerate(rows) if r.bench != "countdown"]
    for i, r in enumerate(rows):
        if r.bench == "countdown":
            out[i] = grade_countdown(r, completions[i], grading)
    if real:
        grades = grade_many(
            [rows[i] for i in real],
            [completions[i] for i in real],
            grading.timeout,
            grading.workers,
            grading.max_chars,
        )
        for i, g in zip(real, grades, strict=True):
            out[i] = (g.pred, g.correct, g.status)
    return out  # type: ignore[return-value]


def row_reward(rows: list, grading: GradingConfig = DEFAULT_GRADING):
    """Training reward(i, completion) -> 1.0 or 0.0 for the problem rows of one benchmark:
    countdown's checker, or the batch grader's settings (MATH: pool, timeout) for the others."""
    if rows and rows[0].bench != "countdown":
        from sps.tasks.grading import reward_fn

        return reward_fn(rows, grading.timeout, grading.workers, grading.max_chars)
    return lambda i, completion: float(grade_row(rows[i], completion, grading)[1])
