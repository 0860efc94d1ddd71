"""Text helpers every grader shares: Unicode normalisation, the Grade record, and the final-answer
statements of a completion (\\boxed{}, \\fbox{}, "The answer is", "####").

Bounded by construction, so a hostile completion cannot stall a grading job:
- every pass over the text is linear: braces are matched in one pass with a stack, regexes have
  no two adjacent quantifiers over overlapping characters (possessive where they would touch);
- a statement's span ends at the next statement, at its line end, or after SPAN_CHARS;
- only the last MAX_SPANS statements are read (the final answer wins, so earlier ones matter
  only when the later ones hold no answer).
"""

from __future__ import annotations

import re
import unicodedata
from collections import deque
from dataclasses import dataclass

SPAN_CHARS = 2000  # a longer "final answer" is rambling, not an answer
MAX_SPANS = 16  # statements read back from the end before giving up

# Dashes and minus signs a model may write for a negative number; the fraction slash NFKC
# leaves in "1⁄2"; zero-width characters dropped.
_TRANSLATE = {
    **dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\ufe63\uff0d"), "-"),
    ord("\u2044"): "/",
    **dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None),
}
# Thin and no-break spaces between digit groups are thousands separators ("1 450 000").
_GROUP_SPACE = re.compile(r"(?<=\d)[\u00a0\u2009\u202f](?=\d{3}(?!\d))")

# "The answer is", "final answer:", "Answer =", "the correct option is", "answer to this
# question is" ... then the answer span. Each match starts at a literal word, and the
# whitespace runs it may cross are possessive, so a match attempt costs O(its own length).
ANSWER_PHRASE = re.compile(
    r"\b(?:answer|(?:correct|right|best)\s++(?:option|choice))"
    r"(?:\s++to\s++(?:the|this|that|our)\s++(?:question|problem)\b[^\n.:=]{0,40}?)?"
    r"[*_)\]]{0,3}+(?:\s++(?:is|was|would\s++be|will\s++be|should\s++be|must\s++be)\b|\s*+[:=])"
    r"[\s*_:]*+",
    re.IGNORECASE,
)
BOXED = re.compile(r"\\(?:boxed|fbox)\s*+\{")
BOXED_BARE = re.compile(r"\\boxed ++([^\s${}]++)")  # "\boxed 5" (lm-eval and Qwen accept it)
HASH = re.compile(r"####[ \t]*+")
FOLLOW_UP = re.compile(r"\n[ \t]*+Question:")
_BRACE = re.compile(r"(?<!\\)[{}]")
NEGATION = re.compile(r"[\W_]*+not\b", re.IGNORECASE)
_NEGATION_END = re.compile(r"[;,]|\bbut\b|\brather\b|\binstead\b", re.IGNORECASE)
_REPLACEMENT = re.compile(
    r"[\s,;:]*+(?:(?:it|that)\s++is|it's|rather|instead)?+[\s,:]*+", re.IGNORECASE
)


class Unbalanced(ValueError):
    """A \\boxed{ whose braces never close (typically a truncated completion)."""


@dataclass(frozen=True)
class Grade:
    pred: str  # the extracted answer ("" when none)
    correct: bool
    status: str  # ok | unparsed | timeout | too_long


UNPARSED = Grade("", False, "unparsed")
TOO_LONG = Grade("", False, "too_long")


def normalize(text: str) -> str:
    """NFKC (full-width digits, ligatures), minus signs to '-', then every Unicode decimal digit
    to ASCII.

    NFKC leaves Arabic-Indic, Devanagari ... digits alone, so those go through
    unicodedata.decimal one character at a time.
    """
    text = _GROUP_SPACE.sub(",", text)
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and ch.isdecimal() else ch for ch in text
    )


def own_answer(completion: str) -> str:
    """The completion up to a line that opens a new "Question:" (the prompts' format): a base
    model given worked exemplars goes on to invent the next problem and answer it too."""
    m = FOLLOW_UP.search(completion)
    return completion[: m.start()] if m else completion


def braced(text: str, start: int) -> tuple[str, int]:
    """Content of the brace group opening at text[start] == '{', and the index after it.

    One pass over the braces after `start` (escaped \\{ and \\} are text)."""
    depth = 0
    for m in _BRACE.finditer(text, start):
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return text[start + 1 : m.start()], m.end()
    raise Unbalanced(f"unbalanced braces after position {start}")


def brace_pairs(text: str, start: int = 0) -> dict[int, int]:
    """{index of '{': index of its '}'} for every closed group from `start`, in one pass."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for m in _BRACE.finditer(text, start):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.start()
    return pairs


def last(matches, n: int = MAX_SPANS) -> list[re.Match]:
    """The last n items of an iterator, consumed at C speed (no Python work per match)."""
    return list(deque(matches, maxlen=n))


def box_positions(text: str) -> list[tuple[int, int, int]]:
    """(position, content start, content end) of the last MAX_SPANS closed \\boxed{} /
    \\fbox{} and bare "\\boxed 5"; contents over SPAN_CHARS are left out. Raises Unbalanced
    when the last \\boxed{ never closes, so a truncated final answer is never replaced by an
    earlier one. A group's closing brace depends only on the text after it, so braces are
    matched from the first of the boxes kept."""
    opens = [(m.start(), m.end() - 1) for m in last(BOXED.finditer(text))]
    out = [(m.start(), m.start(1), m.end(1)) for m in last(BOXED_BARE.finditer(text))]
    if not opens:
        return out
    pairs = brace_pairs(text, opens[0][1])
    if opens[-1][1] not in pairs:
        raise Unbalanced(f"\\boxed{{ at position {opens[-1][0]} never closes")
    for pos, brace in opens:
        close = pairs.get(brace)
        if close is not None and close - brace - 1 <= SPAN_CHARS:
            out.append((pos, brace + 1, close))
    return out


def _line_span(text: str, pos: int, start: int, limit: int) -> tuple[int, int, int]:
    """(pos, start, end): the span from `start` to its line end, `limit` or SPAN_CHARS."""
    limit = min(limit, start + SPAN_CHARS)
    end = text.find("\n", start, limit)
    return pos, start, limit if end < 0 else end


def _phrase_positions(text: str) -> list[tuple[int, int, int]]:
    """Answer phrases: each span runs to its line end or the next phrase."""
    found = last(ANSWER_PHRASE.finditer(text), MAX_SPANS + 1)
    ends = [m.start() for m in found[1:]] + [len(text)] * bool(found)
    return [_line_span(text, m.start(), m.end(), e) for m, e in zip(found, ends, strict=True)]


def _hash_positions(text: str) -> list[tuple[int, int, int]]:
    """GSM8K's '#### X' final-answer line."""
    return [_line_span(text, m.start(), m.end(), len(text)) for m in last(HASH.finditer(text))]


def final_statements(text: str) -> list[tuple[int, str, str]]:
    """The last MAX_SPANS stated final answers as (position, kind, text), in text order (the
    last one wins); kind is "box", "phrase" or "hash"."""
    spans = [(*s, "box") for s in box_positions(text)]
    spans += [(*s, "phrase") for s in _phrase_positions(text)]
    spans += [(*s, "hash") for s in _hash_positions(text)]
    spans.sort()
    return [(pos, kind, text[a:b]) for pos, a, b, kind in spans[-MAX_SPANS:]]


def final_spans(text: str) -> list[tuple[int, str]]:
    """(position, text) of the last MAX_SPANS stated final answers (phrase, \\boxed{}, ####),
    in text order: the last one wins."""
    return [(pos, span) for pos, _, span in final_statements(text)]


def strip_negation(span: str) -> str:
    """'not 18; it is 19' -> '19': an answer that opens by ruling a value out states the real
    one after the next ';', ',', 'but', 'rather' or 'instead' (empty when it never does)."""
    m = NEGATION.match(span)
    if not m:
        return span
    cut = _NEGATION_END.search(span, m.end())
    if not cut:
        return ""
    rest = _REPLACEMENT.match(span, cut.end())
    return span[rest.end() :]
