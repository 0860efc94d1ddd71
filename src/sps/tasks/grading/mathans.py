"""MATH answers: extraction here (cheap, in the caller), verification by math-verify in a worker.

Extraction (`extract`), the LAST stated final answer winning:
- \\boxed{X} or \\fbox{X} (nested braces kept; "\\boxed 5" too);
- an answer phrase: "The answer is $X$, which ...", the Minerva line "Final Answer: The final
  answer is $X$. I hope it is correct.", "Answer: X". A span that opens (within 60
  characters) with $...$, $$...$$, \\(...\\) or \\[...\\] gives that math; otherwise the
  span up to its sentence end. A span of plain words ("the answer is correct") counts only
  when nothing else was stated;
- with no statement at all: the last math on the completion's last line ("Therefore $x = 5$.").
The answer is then tidied: outer $ and braces, a trailing period, and the Unicode a model may
write (30° is 30^\\circ, √ ∞ · × ≤ ≥ ≠).

Verification (`quick_verdict`, then `verify_answer`): identical text is equal; two plain
numbers ("0.75", "\\frac{3}{4}", "1,000") are compared exactly by numbers.same_number (so
1450001 is not 1450000 and 0.333333 is not 1/3); anything else goes to math_verify.verify(gold,
pred), which is not symmetric, so the gold always goes first. Its own timeouts use SIGALRM and
raise TimeoutException (a BaseException), and cannot interrupt work inside C (a big integer
power), so they are disabled here: the pool (pool.py) runs `verify_answer` in worker processes
and kills a worker that overruns the per-item timeout.
"""

from __future__ import annotations

import functools
import logging
import re

from sps.tasks.grading.common import (
    SPAN_CHARS,
    Unbalanced,
    brace_pairs,
    final_statements,
    normalize,
    own_answer,
    strip_negation,
)
from sps.tasks.grading.numbers import SENTENCE_END, plain_number, same_number

MAX_ANSWER_CHARS = SPAN_CHARS  # longer "answers" are rambling, not a final answer

# Math opening an answer span: up to 60 characters of words, then one math environment.
_MATH_NEAR = re.compile(
    r"[^\n$\\]{0,60}?"
    r"(?:\$\$(?P<dd>[^$]++)\$\$|\$(?P<d>(?:\\\$|[^$])++)\$|\\\((?P<p>.*?)\\\)|\\\[(?P<b>.*?)\\\])",
    re.DOTALL,
)
_MATH_ANY = re.compile(r"\$\$([^$]++)\$\$|\$((?:\\\$|[^$\n])++)\$|\\\((.*?)\\\)|\\\[(.*?)\\\]")
_LATEX_SPACES = ("\\,", "\\;", "\\:", "\\!", "\\ ")
# Where a plain answer's explanation begins: "40, which is ...", "40 because ...".
_TRAIL = re.compile(
    r",?\s+(?:which|because|since|so|as|where|giving|meaning|hence|thus|therefore)\b", re.I
)
_MATHY = re.compile(r"[\d\\^_{}()\[\]=+*/<>|-]")
_UNICODE = [
    ("°", "^\\circ"),
    ("√", "\\sqrt"),
    ("∞", "\\infty"),
    ("·", "\\cdot "),
    ("×", "\\times "),
    ("÷", "\\div "),
    ("≤", "\\le "),
    ("≥", "\\ge "),
    ("≠", "\\ne "),
    ("π", "\\pi "),
]


def unwrap(answer: str) -> str:
    """Drop LaTeX grouping braces around the whole answer: \\boxed{{(1,2)}} is (1,2), which
    math-verify would otherwise read as a set. One brace pass, then O(1) per layer."""
    answer = answer.strip()
    if not answer.startswith("{"):
        return answer
    pairs = brace_pairs(answer)
    lo, hi = 0, len(answer)  # answer[lo:hi] is the current candidate
    while lo < hi and answer[lo] == "{" and pairs.get(lo) == hi - 1:
        lo, hi = lo + 1, hi - 1
        while lo < hi and answer[lo].isspace():
            lo += 1
        while hi > lo and answer[hi - 1].isspace():
            hi -= 1
    return answer[lo:hi]


def tidy(answer: str) -> str:
    """The answer as math-verify should see it (see the module docstring)."""
    answer = answer.strip()
    for wrap in ("$$", "$"):
        if len(answer) > 2 * len(wrap) and answer.startswith(wrap) and answer.endswith(wrap):
            answer = answer[len(wrap) : -len(wrap)].strip()
    while answer.rstrip(" \t\n.,;:") != answer or answer.endswith(_LATEX_SPACES):
        answer = answer.rstrip(" \t\n.,;:")
        answer = answer[:-2] if answer.endswith(_LATEX_SPACES) else answer
    answer = re.sub(r"^\\(?:displaystyle|textstyle)\b\s*", "", answer)
    for char, latex in _UNICODE:
        answer = answer.replace(char, latex)
    return unwrap(answer).strip()


def _from_span(span: str) -> tuple[str, bool] | None:
    """(answer, strong) stated by a phrase span; strong when it holds math, not plain words."""
    span = strip_negation(span)
    m = _MATH_NEAR.match(span)
    if m:
        return next(g for g in m.group("dd", "d", "p", "b") if g is not None), True
    end = SENTENCE_END.search(span)
    plain = span[: end.start()] if end else span
    trail = _TRAIL.search(plain)
    plain = (plain[: trail.start()] if trail else plain).strip().strip("*_").strip()
    if not plain:
        return None
    return plain, bool(_MATHY.search(plain))


def _last_line_math(text: str) -> str | None:
    """The last math environment on the last non-empty line, if any."""
    line = text.rstrip()
    line = line[line.rfind("\n") + 1 :][-SPAN_CHARS:]
    found = list(_MATH_ANY.finditer(line))
    if not found:
        return None
    return next(g for g in found[-1].groups() if g is not None)


def extract(completion: str) -> str | None:
    """The final answer's LaTeX, tidied; None when the completion states none.

    Raises Unbalanced when the last \\boxed{ never closes (a truncated answer is no answer).
    """
    text = normalize(own_answer(completion))
    strong, weak = [], []
    for _, kind, span in final_statements(text):
        if kind == "box":
            strong += [span] if span.strip() else []  # an empty \boxed{} states nothing
            continue
        found = _from_span(span)
        if found:
            (strong if found[1] else weak).append(found[0])
    answer = (strong or weak or [None])[-1]
    if answer is None:
        answer = _last_line_math(text)
    answer = tidy(answer) if answer is not None else ""
    return answer or None


@functools.lru_cache(maxsize=4096)
def _parse(answer: str):
    from math_verify import parse

    return parse("\\boxed{" + answer + "}", parsing_timeout=None)


def quick_verdict(gold: str, pred: str) -> bool | None:
    """True/False when no sympy is needed (identical text, two plain numbers); else None."""
    if re.sub(r"\s+", "", gold) == re.sub(r"\s+", "", pred):
        return True
    gold_value, pred_value = plain_number(gold), plain_number(pred)
    if gold_value is not None and pred_value is not None:
        return same_number(pred_value, gold_value)
    return None


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


__all__ = ["Unbalanced", "extract", "quick_verdict", "same_text", "tidy", "verify_answer"]
