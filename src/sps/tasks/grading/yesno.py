"""Yes/no answers (StrategyQA).

Evidence, the LAST one in the text winning:
- a stated final answer whose span opens with yes/no/true/false ("the answer is yes",
  "Answer: **No**", \\boxed{yes}, "The answer is not yes; it is no");
- yes/no opening a sentence or line, or after a concluding word (so, thus, therefore, hence,
  in conclusion ...), with a break right after it: "Therefore, yes.", "So, yes.", "**No**",
  "Yes, because ...".
A yes or no inside prose ("there is no evidence", "No one knows") is never taken.
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

WORDS = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_LEAD = re.compile(
    r"[\s*_\"'(\[$]*+(?:\\text(?:bf)?\s*+\{)?[\s*_]*+(yes|no|true|false)\b", re.IGNORECASE
)
_CONNECTIVE = (
    r"(?:so|thus|therefore|hence|overall|consequently|ultimately|finally|in\s+conclusion"
    r"|in\s+summary|in\s+short|to\s+conclude|in\s+sum|all\s+in\s+all)"
)
# At the text's start or after a sentence or line end, or after a concluding word anywhere
# ("... 200 miles Therefore, yes."); the word must be followed by a sentence break, so
# "No one knows", "so no one could" and "yes and no" are not answers.
_CONCLUDE = re.compile(
    rf"(?:(?:\A|(?<=[\n.!?]))[ \t*_#>-]*+|\b{_CONNECTIVE}\b[ \t,:]*+)[*_]*+(yes|no)\b"
    r"(?=[*_]*+(?:[ \t]*+(?:[.!,;:]|\n|\Z)|[ \t]++-))",
    re.IGNORECASE,
)


def parse_yes_no(text: str) -> str | None:
    """'yes' or 'no' for a gold value or an answer span that starts with one."""
    m = _LEAD.match(text)
    return WORDS[m.group(1).lower()] if m else None


def extract(completion: str) -> str | None:
    text = normalize(own_answer(completion))
    stated = [(pos, parse_yes_no(strip_negation(span))) for pos, span in final_spans(text)]
    concluded = [(m.start(), m.group(1).lower()) for m in last(_CONCLUDE.finditer(text))]
    found = [e for e in stated + concluded if e[1]]
    return max(found)[1] if found else None


def grade_yes_no(completion: str, gold: str) -> Grade:
    want = parse_yes_no(gold)
    if want is None:
        raise ValueError(f"gold answer {gold!r} is not yes/no")
    try:
        pred = extract(completion)
    except Unbalanced:
        return UNPARSED
    if pred is None:
        return UNPARSED
    return Grade(pred, pred == want, "ok")
