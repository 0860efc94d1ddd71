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


# (completion, the answer extracted), per family of how models state a MATH answer.
EXTRACT_FAMILIES = {
    "boxed": [
        ("so \\boxed{1} no, \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{{(1,2)}}", "(1,2)"),
        ("Thus the domain is $\\boxed{[2,5)}$.", "[2,5)"),
        ("\\[ \\boxed{ \\dfrac{3}{4} } \\]", "\\dfrac{3}{4}"),
        ("$\\fbox{24}$", "24"),
        ("so $n = \\boxed 5$.", "5"),
        ("The answer is $\\boxed{\\text{Evelyn}}$.", "\\text{Evelyn}"),
        ("\\boxed{30°}", "30^\\circ"),
        ("\\boxed{x = 5.}", "x = 5"),
    ],
    "minerva": [
        ("Final Answer: The final answer is $40$. I hope it is correct.", "40"),
        (
            "... $=\\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct.",
            "24",
        ),
        (
            "Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.",
            "-\\frac{2}{3}",
        ),
        ("The final answer is $8n^2 + 4n + 1$. I hope it is correct.", "8n^2 + 4n + 1"),
        ("Final Answer: The final answer is 7. I hope it is correct.", "7"),
    ],
    "answer_phrase": [
        ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}"),
        ("The answer is $40$, which is the number of ways.", "40"),
        ("So the answer is \\(\\sqrt{3}\\).", "\\sqrt{3}"),
        ("Answer: $$x^2+1$$", "x^2+1"),
        ("The answer to this problem is therefore $12$.", "12"),
        ("The answer is 0.5.", "0.5"),
        ("The answer is 40, which is even.", "40"),
        ("The answer is Evelyn.", "Evelyn"),
        ("The answer is $\\$18.90$.", "\\$18.90"),
        ("The answer is √3.", "\\sqrt3"),
    ],
    "final_wins": [
        ("The answer is $5$. Wait, that is wrong; the answer is $\\boxed{6}$.", "6"),
        ("\\boxed{5} ... on reflection, the answer is $7$.", "7"),
        ("\\boxed{8}\n\nI hope the answer is correct.", "8"),
        ("The answer is not $5$; it is $6$.", "6"),
        ("The answer is $\\boxed{5}$.\n\nQuestion: What is 2+2?\nAnswer: $\\boxed{4}$", "5"),
    ],
    "last_line_math": [
        ("We solve $2x = 10$.\nTherefore $x = 5$.", "x = 5"),
        ("Adding them gives $$1 + 2 + 3 = 6.$$", "1 + 2 + 3 = 6"),
    ],
}


@pytest.mark.parametrize(
    ("family", "completion", "answer"),
    [(f, c, a) for f, cases in EXTRACT_FAMILIES.items() for c, a in cases],
)
def test_extract_families(family, completion, answer):
    assert mathans.extract(completion) == answer, family


@pytest.mark.parametrize(
    "completion",
    [
        "nothing",
        "I am not sure how to finish. We know $x > 2$.\nSo we continue with",
        "\\boxed{1} then \\boxed{\\frac{1}{2}",
        "",
    ],
)
def test_extract_none(completion):
    try:
        assert mathans.extract(completion) is None
    except mathans.Unbalanced:
        assert "\\boxed{" in completion


def test_quick_verdict_exact_numbers():
    assert mathans.quick_verdict("\\frac{3}{4}", "0.75") is True
    assert mathans.quick_verdict("10,\\!080", "10080") is True
    assert mathans.quick_verdict("1450000", "1450001") is False
    assert mathans.quick_verdict("\\frac{1}{3}", "0.333333") is False
    assert mathans.quick_verdict("2\\sqrt{3}", "\\sqrt{12}") is None
    assert mathans.quick_verdict("x + 1", " x+1") is True


# (completion, gold, graded right), all through one pool (math-verify where quick_verdict
# cannot decide).
VERIFY_CASES = [
    ("Thus $\\boxed{\\frac{1}{2}}$.", "0.5", True),
    ("The answer is 0.5.", "\\frac{1}{2}", True),
    ("\\boxed{\\dfrac{3}{4}}", "\\frac34", True),
    ("\\boxed{(3, \\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}", True),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", True),
    ("\\boxed{30°}", "30^\\circ", True),
    ("Final Answer: The final answer is $40$. I hope it is correct.", "40", True),
    ("The answer is $40$, which is the number of ways.", "40", True),
    ("The final answer is $\\boxed{x = 5}$.", "5", True),
    ("\\boxed{10,\\!080}", "10080", True),
    ("\\boxed{5 \\text{ cm}}", "5", True),
    ("\\boxed{4}", "3", False),
    ("\\boxed{1} at first, but finally \\boxed{2}", "1", False),
    ("The final answer is $8n^2 + 4n + 1$. I hope it is correct.", "1", False),
    ("\\boxed{1450001}", "1450000", False),
    ("\\boxed{0.333333}", "\\frac{1}{3}", False),
    ("The answer is $5$. Wait, no: the answer is $\\boxed{6}$.", "5", False),
    ("\\boxed{-\\frac{\\pi}{6}}", "\\frac{\\pi}{6}", False),
]


def test_math_verify_grades():
    rows = [{"answer_type": "math", "gold": g, "choices": None} for _, g, _ in VERIFY_CASES]
    grades = grade_many(rows, [c for c, _, _ in VERIFY_CASES], timeout=10, workers=2)
    wrong = [
        (c, g, got)
        for (c, g, want), got in zip(VERIFY_CASES, grades, strict=True)
        if (got.correct, got.status) != (want, "ok")
    ]
    assert not wrong


def test_math_single_grade_and_too_long():
    assert grade("math", "\\boxed{7}", "7", timeout=10) == Grade("7", True, "ok")
    long = "x" * 300 + "\\boxed{7}"
    assert grade("math", long, "7", max_chars=300) == Grade("", False, "too_long")
    rows = [{"answer_type": "math", "gold": "7", "choices": None}] * 2
    out = grade_many(rows, [long, "\\boxed{7}"], max_chars=300)
    assert [g.status for g in out] == ["too_long", "ok"] and out[1].correct


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
    worked = "2*3=6\n6+4=10\nAnswer: 2*3+4"  # right with and without step checking
    assert grade_row(cd, worked)[1]
    assert grade_row(gsm, "The answer is 5.") == ("5", True)
    out = grade_rows(
        [cd, gsm, cd, gsm],
        [worked, "The answer is 6.", "junk", "x" * 100 + "The answer is 5."],
        GradingConfig(timeout=5, workers=1, max_chars=100),
    )
    assert [o[1] for o in out] == [True, False, False, False]
    # countdown with no answer line is unparsed, like the real benchmarks' graders;
    # grading.max_chars reaches the benchmark grader
    assert [o[2] for o in out] == ["ok", "ok", "unparsed", "too_long"]
