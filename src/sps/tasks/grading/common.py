"""Text helpers every grader shares: Unicode normalisation, \\boxed{} and final-answer phrases."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Dashes and minus signs a model may write for a negative number.
_MINUS = dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\ufe63\uff0d"), "-")

# "The answer is", "final answer:", "Answer =", "the answer would be" ... then the answer span.
ANSWER_PHRASE = re.compile(
    r"answer\W{0,3}?(?:\s+(?:is|was|would\s+be|will\s+be|should\s+be)\b|\s*[:=])[\s*_:]*",
    re.IGNORECASE,
)
BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


class Unbalanced(ValueError):
    """A \\boxed{ whose braces never close (typically a truncated completion)."""


@dataclass(frozen=True)
class Grade:
    pred: str  # the extracted answer ("" when none)
    correct: bool
    status: str  # ok | unparsed | timeout


UNPARSED = Grade("", False, "unparsed")


def normalize(text: str) -> str:
    """NFKC (full-width digits, ligatures), then every Unicode decimal digit to ASCII.

    NFKC leaves Arabic-Indic, Devanagari ... digits alone, so those go through
    unicodedata.decimal one character at a time.
    """
    text = unicodedata.normalize("NFKC", text).translate(_MINUS)
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and ch.isdecimal() else ch for ch in text
    )


def braced(text: str, start: int) -> tuple[str, int]:
    """Content of the brace group opening at text[start] == '{', and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{" and text[i - 1 : i] != "\\":
            depth += 1
        elif text[i] == "}" and text[i - 1 : i] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    raise Unbalanced(f"unbalanced braces after position {start}")


def boxed_spans(text: str) -> list[tuple[int, str]]:
    """(position, content) of every \\boxed{...}; raises Unbalanced when the last one never
    closes, so a truncated final answer is never replaced by an earlier one."""
    spans = []
    for m in BOXED.finditer(text):
        try:
            spans.append((m.start(), braced(text, m.end() - 1)[0]))
        except Unbalanced:
            if not any(b.start() > m.start() for b in BOXED.finditer(text, m.end())):
                raise
    return spans


def phrase_spans(text: str, width: int = 2000) -> list[tuple[int, str]]:
    """(position, text after the phrase up to the end of its line) of each answer phrase.

    `width` exceeds numbers.MAX_DIGITS, so a huge number is never cut into a smaller one.
    """
    spans = []
    for m in ANSWER_PHRASE.finditer(text):
        rest = text[m.end() : m.end() + width]
        spans.append((m.start(), rest.split("\n", 1)[0]))
    return spans


def hash_spans(text: str) -> list[tuple[int, str]]:
    """GSM8K's '#### X' final-answer line."""
    return [(m.start(), m.group(1)) for m in re.finditer(r"####\s*([^\n]*)", text)]


def final_spans(text: str) -> list[tuple[int, str]]:
    """Every stated final answer (phrase, \\boxed{}, ####), in text order: the last one wins."""
    return sorted(phrase_spans(text) + boxed_spans(text) + hash_spans(text))
