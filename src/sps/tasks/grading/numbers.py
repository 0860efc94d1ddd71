"""Numeric answers (GSM8K, SVAMP): extraction from messy text and tolerant, exact comparison.

Values are fractions.Fraction, never float: "1e400" or a 500-digit integer is compared exactly
and cannot overflow to inf (inf == inf would be a false positive).

The answer is the number in the LAST stated final answer ("The answer is X", "answer: X",
\\boxed{X}, "#### X"). When a completion states no final answer at all, the last number in
it is taken: that is how a bare chain of arithmetic ends, and the pred column shows what
was taken. Only a completion with no number at all is "unparsed".
"""

from __future__ import annotations

import re
from fractions import Fraction

from sps.tasks.grading.common import UNPARSED, Grade, Unbalanced, final_spans, normalize

REL_TOL = Fraction(1, 10**6)
ABS_TOL = Fraction(1, 10**9)
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
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")
_LATEX_NOISE = re.compile(r"\\[,!;: ]|\\left|\\right|\{,\}")


def clean(text: str) -> str:
    """Unicode digits to ASCII, LaTeX fractions to a/b, \\$ \\% \\text{} unwrapped."""
    text = normalize(text)
    text = text.replace("{,}", ",")
    text = _LATEX_NOISE.sub("", text)
    text = _FRAC.sub(r"\1/\2", text)
    text = re.sub(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}", r" \1 ", text)
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


def close(pred: Fraction, gold: Fraction) -> bool:
    return abs(pred - gold) <= max(ABS_TOL, REL_TOL * abs(gold))


def extract(completion: str) -> tuple[str, Fraction | None] | None:
    """The final answer's first number, else the completion's last number; None if none."""
    for _, span in reversed(final_spans(completion)):
        found = numbers_in(span)
        if found:
            return found[0]
    found = numbers_in(completion)
    return found[-1] if found else None


def grade_number(completion: str, gold: str) -> Grade:
    try:
        found = extract(completion)
    except Unbalanced:
        return UNPARSED
    if found is None:
        return UNPARSED
    text, value = found
    if value is None:  # a number too large to evaluate is no answer any gold has
        return Grade(text[:40], False, "ok")
    gold_value = parse_number(gold)
    if gold_value is None:
        raise ValueError(f"gold answer {gold[:80]!r} is not a number")
    return Grade(canonical(value), close(value, gold_value), "ok")
