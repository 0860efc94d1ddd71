"""Yes/no answers (StrategyQA).

Order of evidence, the last instance of each winning: a stated final answer ("the answer is
yes", "answer: **No**", \\boxed{yes}); then a line or sentence that is only "yes"/"no"
("**No**", "Yes."); then a completion that opens with yes/no ("Yes, because ...").
A yes or no inside prose ("there is no evidence") is never taken as the answer.
"""

from __future__ import annotations

import re

from sps.tasks.grading.common import UNPARSED, Grade, Unbalanced, final_spans, normalize

WORDS = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_LEAD = re.compile(r"^[\s*_\"'(\[$]*(?:\\text\s*\{)?\s*(yes|no|true|false)\b", re.IGNORECASE)
_ALONE = re.compile(r"(?:^|[\n.!?])[\s*_#>\-]*(yes|no)[\s*_]*[.!]?[\s*_]*(?=$|\n)", re.IGNORECASE)


def parse_yes_no(text: str) -> str | None:
    """'yes' or 'no' for a gold value or an answer span that starts with one."""
    m = _LEAD.match(text)
    return WORDS[m.group(1).lower()] if m else None


def extract(completion: str) -> str | None:
    text = normalize(completion)
    for _, span in reversed(final_spans(text)):
        found = parse_yes_no(span)
        if found:
            return found
    alone = _ALONE.findall(text)
    if alone:
        return alone[-1].lower()
    return parse_yes_no(text)


def grade_yes_no(completion: str, gold: str) -> Grade:
    try:
        pred = extract(completion)
    except Unbalanced:
        return UNPARSED
    if pred is None:
        return UNPARSED
    want = parse_yes_no(gold)
    if want is None:
        raise ValueError(f"gold answer {gold!r} is not yes/no")
    return Grade(pred, pred == want, "ok")
