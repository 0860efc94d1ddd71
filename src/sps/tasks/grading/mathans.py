"""MATH answers: extraction here (cheap, in the caller), verification by math-verify in a worker.

math_verify.verify(gold, pred) is not symmetric, so the gold always goes first. Its own
timeouts use SIGALRM and raise TimeoutException (a BaseException), and cannot interrupt work
inside C (a big integer power), so they are disabled here: the pool (pool.py) runs
`verify_answer` in worker processes and kills a worker that overruns the per-item timeout.
"""

from __future__ import annotations

import functools
import logging
import re

from sps.tasks.grading.common import Unbalanced, boxed_spans, braced, normalize, phrase_spans

MAX_ANSWER_CHARS = 2000  # longer "answers" are rambling, not a final answer


def extract(completion: str) -> str | None:
    """The last \\boxed{} content, else the last "The answer is X" span; None when neither.

    Raises Unbalanced when the last \\boxed{ never closes (a truncated answer is no answer).
    """
    text = normalize(completion)
    boxed = boxed_spans(text)
    if boxed:
        return unwrap(boxed[-1][1]) or None
    phrases = phrase_spans(text, width=MAX_ANSWER_CHARS)
    if not phrases:
        return None
    span = phrases[-1][1].strip()
    span = re.sub(r"[\s.]+$", "", span).strip("$ ")
    return span or None


def unwrap(answer: str) -> str:
    """Drop LaTeX grouping braces around the whole answer: \\boxed{{(1,2)}} is (1,2), which
    math-verify would otherwise read as a set."""
    answer = answer.strip()
    while answer.startswith("{"):
        try:
            inner, end = braced(answer, 0)
        except Unbalanced:
            break
        if end != len(answer):
            break
        answer = inner.strip()
    return answer


def _wrap(answer: str) -> str:
    return "\\boxed{" + answer + "}"


@functools.lru_cache(maxsize=4096)
def _parse(answer: str):
    from math_verify import parse

    return parse(_wrap(answer), parsing_timeout=None)


def verify_answer(gold: str, pred: str) -> bool:
    """math_verify's verdict on pred against gold (worker side; may be slow or hang)."""
    from math_verify import verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout disabled" warnings
    if len(pred) > MAX_ANSWER_CHARS:
        return False
    return bool(verify(_parse(gold), _parse(pred), timeout_seconds=None))


def same_text(gold: str, pred: str) -> bool:
    """Identical answers need no sympy (and are the common case at large k)."""
    return re.sub(r"\s+", "", gold) == re.sub(r"\s+", "", pred)


__all__ = ["Unbalanced", "extract", "same_text", "verify_answer"]
