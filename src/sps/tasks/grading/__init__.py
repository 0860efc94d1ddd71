"""Answer extraction and grading for the real benchmarks: one `grade` for a single answer,
`grade_many` for a sampled batch (MATH through a process pool with a per-item timeout).

answer_type: number (GSM8K, SVAMP), math (MATH), yes_no (StrategyQA), choice (CommonsenseQA).
Every Grade has a status, and only "ok" can be correct:
- ok: a final answer was found and compared;
- unparsed: no final answer found (graded wrong);
- timeout: math-verify overran the per-item timeout or crashed its worker (graded wrong);
- too_long: the completion is longer than max_chars, refused before any parsing (graded wrong).
Every grader reads a completion only up to a line that opens a new "Question:" (a base model
given worked exemplars goes on to invent and answer the next problem), and the last stated
final answer wins. Extraction is linear in the completion's length (common.py), so max_chars
bounds its time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sps.tasks.grading import mathans
from sps.tasks.grading.choice import grade_choice
from sps.tasks.grading.common import TOO_LONG, UNPARSED, Grade, Unbalanced
from sps.tasks.grading.numbers import grade_number
from sps.tasks.grading.pool import TIMEOUT, TimeoutPool, shared_pool
from sps.tasks.grading.yesno import grade_yes_no

# Bump whenever a grading rule changes (what is extracted, how answers compare, a status):
# the workflow puts it in the grade rule's params, so a grader change regrades every shard
# without resampling.
GRADER_VERSION = "2"

ANSWER_TYPES = ("number", "math", "yes_no", "choice")
STATUSES = ("ok", "unparsed", "timeout", "too_long")
DEFAULT_TIMEOUT = 5.0  # the schema's data.grade_timeout default
DEFAULT_WORKERS = 2
DEFAULT_MAX_CHARS = 100_000  # the schema's data.grade_max_chars default


def _check_type(answer_type: str) -> None:
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; expected one of {ANSWER_TYPES}")


def grade_inline(
    answer_type: str,
    completion: str,
    gold: str,
    choices=None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Grade:
    """Grade a non-MATH answer in this process (pure regex work, linear and bounded)."""
    _check_type(answer_type)
    if answer_type == "math":
        raise ValueError("grade_inline does not grade MATH answers; use grade or grade_many")
    if len(completion) > max_chars:
        return TOO_LONG
    if answer_type == "number":
        return grade_number(completion, gold)
    if answer_type == "yes_no":
        return grade_yes_no(completion, gold)
    return grade_choice(completion, gold, None if choices is None else list(choices))


def _math_pred(completion: str, max_chars: int) -> str | None:
    if len(completion) > max_chars:
        return None
    try:
        return mathans.extract(completion)
    except Unbalanced:
        return None


def _math_grades(
    golds: Sequence[str],
    completions: Sequence[str],
    max_chars: int,
    verify: Callable[[list[tuple[str, str]]], list],
) -> list[Grade]:
    """Extract here; settle what needs no sympy here; send the other distinct (gold, pred)
    pairs to `verify` (a pool's map), called only when there are any."""
    preds = [_math_pred(c, max_chars) for c in completions]
    verdicts = {
        (g, p): mathans.quick_verdict(g, p)
        for g, p in zip(golds, preds, strict=True)
        if p is not None
    }
    todo = sorted(pair for pair, verdict in verdicts.items() if verdict is None)
    if todo:
        verdicts.update(zip(todo, verify(todo), strict=True))
    out = []
    for gold, pred, text in zip(golds, preds, completions, strict=True):
        if pred is None:
            out.append(TOO_LONG if len(text) > max_chars else UNPARSED)
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
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Grade:
    """Grade one completion; MATH goes through a long-lived shared pool."""
    _check_type(answer_type)
    if answer_type != "math":
        return grade_inline(answer_type, completion, gold, choices, max_chars)

    def verify(pairs: list[tuple[str, str]]) -> list:
        return shared_pool(mathans.verify_answer, workers, timeout).map(pairs)

    return _math_grades([gold], [completion], max_chars, verify)[0]


def _field(row, name: str):
    return row[name] if isinstance(row, dict) else getattr(row, name)


def grade_many(
    rows: Sequence,
    completions: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> list[Grade]:
    """Grade completions[i] against problem rows[i] (dicts or itertuples rows).

    Non-MATH answers are graded inline; MATH ones through one pool of `workers` processes
    for the whole call, `timeout` seconds per distinct (gold, answer) pair that needs sympy.
    """
    if len(rows) != len(completions):
        raise ValueError(f"{len(rows)} rows but {len(completions)} completions")
    types = [_field(r, "answer_type") for r in rows]
    for t in set(types):
        _check_type(t)
    grades: list[Grade | None] = [
        None
        if t == "math"
        else grade_inline(t, c, str(_field(r, "gold")), _field(r, "choices"), max_chars)
        for t, r, c in zip(types, rows, completions, strict=True)
    ]

    def verify(pairs: list[tuple[str, str]]) -> list:
        with TimeoutPool(mathans.verify_answer, workers, timeout) as pool:
            return pool.map(pairs)

    math_idx = [i for i, t in enumerate(types) if t == "math"]
    if math_idx:
        golds = [str(_field(rows[i], "gold")) for i in math_idx]
        done = _math_grades(golds, [completions[i] for i in math_idx], max_chars, verify)
        for i, g in zip(math_idx, done, strict=True):
            grades[i] = g
    return grades  # type: ignore[return-value]


def reward_fn(
    rows: Sequence,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
    max_chars: int = DEFAULT_MAX_CHARS,
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
            max_chars,
        )
        return float(g.correct)

    return reward


__all__ = [
    "ANSWER_TYPES",
    "GRADER_VERSION",
    "STATUSES",
    "Grade",
    "grade",
    "grade_inline",
    "grade_many",
    "reward_fn",
]
