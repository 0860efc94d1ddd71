"""Numeric answers (GSM8K, SVAMP): extraction from messy text and exact comparison.

Comparison (`same_number`). Values are fractions.Fraction parsed from the text, never float,
so "1e400" or a 500-digit integer is compared exactly and cannot overflow to inf.
- An integer gold is matched exactly: 1,450,001 is not 1450000; 18.0 and 18.00 are 18.
- A non-integer gold (a decimal such as 2.25, or a fraction) is matched as a decimal within a
  relative 1e-9, |pred - gold| <= 1e-9 * |gold|: that only absorbs a float's printing noise
  (SVAMP stores its answers as floats), so 0.333 is not 1/3 and 2.2 is not 2.25.

Extraction (`extract`). The answer comes from the LAST stated final answer that holds a
number ("The answer is X", "answer: X", \\boxed{X}, "#### X"), read as a clause up to its
sentence end:
- an opening "not X; it is Y" (or "not X, but Y") gives Y;
- a clause with an '=' outside parentheses gives the first number after the last such '=':
  "The answer is 9*2 = 18." is 18, "The answer is ( 6 - 2 ) = 4." is 4;
- otherwise the clause's first number ("The answer is 18 apples for 3 people." is 18).
With no stated final answer, the sentence that holds the completion's last number is read the
same way, except that without an '=' its last number is taken: the result of the last
equation when it ends the text ("... 9 + 6 = 15 liters of water out of the 24 liters." is 15),
else the last number ("So she has 15 left." is 15). Only a completion with no number at all is
"unparsed". Numbers spelled in words are not read.
"""

from __future__ import annotations

import re
from fractions import Fraction

from sps.tasks.grading.common import (
    SPAN_CHARS,
    UNPARSED,
    Grade,
    Unbalanced,
    final_spans,
    normalize,
    own_answer,
    strip_negation,
)

REL_TOL = Fraction(1, 10**9)  # for non-integer golds only; integer golds match exactly
MAX_DIGITS = 1000  # longer numbers are not evaluated (no answer has them; int() would be slow)
MAX_EXPONENT = 1000

_INT = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)"  # 1,234,567 or plain digits
_DEC = rf"(?:{_INT}(?:\.\d+)?|\.\d+)"
NUMBER = re.compile(
    rf"(?<![\w.])(?P<sign>-)?\s?[$€£¥]?\s?(?P<sign2>-)?(?P<num>{_DEC})"
    rf"(?P<exp>[eE][+-]?\d+)?(?:\s*/\s*(?P<den>{_DEC}))?(?![\w])|"
    # a decimal glued to a word ("5cm", "18dollars") still ends at the unit
    rf"(?<![\w.])(?P<sign3>-)?(?P<num2>{_DEC})(?=[a-zA-Z])"
)
PLAIN = re.compile(rf"\s*+(?P<sign>-?)\s*+(?P<num>{_DEC})(?:\s*+/\s*+(?P<den>{_DEC}))?\s*+")
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")
_LATEX_NOISE = re.compile(r"\\[,!;: ]|\\left|\\right|\{,\}")
_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*+\{([^{}]*+)\}")
# A sentence ends at . ! ? before a space or the end (not inside 3.75), or at a line end.
SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_PAREN_OR_EQ = re.compile(r"[()=]")


def clean(text: str) -> str:
    """Unicode digits to ASCII, LaTeX fractions to a/b, \\$ \\% \\text{} unwrapped."""
    text = normalize(text)
    text = _LATEX_NOISE.sub("", text)
    text = _FRAC.sub(r"\1/\2", text)
    text = _TEXT.sub(r" \1 ", text)
    return text.replace("\\$", "$").replace("\\%", "%")


def _decimal(text: str, exp: str | None = None) -> Fraction | None:
    text = text.replace(",", "")
    if len(text.replace(".", "").lstrip("0")) > MAX_DIGITS:
        return None
    shift = int(exp[1:]) if exp else 0
    if abs(shift) > MAX_EXPONENT:
        return None
    return Fraction(text) * Fraction(10) ** shift


def _value(m: re.Match) -> Fraction | None:
    if m.group("num2") is not None:
        value = _decimal(m.group("num2"))
        return -value if value is not None and m.group("sign3") else value
    value = _decimal(m.group("num"), m.group("exp"))
    if value is not None and m.group("den"):
        den = _decimal(m.group("den"))
        value = value / den if den else None
    negative = bool(m.group("sign")) != bool(m.group("sign2"))
    return -value if value is not None and negative else value


def numbers_in(text: str) -> list[tuple[str, Fraction | None]]:
    """(matched text, value or None when too large to evaluate) of every number, in order."""
    return [(m.group(0).strip(), _value(m)) for m in NUMBER.finditer(clean(text))]


def parse_number(text: str) -> Fraction | None:
    """The value of a gold answer such as "1,080", "51.0", "-3/4"; None if it is not one."""
    found = numbers_in(text)
    return found[0][1] if len(found) == 1 else None


def plain_number(text: str) -> Fraction | None:
    """The value of a text that is nothing but a number ("-1,080", "0.75", "\\frac{3}{4}",
    "3/4"); None for anything more ("5\\%", "2\\sqrt{3}", "1, 2")."""
    m = PLAIN.fullmatch(clean(text))
    if not m:
        return None
    value = _decimal(m.group("num"))
    if value is not None and m.group("den"):
        den = _decimal(m.group("den"))
        value = value / den if den else None
    return -value if value is not None and m.group("sign") else value


def canonical(value: Fraction) -> str:
    """A short, stable spelling: 1234, -3.5, 1/3 (so equal answers read the same)."""
    num, den = value.numerator, value.denominator
    if den == 1:
        return str(num)
    for places in range(1, 13):  # a terminating decimal of at most 12 places
        if 10**places % den == 0:
            digits = str(abs(num) * (10**places // den)).rjust(places + 1, "0")
            sign = "-" if num < 0 else ""
            return f"{sign}{digits[:-places]}.{digits[-places:]}"
    return f"{num}/{den}"


def same_number(pred: Fraction, gold: Fraction) -> bool:
    """Integer gold: exactly equal. Otherwise |pred - gold| <= 1e-9 |gold| (see the module)."""
    if gold.denominator == 1:
        return pred == gold
    return abs(pred - gold) <= REL_TOL * abs(gold)


def last_equals(clause: str) -> int:
    """Index of the last '=' outside parentheses, -1 if none (one pass)."""
    depth, last = 0, -1
    for m in _PAREN_OR_EQ.finditer(clause):
        ch = m.group()
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            last = m.start()
    return last


def _clause_number(clause: str, last: bool = False) -> re.Match | None:
    """The number a clause states: after its last top-level '=', else its first (or last)."""
    eq = last_equals(clause)
    if eq >= 0:
        m = NUMBER.search(clause, eq + 1)
        if m:
            return m
    if not last:
        return NUMBER.search(clause)
    found = list(NUMBER.finditer(clause))  # a clause is at most ~SPAN_CHARS long
    return found[-1] if found else None


def _span_number(span: str) -> re.Match | None:
    end = SENTENCE_END.search(span)
    clause = strip_negation(span[: end.start()] if end else span)
    return _clause_number(clause)


def _fallback_number(text: str) -> tuple[str, re.Match] | None:
    """The sentence holding the last number, read as in the module docstring; None if none."""
    back = re.search(r"\d", text[::-1])
    if back is None:
        return None
    last = len(text) - back.start()  # one past the last digit
    start = max(0, last - SPAN_CHARS)
    for m in SENTENCE_END.finditer(text, start, last):
        start = m.end()
    clause = text[start:last]
    m = _clause_number(clause, last=True)
    return (clause, m) if m else None


def extract(completion: str) -> tuple[str, Fraction | None] | None:
    """(number as written, value or None when too large) of the final answer; None if none."""
    text = clean(own_answer(completion))
    for _, span in reversed(final_spans(text)):
        m = _span_number(span)
        if m:
            return m.group(0).strip(), _value(m)
    found = _fallback_number(text)
    return (found[1].group(0).strip(), _value(found[1])) if found else None


def grade_number(completion: str, gold: str) -> Grade:
    gold_value = parse_number(gold)
    if gold_value is None:
        raise ValueError(f"gold answer {gold[:80]!r} is not a number")
    try:
        found = extract(completion)
    except Unbalanced:
        return UNPARSED
    if found is None:
        return UNPARSED
    text, value = found
    if value is None:  # a number too large to evaluate is no answer any gold has
        return Grade(text[:40], False, "ok")
    return Grade(canonical(value), same_number(value, gold_value), "ok")
