"""Multiple-choice answers (CommonsenseQA): a letter A-E, or the exact text of one choice.

Evidence, the last instance of each kind winning: a stated final answer ("The answer is (B)",
"answer: b.", \\boxed{C}, or its span being a choice's text); then a marked letter anywhere
("(B)", "**C**"); then a completion that is just a letter ("B", "B. bank") or a choice's text.
A lowercase "a" is an article unless marked ("(a)", "a." at the end), so "the answer is a bank"
is read through the choice text, not as the letter A.
"""

from __future__ import annotations

import re

from sps.tasks.grading.common import UNPARSED, Grade, Unbalanced, final_spans, normalize

_LETTER = re.compile(
    r"^[\s*_\"'$]*(?:\\text\s*\{)?[\s*_]*"
    r"(?:\(([A-Ea-e])\)|([A-E])(?![\w'])|([a-e])(?=[\s*_)}.:]*$|[)}.:,]))"
)
_MARKED = re.compile(r"\(([A-E])\)|\*\*\(?([A-E])\)?[.:]?\*\*")


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
    """The label whose text the span is, up to its first clause end (case, punctuation aside)."""
    candidates = {_squash(span), _squash(re.split(r"[.,;!?\n]", span, maxsplit=1)[0])}
    for label, text in options.items():
        if _squash(text) in candidates - {""}:
            return label
    return None


def _letter(span: str, options: dict[str, str]) -> str | None:
    m = _LETTER.match(span)
    if m:
        label = next(g for g in m.groups() if g).upper()
        if not options or label in options:
            return label
    return _by_text(span, options)


def extract(completion: str, options: dict[str, str]) -> str | None:
    text = normalize(completion)
    for _, span in reversed(final_spans(text)):
        found = _letter(span, options)
        if found:
            return found
    marked = [a or b for a, b in _MARKED.findall(text) if (a or b) in options or not options]
    if marked:
        return marked[-1]
    return _letter(text.strip(), options) if len(text.strip()) <= 80 else None


def grade_choice(completion: str, gold: str, choices: list[str] | None) -> Grade:
    options = split_choices(choices)
    try:
        pred = extract(completion, options)
    except Unbalanced:
        return UNPARSED
    if pred is None:
        return UNPARSED
    return Grade(pred, pred == gold.strip().upper(), "ok")
