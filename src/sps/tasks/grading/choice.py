"""Multiple-choice answers (CommonsenseQA): a letter A-E, or the exact text of one choice.

Evidence, the LAST one in the text winning:
- a stated final answer ("The answer is (B)", "answer: b.", "The answer is option B",
  "The correct option is B", \\boxed{C}) whose span opens with a letter or is a choice's text;
- a letter declared right or chosen: "B is the correct answer", "Option (B) is the best
  choice", "I would choose B";
- a last line that is only a bold or parenthesised letter ("**C**", "(C)").
With none of these, a completion that is only a letter, or a letter and its own choice text
("B", "(B)", "B. library", "library"), is read; a list of options ("B: with brush - possible
but unlikely.\\nC") is not. A lowercase "a" is an article unless marked ("(a)", "a." at the
end), so "the answer is a bank" is read through the choice text, not as the letter A.
"""

from __future__ import annotations

import re

from sps.tasks.grading.common import (
    UNPARSED,
    Grade,
    Unbalanced,
    final_spans,
    last,
    normalize,
    own_answer,
    strip_negation,
)

_LETTER = re.compile(
    r"[\s*_\"'$]*+(?:\\text(?:bf)?\s*+\{)?[\s*_]*+(?:(?i:option|choice|letter)\b[\s:]*+)?"
    r"[*_]*+(?:\(([A-Ea-e])\)|([A-E])(?![\w'])|([a-e])(?=[\s*_)}.:]*+$|[)}.:,]))"
)
_DECLARED = re.compile(
    r"(?:\b(?i:option|choice|letter)\s++)?(?:\(([A-E])\)|\b([A-E])\b)[*_]*+"
    r"[ \t]++is\s++(?:the\s++|also\s++the\s++)?(?:correct|right|best|most\s++\w++)\b"
    r"(?!\s++(?:if|only|when|unless)\b)"
)
_CHOSEN = re.compile(
    r"\b(?:choose|pick|select|go\s++with)\s++(?:(?:option|choice|answer)\s++)?"
    r"(?:\(([A-E])\)|([A-E])(?![\w']))"
)
_BOLD_LINE = re.compile(r"[\s>#-]*+(?:\*\*\(?([A-E])\)?[.:]?\*\*|\(([A-E])\))[\s.]*+")
_SHORT = 80  # characters: a completion this short may be a bare answer
_BARE = re.compile(r"[\s*_\"'(]*+([A-Ea-e])[*_\"')]*+[.:)]?[\s*_]*+(?P<text>.*)", re.DOTALL)


def split_choices(choices: list[str] | None) -> dict[str, str]:
    """{"A": "bank", ...} from the contract's ["A. bank", ...]."""
    out = {}
    for item in choices if choices is not None else []:
        label, _, text = str(item).partition(". ")
        out[label.strip().upper()] = text.strip()
    return out


def _squash(text: str) -> str:
    """Lowercase words without punctuation or a leading article ("a bank" is "bank")."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(words[1:] if words[:1] in (["a"], ["an"], ["the"]) else words)


def _by_text(span: str, options: dict[str, str]) -> str | None:
    """The label whose text the span is, up to its first clause end (case, punctuation aside);
    None when two choices share that text."""
    candidates = {_squash(span), _squash(re.split(r"[.,;!?\n]", span, maxsplit=1)[0])} - {""}
    found = {label for label, text in options.items() if _squash(text) in candidates}
    return found.pop() if len(found) == 1 else None


def _known(label: str, options: dict[str, str]) -> str | None:
    label = label.upper()
    return label if not options or label in options else None


def _letter(span: str, options: dict[str, str]) -> str | None:
    """The letter an answer span opens with, else the choice whose text it is ("not hungry"
    can be a choice's text, so that is tried before reading "not X; it is Y")."""
    by_text = _by_text(span, options)
    if by_text:
        return by_text
    span = strip_negation(span)
    m = _LETTER.match(span)
    if m:
        return _known(next(g for g in m.groups() if g), options)
    return _by_text(re.sub(r"^\W*(?i:option|choice)\b", "", span), options)


def _bare(text: str, options: dict[str, str]) -> str | None:
    """A completion that is only a letter, or a letter and its own choice text, or that text."""
    m = _BARE.fullmatch(text)
    if m:
        label, rest = m[1].upper(), m["text"].strip()
        if not rest or (label in options and _squash(rest) == _squash(options[label])):
            return _known(label, options)
    whole = _squash(text)
    return next((label for label, t in options.items() if whole and _squash(t) == whole), None)


def extract(completion: str, options: dict[str, str]) -> str | None:
    text = normalize(own_answer(completion)).rstrip()
    found = [(pos, _letter(span, options)) for pos, span in final_spans(text)]
    for declared in (_DECLARED, _CHOSEN):
        found += [(m.start(), _known(m[1] or m[2], options)) for m in last(declared.finditer(text))]
    line_start = text.rfind("\n") + 1
    bold = _BOLD_LINE.fullmatch(text, line_start)
    if bold:
        found.append((line_start, _known(bold[1] or bold[2], options)))
    found = [f for f in found if f[1]]
    if found:
        return max(found)[1]
    stripped = text.strip()
    return _bare(stripped, options) if len(stripped) <= _SHORT else None


def grade_choice(completion: str, gold: str, choices: list[str] | None) -> Grade:
    options = split_choices(choices)
    try:
        pred = extract(completion, options)
    except Unbalanced:
        return UNPARSED
    if pred is None:
        return UNPARSED
    return Grade(pred, pred == gold.strip().upper(), "ok")
