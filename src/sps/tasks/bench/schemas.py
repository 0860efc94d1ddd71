"""Each benchmark's hub schema, read into the contract's fields (question, gold, choices, id).

A row that cannot be read raises BadRow with a reason key (counted in load.json when
data.on_bad_row is "skip"); the caller adds the file and row number to the message.

Types are strict: a question is a non-empty string (never a number, list or mapping turned
into text); a numeric gold is a real number (not a boolean) or text that is exactly one
number; a yes/no gold a boolean, yes/no, true/false or 0/1; choices (label, text) string
pairs. Besides each benchmark's main hub schema, a reader takes the spellings common
re-uploads use where they cannot be misread (listed in config/README.md).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable

import numpy as np

from sps.tasks.grading.common import Unbalanced, braced
from sps.tasks.grading.numbers import canonical, parse_number

ANSWER_TYPES = {
    "gsm8k": "number",
    "math": "math",
    "svamp": "number",
    "strategyqa": "yes_no",
    "commonsense_qa": "choice",
}

# One number, as a gold answer spells it: -1,234.5, $12, 3/4, 1e+16 (nothing else around it)
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
GOLD_NUMBER = re.compile(rf"[-+]?\$?\s?(?:{_NUM})(?:[eE][-+]?\d+)?(?:\s*/\s*(?:{_NUM}))?")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class BadRow(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _kind(value: object) -> str:
    """How a message names a value of the wrong type: its type and the start of its text."""
    return f"{type(value).__name__} {str(value)[:40]!r}"


def _field(row: dict, *keys: str) -> tuple[str, object]:
    """(key, value) of the first of keys present with a value; the first key names it."""
    for key in keys:
        if row.get(key) is not None:
            return key, row[key]
    raise BadRow("missing field", f"no {' or '.join(repr(k) for k in keys)} field")


def _string(row: dict, *keys: str) -> str:
    key, value = _field(row, *keys)
    if not isinstance(value, str):
        raise BadRow("wrong type", f"field {key!r} holds {_kind(value)}, not text")
    return value.strip()


def _question(row: dict, *keys: str) -> str:
    text = _string(row, *keys)
    if not text:
        raise BadRow("empty question", f"field {keys[0]!r} is empty")
    return text


def _ident(row: dict, *keys: str) -> str | None:
    """The row's id: text or an integer; None when absent (the loader numbers the row)."""
    try:
        key, value = _field(row, *keys)
    except BadRow:
        return None
    if isinstance(value, float) and math.isnan(value):  # a parquet column with gaps
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    raise BadRow("wrong type", f"field {key!r} holds {_kind(value)}, not an id")


def _number_gold(value: object, what: str) -> str:
    """A numeric gold in canonical spelling: a finite real (not a boolean) or the text of
    exactly one number ("Answer: [1]" and "5 or 6" are not numbers)."""
    if isinstance(value, bool | np.bool_):
        raise BadRow("wrong type", f"{what} is a boolean, not a number")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise BadRow("unparseable gold", f"{what} {value!r} is not a finite number")
        value = repr(float(value))  # repr: the shortest text that reads back the same float
    if not isinstance(value, str):
        raise BadRow("wrong type", f"{what} holds {_kind(value)}, not a number")
    text = value.strip()
    parsed = parse_number(text) if GOLD_NUMBER.fullmatch(text) else None
    if parsed is None:
        raise BadRow("unparseable gold", f"{what} {text[:80]!r} is not a number")
    return canonical(parsed)


def _boolean(value: object, what: str) -> bool:
    if isinstance(value, bool | np.bool_):  # parquet and datasets give numpy booleans
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    raise BadRow("unparseable gold", f"{what} {str(value)[:40]!r} is not yes/no, true/false or 0/1")


def _sequence(value: object) -> list | None:
    return list(value) if isinstance(value, list | tuple | np.ndarray) else None


def last_boxed(solution: str) -> str | None:
    """Content of the last \\boxed{...} (nested braces kept), None if there is none."""
    starts = [m.end() - 1 for m in re.finditer(r"\\boxed\s*\{", solution)]
    if not starts:
        return None
    try:
        return braced(solution, starts[-1])[0].strip()
    except Unbalanced:
        return None


def gsm8k(row: dict) -> dict:
    """question (or problem); answer: a solution ending in "#### N", or N alone."""
    question = _question(row, "question", "problem")
    _, answer = _field(row, "answer")
    if isinstance(answer, str) and "####" in answer:
        gold = _number_gold(answer.rsplit("####", 1)[1], "answer after ####")
        return {"question": question, "gold": gold, "solution": answer}
    if isinstance(answer, str) and not GOLD_NUMBER.fullmatch(answer.strip()):
        raise BadRow("unparseable gold", "answer has no '#### N' line and is not a number")
    return {"question": question, "gold": _number_gold(answer, "answer")}


def math_(row: dict) -> dict:
    """problem (or question); answer (or expected_answer), else the solution's last box."""
    question = _question(row, "problem", "question")
    if row.get("answer") is None and row.get("expected_answer") is None:
        gold = last_boxed(_string(row, "solution"))
        if not gold:
            raise BadRow("unparseable gold", "no answer field and no \\boxed{} in the solution")
        return {"question": question, "gold": gold, "id": _ident(row, "unique_id", "id")}
    key, gold = _field(row, "answer", "expected_answer")
    if isinstance(gold, numbers.Real) and not isinstance(gold, bool | np.bool_):
        gold = _number_gold(gold, key)
    elif not isinstance(gold, str):
        raise BadRow("wrong type", f"field {key!r} holds {_kind(gold)}, not an answer")
    if not gold.strip():
        raise BadRow("unparseable gold", f"field {key!r} is empty")
    return {"question": question, "gold": gold.strip(), "id": _ident(row, "unique_id", "id")}


def svamp(row: dict) -> dict:
    """Body + Question (or question_concat, or question); Answer (or answer): a number."""
    if "Body" in row or "Question" in row:
        question = f"{_string(row, 'Body')} {_question(row, 'Question')}".strip()
    else:
        question = _question(row, "question_concat", "question")
    key, answer = _field(row, "Answer", "answer")
    gold = _number_gold(answer, key)
    return {"question": question, "gold": gold, "id": _ident(row, "ID", "id")}


def strategyqa(row: dict) -> dict:
    """question; answer: a boolean, yes/no, true/false, or 0/1 (int or text)."""
    question = _question(row, "question")
    key, answer = _field(row, "answer")
    gold = "yes" if _boolean(answer, key) else "no"
    return {"question": question, "gold": gold, "id": _ident(row, "qid", "id")}


def _choices(value: object) -> list[tuple[str, str]]:
    """(label, text) pairs from {label: [...], text: [...]} or [{label, text}, ...]."""
    if isinstance(value, dict):
        labels, texts = _sequence(value.get("label")), _sequence(value.get("text"))
        if labels is None or texts is None or len(labels) != len(texts):
            raise BadRow("bad choices", "'choices' needs equally long 'label' and 'text' lists")
        pairs = list(zip(labels, texts, strict=True))
    else:
        items = _sequence(value)
        if items is None or not all(isinstance(x, dict) for x in items):
            raise BadRow("bad choices", f"'choices' holds {_kind(value)}")
        pairs = [(x.get("label"), x.get("text")) for x in items]
    if not all(isinstance(x, str) and x.strip() for pair in pairs for x in pair):
        raise BadRow("bad choices", f"a choice label or text is not non-empty text: {pairs}")
    pairs = [(label.strip().upper(), text.strip()) for label, text in pairs]
    labels = [label for label, _ in pairs]
    if len(pairs) < 2 or len(set(labels)) != len(labels):
        raise BadRow("bad choices", f"labels {labels}: need two or more, all different")
    return pairs


def commonsense_qa(row: dict) -> dict:
    """question and choices, or the original release's question {stem, choices}; answerKey."""
    if isinstance(row.get("question"), dict):
        stem = row["question"]
        question, choices = _question(stem, "stem"), stem.get("choices")
    else:
        question, choices = _question(row, "question"), row.get("choices")
    if choices is None:
        raise BadRow("missing field", "no 'choices' field")
    pairs = _choices(choices)
    gold = _string(row, "answerKey").upper()
    labels = [label for label, _ in pairs]
    if gold not in labels:
        raise BadRow("unparseable gold", f"answerKey {gold!r} is not one of {labels}")
    return {
        "question": question,
        "gold": gold,
        "choices": [f"{label}. {text}" for label, text in pairs],
        "id": _ident(row, "id"),
    }


READERS: dict[str, Callable[[dict], dict]] = {
    "gsm8k": gsm8k,
    "math": math_,
    "svamp": svamp,
    "strategyqa": strategyqa,
    "commonsense_qa": commonsense_qa,
}
