"""Answer extraction and grading for the real benchmarks: one `grade` for a single answer,
`grade_many` for a sampled batch (MATH through a process pool with a per-item timeout).

answer_type: number (GSM8K, SVAMP), math (MATH), yes_no (StrategyQA), choice (CommonsenseQA).
Every Grade has a status: ok, unparsed (no final answer found: graded wrong) or timeout
(math-verify overran the per-item timeout or crashed its worker: graded wrong).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sps.tasks.grading import mathans
from sps.tasks.grading.choice import grade_choice
from sps.tasks.grading.common import UNPARSED, Grade, Unbalanced
from sps.tasks.grading.numbers import grade_number
from sps.tasks.grading.pool import TIMEOUT, TimeoutPool, shared_pool
from sps.tasks.grading.yesno import grade_yes_no

ANSWER_TYPES = ("number", "math", "yes_no", "choice")
DEFAULT_TIMEOUT = 5.0  # the schema's data.grade_timeout default
DEFAULT_WORKERS = 2


def grade_inline(answer_type: str, completion: str, gold: str, choices=None) -> Grade:
    """Grade a non-MATH answer in this process (pure regex work, fast and bounded)."""
    if answer_type == "number":
        return grade_number(completion, gold)
    if answer_type == "yes_no":
        return grade_yes_no(completion, gold)
    if answer_type == "choice":
        return grade_choice(completion, gold, None if choices is None else list(choices))
    raise ValueError(f"unknown answer_type {answer_type!r}; expected one of {ANSWER_TYPES}")


def _math_pred(completion: str) -> str | None:
    try:
        return mathans.extract(completion)
    except Unbalanced:
        return None


def _math_grades(golds: Sequence[str], completions: Sequence[str], pool: TimeoutPool):
    """Extract here, verify distinct (gold, pred) pairs in the pool; identical text is equal."""
    preds = [_math_pred(c) for c in completions]
    pairs = zip(golds, preds, strict=True)
    pairs_list = sorted({(g, p) for g, p in pairs if p is not None and not mathans.same_text(g, p)})
    verdicts = dict(zip(pairs_list, pool.map(pairs_list), strict=True))
    out = []
    for gold, pred in zip(golds, preds, strict=True):
        if pred is None:
            out.append(UNPARSED)
        elif mathans.same_text(gold, pred):
            out.append(Grade(pred, True, "ok"))
        elif verdicts[(gold, pred)] is TIMEOUT:
            out.append(Grade(pred, False, "timeout"))
        else:
            out.append(Grade(pred, bool(verdicts[(gold, pred)]), "ok"))
    return out


def grade(
    answer_type: str,
    completion: str,
    gold: str,
    choices=None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
) -> Grade:
    """Grade one completion; MATH goes through a long-lived shared pool."""
    if answer_type != "math":
        return grade_inline(answer_type, completion, gold, choices)
    pool = shared_pool(mathans.verify_answer, workers, timeout)
    return _math_grades([gold], [completion], pool)[0]


def _field(row, name: str):
    return row[name] if isinstance(row, dict) else getattr(row, name)


def grade_many(
    rows: Sequence,
    completions: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
) -> list[Grade]:
    """Grade completions[i] against problem rows[i] (dicts or itertuples rows).

    Non-MATH answers are graded inline; MATH ones through a fresh pool of `workers`
    processes, `timeout` seconds per distinct (gold, answer) pair.
    """
    if len(rows) != len(completions):
        raise ValueError(f"{len(rows)} rows but {len(completions)} completions")
    types = [_field(r, "answer_type") for r in rows]
    grades: list[Grade | None] = [
        None if t == "math" else grade_inline(t, c, str(_field(r, "gold")), _field(r, "choices"))
        for t, r, c in zip(types, rows, completions, strict=True)
    ]
    math_idx = [i for i, t in enumerate(types) if t == "math"]
    if math_idx:
        with TimeoutPool(mathans.verify_answer, workers, timeout) as pool:
            golds = [str(_field(rows[i], "gold")) for i in math_idx]
            done = _math_grades(golds, [completions[i] for i in math_idx], pool)
        for i, g in zip(math_idx, done, strict=True):
            grades[i] = g
    return grades  # type: ignore[return-value]


def reward_fn(
    rows: Sequence, timeout: float = DEFAULT_TIMEOUT, workers: int = DEFAULT_WORKERS
) -> Callable[[int, str], float]:
    """Per-row callable for training rewards: reward(i, completion) -> 1.0 or 0.0."""

    def reward(i: int, completion: str) -> float:
        row = rows[i]
        g = grade(
            _field(row, "answer_type"),
            completion,
            str(_field(row, "gold")),
            _field(row, "choices"),
            timeout,
            workers,
        )
        return float(g.correct)

    return reward


__all__ = ["Grade", "grade", "grade_inline", "grade_many", "reward_fn"]
