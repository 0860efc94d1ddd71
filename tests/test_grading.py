"""Graders for numbers, yes/no and multiple choice on real-looking and adversarial completions.

Each family is a table of completions as models write them (lm-evaluation-harness's gsm8k
"The answer is" and "####" formats, Minerva's "Final Answer: ... I hope it is correct.",
Qwen-style \\boxed{}, chat-model bold and self-corrections), with the answer that must be read.
"""

import pytest

from sps.tasks.grading import GRADER_VERSION, STATUSES, Grade, grade, grade_inline, grade_many
from sps.tasks.grading.numbers import canonical, parse_number, plain_number, same_number

CHOICES = ["A. bank", "B. library", "C. department store", "D. mall", "E. new york"]

# (completion, gold): each must grade correct, and wrong against a nearby gold.
NUMBER_FAMILIES = {
    "answer_is": [
        ("Natalia sold 48/2 = 24 clips in May.\n48 + 24 = 72\nThe answer is 72.", "72"),
        ("So the total is 1,234 dollars. The answer is 1,234.", "1234"),
        ("The answer is $18.", "18"),
        ("The answer is -12.", "-12"),
        ("The answer is −12.", "-12"),
        ("The answer is 3.75.", "3.75"),
        ("So the answer is 42 apples", "42"),
        ("Therefore, the answer is: 42", "42"),
        ("The answer is ４２.", "42"),  # full-width
        ("The answer is ٤٢.", "42"),  # Arabic-Indic
        ("The answer is 42.0", "42"),
        ("The answer is $18.00.", "18"),
        ("The answer is 25%.", "25"),
        ("The answer is 3/4.", "0.75"),
        ("The answer is 1\u2009450\u202f000.", "1450000"),  # thin spaces as thousands separators
        ("The answer is:\n\n**42**", "42"),
        ("The answer would be 5 hours.", "5"),
    ],
    "answer_colon": [
        ("answer: 42", "42"),
        ("**Answer:** 42", "42"),
        ("Answer = 18", "18"),
        ("Final answer: 7 cookies", "7"),
        ("The final answer is: 42 apples", "42"),
    ],
    "hash": [
        ("She has 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18", "18"),
        ("#### 72", "72"),
        ("####1,080", "1080"),
    ],
    "boxed": [
        ("The answer is \\boxed{\\frac{3}{4}}", "0.75"),
        ("Thus $\\boxed{1{,}080}$", "1080"),
        ("Therefore, the final answer is $\\boxed{18}$.", "18"),
        ("So she earns \\boxed{\\$18} per day.", "18"),
        ("\\boxed{\\text{18 dollars}}", "18"),
        ("$\\fbox{7}$", "7"),
    ],
    "minerva": [
        ("Final Answer: The final answer is $40$. I hope it is correct.", "40"),
        ("Final Answer: The final answer is 40. I hope it is correct.", "40"),
        ("The final answer is $1,\\!080$. I hope it is correct.", "1080"),
    ],
    "value_after_equals": [
        ("The answer is 9*2 = 18.", "18"),
        ("The answer is ( 6 - 2 ) = 4.", "4"),
        ("The answer is 18 + 1 = 19.", "19"),
        ("The answer is 5 + 4 + 9 = 18 dollars.", "18"),
        ("The answer is: total = 3 * 4 = 12", "12"),
        ("The answer is 6 (since 2 * 3 = 6 and 6 / 2 = 3).", "6"),
    ],
    "not_then_value": [
        ("The answer is not 18; it is 19.", "19"),
        ("The answer is not 18, but 19.", "19"),
    ],
    "final_wins": [
        ("The answer is 5. Wait, I mis-added: 6 + 1 = 7. The answer is 7. Check: 2 apples.", "7"),
        ("First I thought the answer is 12.\nRechecking: 3 * 5 = 15.\nThe answer is 15.", "15"),
        ("\\boxed{3} ... #### 4", "4"),
        ("The answer is 10.\n\nHmm, no: 10 - 2 = 8, so the answer is 8.", "8"),
        ("The answer is 8. I hope the answer is correct.", "8"),
        # a base model inventing the next exemplar: its answer is not this problem's
        (
            "The answer is 18.\n\nQuestion: Tom has 5 apples.\nAnswer: 5 + 1 = 6. The answer is 6.",
            "18",
        ),
    ],
    "no_phrase_last_equation": [
        ("3 + 4 = 7", "7"),
        ("48/2 = 24 clips", "24"),
        ("She pours out 9 + 6 = 15 liters of water out of the 24 liters.", "15"),
        ("Janet has 16 - 3 - 4 = 9 eggs. She sells them for 9 * 2 = $18 per day.", "18"),
        ("Each bag holds 3 * 4 = 12 apples. With 2 bags she has 24 apples.", "24"),
        ("She had 20 dollars and spent 12, so she has 8 dollars left.", "8"),
        ("She earns 18 dollars.", "18"),
        ("The rope is 5cm long", "5"),
        ("It dropped 25%.", "25"),
    ],
}


@pytest.mark.parametrize(
    ("family", "completion", "gold"),
    [(f, c, g) for f, cases in NUMBER_FAMILIES.items() for c, g in cases],
)
def test_number_families(family, completion, gold):
    got = grade("number", completion, gold)
    assert got.correct and got.status == "ok", (family, got)
    near = canonical(parse_number(gold) + 1)
    assert not grade("number", completion, near).correct, family


@pytest.mark.parametrize(
    ("completion", "gold"),
    [
        ("The answer is 18 + 1 = 19.", "18"),
        ("The answer is not 18; it is 19.", "18"),
        ("The answer is 1,450,001.", "1450000"),
        ("The answer is 1450000.5", "1450000"),
        ("The answer is 18. Wait, 9 * 3 = 27. The answer is 27.", "18"),
        ("She pours out 9 + 6 = 15 liters of water out of the 24 liters.", "24"),
        ("The final answer is 18. I hope it is correct.\n\\boxed{19}", "18"),
        ("The answer is 0.333", "1/3"),
        ("The answer is 2.2", "2.25"),
        ("The answer is 180.", "18"),
    ],
)
def test_number_close_wrong(completion, gold):
    assert not grade("number", completion, gold).correct


def test_number_exact_rule():
    assert same_number(parse_number("18.0"), parse_number("18"))
    assert not same_number(parse_number("1,450,001"), parse_number("1450000"))
    assert not same_number(parse_number("1000000.5"), parse_number("1000000"))
    third = parse_number("0.3333333333333333")  # a float's repr, as SVAMP stores it
    assert same_number(parse_number("1/3"), third)
    assert not same_number(parse_number("0.333333"), third)
    assert same_number(parse_number("2.25"), parse_number("9/4"))


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
    assert not grade("number", completion, "1e308").correct
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
    assert plain_number("\\frac{3}{4}") == parse_number("0.75")
    assert plain_number("10,\\!080") == 10080
    assert plain_number("5\\%") is None and plain_number("1, 2") is None
    assert plain_number("2\\sqrt{3}") is None


YES_NO_FAMILIES = {
    "answer_is": [
        ("the answer is yes", "yes"),
        ("So, the answer is: **No**.", "no"),
        ("Thus, the answer is (yes).", "yes"),
        ("The answer is true.", "yes"),
        ("The answer is False.", "no"),
        ("Answer: No", "no"),
        ("The final answer is yes. I hope it is correct.", "yes"),
    ],
    "boxed_hash": [("\\boxed{no}", "no"), ("$\\boxed{\\text{Yes}}$", "yes"), ("#### no", "no")],
    "concluding_word": [
        ("Penguins are birds, and birds can fly... but penguins cannot. Therefore, no.", "no"),
        ("Hydrogen's atomic number is 1. 1 squared is 1. So, yes.", "yes"),
        ("Thus: Yes.", "yes"),
        ("In conclusion, no, they could not have met.", "no"),
        ("Overall, yes — it is possible.", "yes"),
    ],
    "alone": [
        ("Yes.", "yes"),
        ("**No**", "no"),
        ("Penguins cannot fly.\nNo", "no"),
        ("Yes, because water is wet.", "yes"),
        ("No, the Great Wall is not visible from the Moon.", "no"),
    ],
    "final_wins": [
        ("Some say yes, others say no. Weighing it, the answer is no.", "no"),
        ("No one knows for sure, but yes, it could. The answer is yes.", "yes"),
        ("The answer is yes. Hmm, on reflection the answer is no.", "no"),
        ("Yes, at first glance. But Lincoln died in 1865, before film. Therefore, no.", "no"),
        ("The answer is not yes; it is no.", "no"),
        ("The answer is yes.\nNo further checks are needed.", "yes"),
        ("Yes.\n\nQuestion: Is water dry?\nAnswer: No.", "yes"),
    ],
}


@pytest.mark.parametrize(
    ("family", "completion", "pred"),
    [(f, c, p) for f, cases in YES_NO_FAMILIES.items() for c, p in cases],
)
def test_yes_no_families(family, completion, pred):
    assert grade("yes_no", completion, pred) == Grade(pred, True, "ok"), family
    other = "no" if pred == "yes" else "yes"
    assert not grade("yes_no", completion, other).correct, family


@pytest.mark.parametrize(
    "completion",
    [
        "There is no evidence either way.",
        "",
        "No one knows whether it happened.",
        "It depends on yes and no answers.",
        "The answer is unclear.",
    ],
)
def test_yes_no_unparsed_on_prose(completion):
    assert grade("yes_no", completion, "no").status == "unparsed"


CHOICE_FAMILIES = {
    "answer_is": [
        ("The answer is (D) mall.", "D"),
        ("The answer is: E", "E"),
        ("answer is b", "B"),
        ("The answer is (b).", "B"),
        ("The answer is option B.", "B"),
        ("So the answer is choice (C).", "C"),
        ("Answer: B) library", "B"),
        ("The answer is B: library", "B"),
        ("The final answer is C. I hope it is correct.", "C"),
    ],
    "correct_option": [
        ("The correct option is B.", "B"),
        ("Therefore, the best choice is D.", "D"),
        ("The correct answer is (A) bank.", "A"),
        ("B is the correct answer.", "B"),
        ("Option (E) is the best choice here.", "E"),
        ("Banks lend money, not books, so I would choose B.", "B"),
        ("**Answer: B**", "B"),
    ],
    "choice_text": [
        ("The answer is a bank.", "A"),
        ("The answer is library.", "B"),
        ("The answer is New York.", "E"),
        ("department store", "C"),
    ],
    "marked_alone": [
        ("(B)", "B"),
        ("B.", "B"),
        ("**C**", "C"),
        ("B. library", "B"),
        ("People keep books in a library, so:\n**(B)**", "B"),
    ],
    "boxed": [("\\boxed{C}", "C"), ("$\\boxed{\\text{(D)}}$", "D")],
    "final_wins": [
        ("Option (A) is tempting but wrong. The answer is (B).", "B"),
        ("The answer is A. Wait: banks do not lend books. The answer is B.", "B"),
        (
            "A: bank - no.\nB: library - possible.\nC: store - unlikely.\nThe answer is B.",
            "B",
        ),
        ("The answer is not A; it is B.", "B"),
    ],
}


@pytest.mark.parametrize(
    ("family", "completion", "pred"),
    [(f, c, p) for f, cases in CHOICE_FAMILIES.items() for c, p in cases],
)
def test_choice_families(family, completion, pred):
    assert grade("choice", completion, pred, CHOICES) == Grade(pred, True, "ok"), family
    other = "A" if pred != "A" else "B"
    assert not grade("choice", completion, other, CHOICES).correct, family


@pytest.mark.parametrize(
    "completion",
    [
        "I am not sure.",
        "The answer is a mystery to me.",
        "The answer is (F).",
        "B: with brush - possible but unlikely.\nC",  # an unfinished list, not an answer
        "A. bank - no\nB. library - yes\nC",
        "Banks hold money.",
    ],
)
def test_choice_unparsed(completion):
    got = grade("choice", completion, "B", CHOICES)
    assert got.status == "unparsed", got


def test_unknown_answer_type_and_bad_gold():
    with pytest.raises(ValueError, match="answer_type"):
        grade_inline("essay", "x", "y")
    with pytest.raises(ValueError, match="answer_type"):
        grade_many([{"answer_type": "essay", "gold": "1", "choices": None}], ["x"])
    with pytest.raises(ValueError, match="not a number"):
        grade("number", "The answer is 3.", "three")
    with pytest.raises(ValueError, match="not yes/no"):
        grade("yes_no", "yes", "maybe")


@pytest.mark.parametrize(
    ("kind", "gold", "choices"),
    [("number", "5", None), ("yes_no", "yes", None), ("choice", "A", CHOICES)],
)
def test_too_long_before_parsing(kind, gold, choices):
    right = {"number": "The answer is 5.", "yes_no": "Yes.", "choice": "(A)"}[kind]
    long = "x" * 200 + "\nThe answer is " + right
    assert grade(kind, long, gold, choices, max_chars=200) == Grade("", False, "too_long")
    assert grade(kind, long, gold, choices, max_chars=len(long)).correct
    rows = [{"answer_type": kind, "gold": gold, "choices": choices}]
    assert grade_many(rows, [long], max_chars=200)[0].status == "too_long"
    assert grade_inline(kind, right, gold, choices, max_chars=len(right)).correct


def test_version_and_statuses():
    assert GRADER_VERSION and isinstance(GRADER_VERSION, str)
    assert STATUSES == ("ok", "unparsed", "timeout", "too_long")
