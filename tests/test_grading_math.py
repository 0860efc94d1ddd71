"""MATH grading through math-verify in the timeout pool, and the batch grader's wiring."""

import time
from types import SimpleNamespace

import pytest

from sps.config import GradingConfig
from sps.tasks.data import grade_row, grade_rows
from sps.tasks.grading import Grade, grade, grade_many, mathans
from sps.tasks.grading.pool import TIMEOUT, TimeoutPool

# sympy evaluates 9^(9^9) as an exact integer (hundreds of millions of digits): it hangs in C,
# where math-verify's own SIGALRM timeout cannot interrupt it.
TOWER = "So the answer is $\\boxed{9^{9^{9^{9^{9}}}}}$."


def test_extract():
    assert mathans.extract("so \\boxed{1} no, \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert mathans.extract("The answer is $\\frac{1}{2}$.") == "\\frac{1}{2}"
    assert mathans.extract("\\boxed{{(1,2)}}") == "(1,2)"
    assert mathans.extract("nothing") is None
    with pytest.raises(mathans.Unbalanced):
        mathans.extract("\\boxed{1} then \\boxed{\\frac{1}{2}")


@pytest.mark.parametrize(
    ("completion", "gold", "correct"),
    [
        ("Thus $\\boxed{\\frac{1}{2}}$.", "0.5", True),
        ("The answer is 0.5.", "\\frac{1}{2}", True),
        ("\\boxed{\\dfrac{3}{4}}", "\\frac34", True),
        ("\\boxed{(3, \\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
        ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}", True),
        ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", True),
        ("\\boxed{4}", "3", False),
        ("\\boxed{1} at first, but finally \\boxed{2}", "1", False),
    ],
)
def test_math_verify_grades(completion, gold, correct):
    result = grade("math", completion, gold, timeout=10)
    assert (result.correct, result.status) == (correct, "ok")


def test_math_unparsed():
    assert grade("math", "I give up", "1") == Grade("", False, "unparsed")
    assert grade("math", "\\boxed{\\frac{1}{2}", "0.5").status == "unparsed"  # unbalanced


def test_timeout_counted_and_pool_recovers():
    rows = [{"answer_type": "math", "gold": g, "choices": None} for g in ("5", "7", "\\frac12")]
    completions = [TOWER, "\\boxed{7}", "The answer is 0.5."]
    start = time.monotonic()
    grades = grade_many(rows, completions, timeout=1.0, workers=1)
    assert time.monotonic() - start < 15
    assert grades[0] == Grade("9^{9^{9^{9^{9}}}}", False, "timeout")
    assert grades[1].correct and grades[2].correct  # the replaced worker went on grading


def test_pool_kills_and_replaces_hung_worker():
    with TimeoutPool(mathans.verify_answer, workers=2, timeout=1.0) as pool:
        tower = ("5", "9^{9^{9^{9^{9}}}}")
        out = pool.map([tower, ("1", "1.0"), tower, ("2", "3")])
        assert out == [TIMEOUT, True, TIMEOUT, False]
        assert pool.timeouts == 2
        assert pool.map([("x+1", "1+x")]) == [True]


def test_grade_many_mixed_types_in_order():
    rows = [
        {"answer_type": "number", "gold": "12", "choices": None},
        {"answer_type": "math", "gold": "\\frac{1}{3}", "choices": None},
        {"answer_type": "yes_no", "gold": "no", "choices": None},
        {"answer_type": "choice", "gold": "B", "choices": ["A. x", "B. y"]},
        {"answer_type": "math", "gold": "2", "choices": None},
    ]
    texts = ["The answer is 12.", "\\boxed{1/3}", "The answer is no.", "(B)", "\\boxed{2"]
    grades = grade_many(rows, texts, timeout=5, workers=2)
    assert [g.correct for g in grades] == [True, True, True, True, False]
    assert grades[4].status == "unparsed"
    with pytest.raises(ValueError, match="rows but"):
        grade_many(rows, texts[:2])


def test_grade_row_and_grade_rows_keep_countdown():
    cd = SimpleNamespace(bench="countdown", id="c", numbers=[2, 3, 4], target=10)
    gsm = SimpleNamespace(bench="gsm8k", id="g", answer_type="number", gold="5", choices=None)
    assert grade_row(cd, "Answer: 2*3+4")[1]
    assert grade_row(gsm, "The answer is 5.") == ("5", True)
    out = grade_rows(
        [cd, gsm, cd],
        ["Answer: 2*3+4", "The answer is 6.", "junk"],
        GradingConfig(timeout=5, workers=1),
    )
    assert [o[1] for o in out] == [True, False, False]
    # countdown with no answer line is unparsed, like the real benchmarks' graders
    assert [o[2] for o in out] == ["ok", "ok", "unparsed"]
