"""Extraction is linear in the completion's length: 1 MB hostile completions grade in under a
second, in this process (outside the math-verify pool), for every answer type.

Before the linear rewrite, 64 KB of repeated unclosed \\boxed{ took 14 s in the number grader
and 79 s in the MATH path; 16 KB of newlines took 9 s in the yes/no grader.
Times are CPU seconds of this process (time.process_time), so other load on the machine does
not count; max_chars is raised above 1 MB so the parsers themselves run.
"""

import time

import pytest

from sps.tasks import grading
from sps.tasks.grading import grade_inline

MB = 1 << 20
LIMIT_S = 1.0

HOSTILE = {
    "unclosed_boxed": "\\boxed{" * (MB // 7),
    "closed_boxes": "\\boxed{x}" * (MB // 9),
    "nested_boxes": "\\boxed{" * (MB // 8) + "}" * (MB // 8),
    "nested_braces": "\\boxed{" + "{" * (MB // 2) + "}" * (MB // 2) + "}",
    "open_braces": "{" * MB,
    "dollar_run": "$" * MB,
    "dollar_pairs": "$x" * (MB // 2),
    "hash_run": "####" * (MB // 4),
    "hash_lines": "#### x\n" * (MB // 7),
    "answer_phrases": "The answer is " * (MB // 14),
    "answer_lines": "Answer:\n" * (MB // 8),
    "negations": "The answer is not " * (MB // 18),
    "digit_run": "1" * MB,
    "digit_run_unit": "1" * MB + "x",
    "number_list": "1 " * (MB // 2),
    "comma_digits": "1," * (MB // 2),
    "equals": "= 1 " * (MB // 4),
    "newlines": "\n" * MB + "x",
    "spaces_after_yes": "yes" + " " * MB + "x",
    "yes_sentences": "Yes. " * (MB // 5),
    "letters": "(B) " * (MB // 4),
    "declared": "B is " * (MB // 5),
    "math_parens": "\\(" * (MB // 2),
    "math_brackets": "\\[" * (MB // 2),
    "fracs": "\\frac{" * (MB // 6),
    "texts": "\\text{" * (MB // 6),
    "answer_dollars": "The answer is $" * (MB // 15),
}
GOLD = {"number": "1", "yes_no": "yes", "choice": "A", "math": "1"}


def _grade(kind: str, completion: str):
    if kind == "math":  # everything the caller does; math-verify itself is stubbed out
        return grading._math_grades(["1"], [completion], 2 * MB, lambda pairs: [False] * len(pairs))
    return grade_inline(kind, completion, GOLD[kind], ["A. x", "B. y"], max_chars=2 * MB)


@pytest.mark.parametrize("kind", ["number", "yes_no", "choice", "math"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_megabyte_is_fast(name, kind):
    text = HOSTILE[name]
    assert len(text) >= MB - 20
    start = time.process_time()
    got = _grade(kind, text)
    spent = time.process_time() - start
    assert spent < LIMIT_S, f"{name} / {kind}: {spent:.2f} s CPU"
    assert got is not None


def test_unclosed_final_box_is_unparsed_not_an_earlier_answer():
    text = "The answer is 1. " + "\\boxed{" * 1000
    assert grade_inline("number", text, "1").status == "unparsed"
    assert grading.grade("math", "\\boxed{1} " + "\\boxed{" * 1000, "1").status == "unparsed"


def test_default_cap_refuses_before_parsing():
    text = "\\boxed{" * (MB // 7)
    start = time.process_time()
    for kind in ("number", "yes_no", "choice"):
        assert grade_inline(kind, text, GOLD[kind], ["A. x"]).status == "too_long"
    assert time.process_time() - start < 0.1
