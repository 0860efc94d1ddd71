"""Graders for numbers, yes/no and multiple choice on messy, adversarial completions."""

import pytest

from sps.tasks.grading import Grade, grade, grade_inline
from sps.tasks.grading.numbers import canonical, parse_number

CHOICES = ["A. bank", "B. library", "C. department store", "D. mall", "E. new york"]


@pytest.mark.parametrize(
    ("completion", "gold", "pred"),
    [
        ("So the total is 1,234 dollars. The answer is 1,234.", "1234", "1234"),
        ("The answer is $18.", "18", "18"),
        ("The answer is €7 and £2 change", "7", "7"),
        ("She earns 18 dollars.", "18", "18"),
        ("The rope is 5 cm long", "5", "5"),
        ("The rope is 5cm long", "5", "5"),
        ("It dropped 25%.", "25", "25"),
        ("The answer is -12.", "-12", "-12"),
        ("The answer is −12.", "-12", "-12"),
        ("The answer is 3.75.", "3.75", "3.75"),
        ("The answer is 3/4.", "0.75", "0.75"),
        ("The answer is \\boxed{\\frac{3}{4}}", "0.75", "0.75"),
        ("Thus $\\boxed{1{,}080}$", "1080", "1080"),
        ("#### 72", "72", "72"),
        ("answer: 42", "42", "42"),
        ("**Answer:** 42", "42", "42"),
        ("The final answer is: 42 apples", "42", "42"),
        ("The answer is ４２.", "42", "42"),  # full-width
        ("The answer is ٤٢.", "42", "42"),  # Arabic-Indic
        ("The answer is 42.0", "42", "42"),
        ("The answer is 0.3333333", "1/3", "0.3333333"),
    ],
)
def test_numbers_right(completion, gold, pred):
    assert grade("number", completion, gold) == Grade(pred, True, "ok")


def test_numbers_last_final_answer_wins():
    text = "The answer is 5. Wait, I mis-added: 6 + 1 = 7. The answer is 7. Check: 2 apples."
    assert grade("number", text, "7").correct
    assert not grade("number", text, "5").correct
    assert grade("number", "\\boxed{3} ... #### 4", "4").correct


def test_numbers_fallback_to_last_number():
    assert grade("number", "3 + 4 = 7", "7") == Grade("7", True, "ok")
    assert grade("number", "48/2 = 24 clips", "24").correct


def test_numbers_tolerance():
    assert not grade("number", "The answer is 0.333", "1/3").correct
    assert grade("number", "The answer is 1000000.5", "1000000").correct  # 5e-7 relative
    assert not grade("number", "The answer is 1000002", "1000000").correct


def test_numbers_unparsed():
    assert grade("number", "I do not know.", "5") == Grade("", False, "unparsed")
    assert grade("number", "", "5").status == "unparsed"
    assert grade("number", "The answer is \\boxed{12", "12").status == "unparsed"


@pytest.mark.parametrize(
    "completion",
    [
        "The answer is 1e400.",
        "The answer is " + "9" * 500 + ".",
        "The answer is " + "9" * 5000 + ".",
        "The answer is 1e999999999.",
        "The answer is 1e-400.",
    ],
)
def test_numbers_huge_never_crash_or_match(completion):
    result = grade("number", completion, "1e308")
    assert not result.correct
    assert grade("number", completion, "1").correct is False


def test_huge_numbers_compared_exactly():
    big = "9" * 500
    assert grade("number", f"The answer is {big}.", big).correct
    assert not grade("number", f"The answer is {big}8.", big).correct
    assert grade("number", "The answer is 1e400.", "1" + "0" * 400).correct


def test_number_helpers():
    assert parse_number("1,080") == 1080 and parse_number("51.0") == 51
    assert parse_number("-3/4") == parse_number("-0.75")
    assert parse_number("no") is None and parse_number("1 2") is None
    assert [canonical(parse_number(x)) for x in ("2.50", "1/3", "-0.125", "7")] == [
        "2.5",
        "1/3",
        "-0.125",
        "7",
    ]


@pytest.mark.parametrize(
    ("completion", "pred"),
    [
        ("Yes.", "yes"),
        ("**No**", "no"),
        ("the answer is yes", "yes"),
        ("So, the answer is: **No**.", "no"),
        ("Some say yes, others say no. Weighing it, the answer is no.", "no"),
        ("No one knows for sure, but yes, it could. The answer is yes.", "yes"),
        ("Penguins cannot fly.\nNo", "no"),
        ("Yes, because water is wet.", "yes"),
        ("The answer is true.", "yes"),
        ("\\boxed{no}", "no"),
        ("The answer is yes. Hmm, on reflection the answer is no.", "no"),
    ],
)
def test_yes_no(completion, pred):
    assert grade("yes_no", completion, pred) == Grade(pred, True, "ok")
    other = "no" if pred == "yes" else "yes"
    assert not grade("yes_no", completion, other).correct


def test_yes_no_unparsed_on_prose():
    assert grade("yes_no", "There is no evidence either way.", "no").status == "unparsed"
    assert grade("yes_no", "", "yes").status == "unparsed"


@pytest.mark.parametrize(
    ("completion", "pred"),
    [
        ("(B)", "B"),
        ("B.", "B"),
        ("answer is b", "B"),
        ("**C**", "C"),
        ("The answer is (D) mall.", "D"),
        ("The answer is: E", "E"),
        ("The answer is a bank.", "A"),
        ("The answer is library.", "B"),
        ("The answer is New York.", "E"),
        ("department store", "C"),
        ("Option (A) is tempting but wrong. The answer is (B).", "B"),
        ("\\boxed{C}", "C"),
        ("The answer is (b).", "B"),
    ],
)
def test_choice(completion, pred):
    assert grade("choice", completion, pred, CHOICES) == Grade(pred, True, "ok")
    assert not grade("choice", completion, "A" if pred != "A" else "B", CHOICES).correct


def test_choice_unparsed():
    assert grade("choice", "I am not sure.", "A", CHOICES).status == "unparsed"
    assert grade("choice", "The answer is a mystery to me.", "A", CHOICES).status == "unparsed"
    assert grade("choice", "The answer is (F).", "A", CHOICES).status == "unparsed"


def test_unknown_answer_type_and_bad_gold():
    with pytest.raises(ValueError, match="answer_type"):
        grade_inline("essay", "x", "y")
    with pytest.raises(ValueError, match="not a number"):
        grade("number", "The answer is 3.", "three")
