"""Each benchmark's hub schema, read into the contract's fields (question, gold, choices, id).

A row that cannot be read raises BadRow with a reason key (counted in load.json when
data.on_bad_row is "skip"); the caller adds the file and row number to the message.
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


class BadRow(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _text(row: dict, *keys: str) -> str:
    """The first present key's value as a stripped string."""
    for key in keys:
        if key in row and row[key] is not None:
            return str(row[key]).strip()
    raise BadRow("missing field", f"no {' or '.join(repr(k) for k in keys)} field")


def _question(row: dict, *keys: str) -> str:
    text = _text(row, *keys)
    if not text:
        raise BadRow("empty question", f"field {keys[0]!r} is empty")
    return text


def _number_gold(text: str, what: str) -> str:
    value = parse_number(text)
    if value is None:
        raise BadRow("unparseable gold", f"{what} {text[:80]!r} is not a number")
    return canonical(value)


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
    solution = _text(row, "answer")
    if "####" not in solution:
        raise BadRow("unparseable gold", "answer has no '#### N' line")
    gold = _number_gold(solution.rsplit("####", 1)[1].strip(), "answer after ####")
    return {"question": _question(row, "question"), "gold": gold, "solution": solution}


def math_(row: dict) -> dict:
    question = _question(row, "problem")
    gold = row.get("answer")
    gold = str(gold).strip() if gold is not None else last_boxed(_text(row, "solution"))
    if not gold:
        raise BadRow("unparseable gold", "no answer field and no \\boxed{} in the solution")
    return {"question": question, "gold": gold, "id": row.get("unique_id")}


def svamp(row: dict) -> dict:
    if "Body" in row or "Question" in row:
        question = f"{_text(row, 'Body')} {_question(row, 'Question')}".strip()
    else:
        question = _question(row, "question_concat")
    answer = row.get("Answer")
    if answer is None:
        raise BadRow("missing field", "no 'Answer' field")
    if isinstance(answer, numbers.Real) and not isinstance(answer, bool):
        if not math.isfinite(answer):
            raise BadRow("unparseable gold", f"Answer {answer!r} is not a finite number")
        answer = repr(float(answer))  # repr: the shortest text that reads back the same float
    gold = _number_gold(str(answer), "Answer")
    return {"question": question, "gold": gold, "id": row.get("ID")}


def strategyqa(row: dict) -> dict:
    answer = row.get("answer")
    if answer is None:
        raise BadRow("missing field", "no 'answer' field")
    if isinstance(answer, str) and answer.strip().lower() in ("true", "false", "yes", "no"):
        answer = answer.strip().lower() in ("true", "yes")
    if isinstance(answer, np.bool_):  # parquet and datasets give numpy booleans
        answer = bool(answer)
    if not isinstance(answer, bool):
        raise BadRow("unparseable gold", f"answer {answer!r} is not a boolean")
    return {
        "question": _question(row, "question"),
        "gold": "yes" if answer else "no",
        "id": row.get("qid"),
    }


def commonsense_qa(row: dict) -> dict:
    question = _question(row, "question")
    choices = row.get("choices")
    if not isinstance(choices, dict) or "label" not in choices or "text" not in choices:
        raise BadRow("missing field", "no 'choices' with 'label' and 'text'")
    labels = [str(x).strip().upper() for x in choices["label"]]
    texts = [str(x).strip() for x in choices["text"]]
    if not labels or len(labels) != len(texts) or len(set(labels)) != len(labels):
        raise BadRow("unparseable gold", f"choices labels {labels} do not match texts {texts}")
    gold = _text(row, "answerKey").upper()
    if gold not in labels:
        raise BadRow("unparseable gold", f"answerKey {gold!r} is not one of {labels}")
    return {
        "question": question,
        "gold": gold,
        "choices": [f"{lab}. {txt}" for lab, txt in zip(labels, texts, strict=True)],
        "id": row.get("id"),
    }


READERS: dict[str, Callable[[dict], dict]] = {
    "gsm8k": gsm8k,
    "math": math_,
    "svamp": svamp,
    "strategyqa": strategyqa,
    "commonsense_qa": commonsense_qa,
}
