"""Graders against real benchmark rows (../shared/benchmarks, skipped where absent).

Per benchmark, at least 20 phrasing families, each a small function (row, answer) -> completion,
applied to the benchmark's rows (a fixed-seed subsample of at most ROWS) with an answer that is
the row's gold ("right" families: graded right on >= 99.5% of the rows), or a close-wrong one
(off by one, 1,450,001 for 1450000, the other letter or yes/no, a near expression, another
problem's gold) or a mention of the gold before a different final answer ("wrong" families:
graded right on <= 0.5%). Rows a family cannot use (no digit to change, equal golds) are
left out of its n. Run with -s to see the table: benchmark, family, expected, n, graded right.
"""

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from sps.tasks.bench.schemas import ANSWER_TYPES, READERS
from sps.tasks.grading import grade_many, mathans
from sps.tasks.grading.numbers import canonical, parse_number, plain_number

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
FILES = {
    "gsm8k": "gsm8k/train.jsonl",
    "math": "math500/dev.jsonl",
    "svamp": "svamp/dev.jsonl",
    "strategyqa": "strategyqa/train.jsonl",
    "commonsense_qa": "commonsense_qa/dev.jsonl",
}
ROWS = 400  # rows per benchmark (fixed-seed subsample), so the test stays near a minute
RIGHT_MIN, WRONG_MAX = 0.995, 0.005


def load(bench: str) -> list[dict]:
    """Rows read through the loader's schema readers, with the raw fields kept as `raw`."""
    path = SHARED / FILES[bench]
    if not path.is_file():
        pytest.skip(f"{path} not present")
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        raw = json.loads(line)
        row = READERS[bench](raw)
        rows.append({**row, "raw": raw, "answer_type": ANSWER_TYPES[bench]})
        rows[-1].setdefault("choices", None)
    if len(rows) > ROWS:
        rows = random.Random(0).sample(rows, ROWS)
    for row, other in zip(rows, rows[1:] + rows[:1], strict=True):
        row["other"] = other["gold"]  # another problem's gold
    return rows


# ---------------------------------------------------------------- answers a family states


def gold(row):
    return row["gold"]


def other(row):
    """Another problem's gold, when it is a different answer."""
    kind, a, b = row["answer_type"], row["gold"], row["other"]
    if kind == "number":
        return None if parse_number(a) == parse_number(b) else b
    if kind == "math":
        same = mathans.quick_verdict(a, b)
        return None if same or (same is None and mathans.verify_answer(a, b)) else b
    return None if a.lower() == b.lower() else b


def near(row):
    """The closest wrong answer: +1, the other yes/no, the next letter, a digit changed."""
    kind, g = row["answer_type"], row["gold"]
    if kind == "number":
        return canonical(parse_number(g) + 1)
    if kind == "yes_no":
        return "no" if g == "yes" else "yes"
    if kind == "choice":
        labels = [c[0] for c in row["choices"]]
        return labels[(labels.index(g) + 1) % len(labels)]
    value = plain_number(g)
    if value is not None and value.denominator == 1:
        return canonical(value + 1)
    digit = next((i for i, ch in enumerate(g) if ch.isdigit()), None)
    if digit is None:
        return None
    return g[:digit] + str((int(g[digit]) + 1) % 10) + g[digit + 1 :]


def times10(row):
    return canonical(parse_number(row["gold"]) * 10)


def plus_half(row):
    return canonical(parse_number(row["gold"]) + Fraction(1, 2))


def negated(row):
    value = plain_number(row["gold"])
    return None if not value else canonical(-value)


def invented(row) -> str:
    """A base model going on to invent the next exemplar, answered with another gold."""
    other = row["other"]
    said = {"math": f"$\\boxed{{{other}}}$", "choice": f"({other})"}.get(row["answer_type"], other)
    return f"\nQuestion: And what comes next?\nAnswer: Let me see. The answer is {said}."


# ---------------------------------------------------------------- number phrasings


def num(answer: str, delta: int = 0) -> Fraction:
    return parse_number(answer) + delta


def commas(answer) -> str:
    value = answer if isinstance(answer, Fraction) else parse_number(answer)
    return f"{value.numerator:,}" if value.denominator == 1 else canonical(value)


def steps(row) -> str:
    """The row's own worked steps: GSM8K's solution (calculator notes dropped), SVAMP's
    equation, or a generic line."""
    raw = row["raw"]
    if "answer" in raw and "####" in str(raw["answer"]):
        lines = str(raw["answer"]).rsplit("####", 1)[0].strip()
        return "".join(part.split(">>")[-1] for part in lines.split("<<"))
    if "Equation" in raw:
        return f"We compute {raw['Equation'].strip()}."
    return "Let me work through the quantities step by step."


def c(x) -> str:
    return canonical(x if isinstance(x, Fraction) else parse_number(x))


NUMBER_FAMILIES = {
    "answer_is": ("right", gold, lambda r, a: f"{steps(r)}\nThe answer is {a}."),
    "answer_is_commas": ("right", gold, lambda r, a: f"{steps(r)}\nThe answer is {commas(a)}."),
    "dollars": ("right", gold, lambda r, a: f"So the total is ${commas(a)}.\nThe answer is ${a}."),
    "hash": ("right", gold, lambda r, a: f"{steps(r)}\n#### {a}"),
    "boxed": ("right", gold, lambda r, a: f"{steps(r)}\nThe final answer is $\\boxed{{{a}}}$."),
    "minerva": (
        "right",
        gold,
        lambda r, a: f"{steps(r)}\nFinal Answer: The final answer is ${a}$. I hope it is correct.",
    ),
    "bold_answer": ("right", gold, lambda r, a: f"{steps(r)}\n\n**Answer:** {a}"),
    "answer_equals": ("right", gold, lambda r, a: f"Answer = {a}"),
    "expr_equals": (
        "right",
        gold,
        lambda r, a: f"The answer is {c(num(a, -3))} + 3 = {a}.",
    ),
    "paren_expr": ("right", gold, lambda r, a: f"The answer is ( {c(num(a, 2))} - 2 ) = {a}."),
    "times_expr": ("right", gold, lambda r, a: f"The answer is 2 * {c(num(a) / 2)} = {a}."),
    "units": ("right", gold, lambda r, a: f"The answer is {a} dollars per week."),
    "no_phrase_last_equation": (
        "right",
        gold,
        lambda r, a: (
            f"She pours out {c(num(a, -6))} + 6 = {a} liters of water out of the "
            f"{c(num(a, 9))} liters."
        ),
    ),
    "no_phrase_last_sentence": (
        "right",
        gold,
        lambda r, a: f"{steps(r).split('####')[0]}\nSo altogether that makes {a} in the end.",
    ),
    "wrong_then_right": (
        "right",
        gold,
        lambda r, a: (
            f"The answer is {c(num(a, 5))}. Wait, I made a mistake: {c(num(a, -1))} + 1 "
            f"= {a}. The answer is {a}."
        ),
    ),
    "not_then_right": ("right", gold, lambda r, a: f"The answer is not {c(num(a, 1))}; it is {a}."),
    "newline_bold": ("right", gold, lambda r, a: f"{steps(r)}\nThe answer is:\n\n**{a}**"),
    "check_after": (
        "right",
        gold,
        lambda r, a: f"The answer is {a}. Check: 2 + 2 = 4 and 4 * 1 = 4, consistent.",
    ),
    "latex_text": ("right", gold, lambda r, a: f"The answer is $\\text{{{a}}}$ apples."),
    "fullwidth": (
        "right",
        gold,
        lambda r, a: (
            "The answer is " + a.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        ),
    ),
    "boxed_then_hope": (
        "right",
        gold,
        lambda r, a: f"\\boxed{{{a}}}\n\nI hope the answer is correct.",
    ),
    "follow_up_question": ("right", gold, lambda r, a: f"The answer is {a}.\n{invented(r)}"),
    "off_by_one": ("wrong", near, lambda r, a: f"{steps(r)}\nThe answer is {a}."),
    "off_by_one_commas": ("wrong", near, lambda r, a: f"The answer is {commas(a)}."),
    "other_gold": ("wrong", other, lambda r, a: f"{steps(r)}\nThe answer is {a}."),
    "expr_gold_then_wrong": (
        "wrong",
        near,
        lambda r, a: f"The answer is {r['gold']} + 1 = {a}.",
    ),
    "not_gold": ("wrong", near, lambda r, a: f"The answer is not {r['gold']}; it is {a}."),
    "gold_then_final_wrong": (
        "wrong",
        near,
        lambda r, a: f"The answer is {r['gold']}. Wait, I forgot one. The answer is {a}.",
    ),
    "gold_then_boxed_wrong": (
        "wrong",
        near,
        lambda r, a: f"We first get {r['gold']}, but adding the last one gives $\\boxed{{{a}}}$.",
    ),
    "gold_last_number_only": (
        "wrong",
        near,
        lambda r, a: (
            f"She pours out {c(num(a, -6))} + 6 = {a} liters of water out of the "
            f"{r['gold']} liters."
        ),
    ),
    "ten_times": ("wrong", times10, lambda r, a: f"The answer is {a}."),
    "plus_half": ("wrong", plus_half, lambda r, a: f"The answer is {a}."),
    "negated": ("wrong", negated, lambda r, a: f"The answer is {a}."),
    "hash_wrong": ("wrong", near, lambda r, a: f"{steps(r)}\n#### {a}"),
}


# ---------------------------------------------------------------- yes/no phrasings


def facts(row) -> str:
    """The row's own supporting facts as the reasoning (StrategyQA ships them)."""
    found = row["raw"].get("facts") or ["Let me think about the facts involved."]
    return " ".join(str(f).strip().rstrip(".") + "." for f in found)


def opp(answer: str) -> str:
    return "no" if answer == "yes" else "yes"


YES_NO_FAMILIES = {
    "answer_is": ("right", gold, lambda r, a: f"{facts(r)}\nThe answer is {a}."),
    "therefore": ("right", gold, lambda r, a: f"{facts(r)} Therefore, {a}."),
    "so_comma": ("right", gold, lambda r, a: f"{facts(r)} So, {a}."),
    "answer_colon_bold": ("right", gold, lambda r, a: f"{facts(r)}\n\n**Answer:** {a.title()}"),
    "boxed": ("right", gold, lambda r, a: f"{facts(r)}\n\\boxed{{{a}}}"),
    "boxed_text": ("right", gold, lambda r, a: f"$\\boxed{{\\text{{{a.title()}}}}}$"),
    "minerva": (
        "right",
        gold,
        lambda r, a: f"{facts(r)}\nFinal Answer: The final answer is {a}. I hope it is correct.",
    ),
    "alone_line": ("right", gold, lambda r, a: f"{facts(r)}\n{a.title()}"),
    "lead": ("right", gold, lambda r, a: f"{a.title()}, because: {facts(r)}"),
    "bold_alone": ("right", gold, lambda r, a: f"{facts(r)}\n\n**{a.title()}**"),
    "true_false": (
        "right",
        gold,
        lambda r, a: f"{facts(r)}\nThe answer is {'true' if a == 'yes' else 'false'}.",
    ),
    "in_conclusion": ("right", gold, lambda r, a: f"{facts(r)}\nIn conclusion, {a}, as shown."),
    "opposite_then_final": (
        "right",
        gold,
        lambda r, a: (
            f"At first glance the answer is {opp(a)}. But {facts(r)} So the answer is {a}."
        ),
    ),
    "prose_noise": (
        "right",
        gold,
        lambda r, a: (
            f"There is no simple rule here, and no one source settles it. {facts(r)} "
            f"So the answer is {a}."
        ),
    ),
    "hash": ("right", gold, lambda r, a: f"{facts(r)}\n#### {a}"),
    "not_then": ("right", gold, lambda r, a: f"The answer is not {opp(a)}; it is {a}."),
    "answer_is_colon": (
        "right",
        gold,
        lambda r, a: f"{facts(r)} Thus, the answer is: {a.title()}.",
    ),
    "follow_up_question": ("right", gold, lambda r, a: f"So the answer is {a}.\n{invented(r)}"),
    "opposite": ("wrong", near, lambda r, a: f"{facts(r)}\nThe answer is {a}."),
    "opposite_therefore": ("wrong", near, lambda r, a: f"{facts(r)} Therefore, {a}."),
    "other_gold": ("wrong", other, lambda r, a: f"{facts(r)}\nThe answer is {a}."),
    "gold_then_final_opposite": (
        "wrong",
        near,
        lambda r, a: f"The answer is {r['gold']}. On reflection, {facts(r)} the answer is {a}.",
    ),
    "not_gold": ("wrong", near, lambda r, a: f"The answer is not {r['gold']}; it is {a}."),
    "lead_gold_then_final_opposite": (
        "wrong",
        near,
        lambda r, a: f"{r['gold'].title()}, it seems at first. {facts(r)} Therefore, {a}.",
    ),
    "gold_in_prose_only": (
        "wrong",
        gold,
        lambda r, a: f"Some would say {a} and others would not; {facts(r)} I cannot decide.",
    ),
}


# ---------------------------------------------------------------- choice phrasings


def text_of(row, letter: str) -> str:
    return next(ch for ch in row["choices"] if ch.startswith(f"{letter}. "))[3:]


def listing(row) -> str:
    return "\n".join(f"{ch[0]}: {ch[3:]} - possible." for ch in row["choices"])


CHOICE_FAMILIES = {
    "answer_is_paren": ("right", gold, lambda r, a: f"{listing(r)}\nThe answer is ({a})."),
    "answer_is_letter": ("right", gold, lambda r, a: f"The answer is {a}."),
    "answer_is_option": ("right", gold, lambda r, a: f"The answer is option {a}."),
    "correct_option": ("right", gold, lambda r, a: f"The correct option is {a}."),
    "correct_answer_text": (
        "right",
        gold,
        lambda r, a: f"The correct answer is ({a}) {text_of(r, a)}.",
    ),
    "answer_colon": ("right", gold, lambda r, a: f"Answer: {a}"),
    "bold_last_line": ("right", gold, lambda r, a: f"{listing(r)}\n**{a}**"),
    "boxed": ("right", gold, lambda r, a: f"So the answer is $\\boxed{{{a}}}$."),
    "choice_text": ("right", gold, lambda r, a: f"The answer is {text_of(r, a)}."),
    "bare_letter": ("right", gold, lambda r, a: f"({a})"),
    "bare_letter_text": ("right", gold, lambda r, a: f"{a}. {text_of(r, a)}"),
    "declared": ("right", gold, lambda r, a: f"{listing(r)}\n{a} is the correct answer."),
    "best_choice": ("right", gold, lambda r, a: f"Therefore, the best choice is {a}."),
    "minerva": (
        "right",
        gold,
        lambda r, a: f"Final Answer: The final answer is {a}. I hope it is correct.",
    ),
    "list_then_final": ("right", gold, lambda r, a: f"{listing(r)}\nThe answer is {a}."),
    "other_then_final": (
        "right",
        gold,
        lambda r, a: f"Option ({near(r)}) seems possible, but the answer is ({a}) {text_of(r, a)}.",
    ),
    "not_then": ("right", gold, lambda r, a: f"The answer is not {near(r)}; it is {a}."),
    "lowercase": ("right", gold, lambda r, a: f"the answer is ({a.lower()})"),
    "chosen": ("right", gold, lambda r, a: f"{listing(r)}\nI would choose {a}."),
    "follow_up_question": ("right", gold, lambda r, a: f"The answer is ({a}).\n{invented(r)}"),
    "wrong_letter": ("wrong", near, lambda r, a: f"{listing(r)}\nThe answer is ({a})."),
    "other_gold": ("wrong", other, lambda r, a: f"The answer is {a}."),
    "gold_then_final_other": (
        "wrong",
        near,
        lambda r, a: f"The answer is ({r['gold']}). Hmm, actually the answer is ({a}).",
    ),
    "unfinished_list": (
        "wrong",
        near,
        lambda r, a: f"{r['gold']}: {text_of(r, r['gold'])} - possible but unlikely.\n{a}",
    ),
    "not_gold": ("wrong", near, lambda r, a: f"The answer is not {r['gold']}; it is {a}."),
    "wrong_text": ("wrong", near, lambda r, a: f"The answer is {text_of(r, a)}."),
    "list_only": ("wrong", gold, lambda r, a: listing(r)),
}


# ---------------------------------------------------------------- MATH phrasings


def solution(row) -> str:
    return str(row["raw"].get("solution", "Let me work through it."))


def without_box(row) -> str:
    return solution(row).replace("\\boxed", "")


MATH_FAMILIES = {
    "solution_as_written": ("right", gold, lambda r, a: solution(r)),
    "boxed": ("right", gold, lambda r, a: f"Putting it together, the result is $\\boxed{{{a}}}$."),
    "boxed_display": ("right", gold, lambda r, a: f"{without_box(r)}\n\\[\n\\boxed{{{a}}}\n\\]"),
    "fbox": ("right", gold, lambda r, a: f"$\\fbox{{{a}}}$"),
    "minerva": (
        "right",
        gold,
        lambda r, a: (
            f"{solution(r)}\nFinal Answer: The final answer is ${a}$. I hope it is correct."
        ),
    ),
    "minerva_no_box": (
        "right",
        gold,
        lambda r, a: (
            f"{without_box(r)}\nFinal Answer: The final answer is ${a}$. I hope it is correct."
        ),
    ),
    "answer_is_dollar": ("right", gold, lambda r, a: f"{without_box(r)}\nThe answer is ${a}$."),
    "answer_is_dollar_which": (
        "right",
        gold,
        lambda r, a: f"The answer is ${a}$, which completes the problem.",
    ),
    "answer_colon_display": ("right", gold, lambda r, a: f"Answer: $${a}$$"),
    "paren_math": ("right", gold, lambda r, a: f"So the answer is \\({a}\\)."),
    "double_braces": ("right", gold, lambda r, a: f"\\boxed{{{{{a}}}}}"),
    "dfrac": ("right", gold, lambda r, a: "$\\boxed{" + a.replace("\\frac", "\\dfrac") + "}$"),
    "degree_sign": ("right", gold, lambda r, a: "$\\boxed{" + a.replace("^\\circ", "°") + "}$"),
    "wrong_box_then_right_box": (
        "right",
        gold,
        lambda r, a: f"So $\\boxed{{{near(r) or 'x'}}}$. Wait, I dropped a term: $\\boxed{{{a}}}$.",
    ),
    "phrase_then_box": (
        "right",
        gold,
        lambda r, a: (
            f"I first thought the answer is ${near(r) or 'x'}$, but the answer is $\\boxed{{{a}}}$."
        ),
    ),
    "boxed_then_hope": (
        "right",
        gold,
        lambda r, a: f"$\\boxed{{{a}}}$\n\nI hope the answer is correct.",
    ),
    "final_answer_boxed": ("right", gold, lambda r, a: f"The final answer is $\\boxed{{{a}}}$"),
    "last_line_math": ("right", gold, lambda r, a: f"{without_box(r)}\nTherefore we get ${a}$."),
    "plain_answer_is": ("right", gold, lambda r, a: f"The answer is {a}."),
    "follow_up_question": (
        "right",
        gold,
        lambda r, a: f"The answer is $\\boxed{{{a}}}$.\n{invented(r)}",
    ),
    "near": ("wrong", near, lambda r, a: f"Putting it together, the result is $\\boxed{{{a}}}$."),
    "near_minerva": (
        "wrong",
        near,
        lambda r, a: f"Final Answer: The final answer is ${a}$. I hope it is correct.",
    ),
    "other_gold": ("wrong", other, lambda r, a: f"$\\boxed{{{a}}}$"),
    "minerva_expression": (
        "wrong",
        gold,
        lambda r, a: f"Final Answer: The final answer is $8n^2 + 4n + {a}$. I hope it is correct.",
    ),
    "gold_box_then_other_box": (
        "wrong",
        near,
        lambda r, a: f"So $\\boxed{{{r['gold']}}}$. Wait, I dropped a term: $\\boxed{{{a}}}$.",
    ),
    "gold_phrase_then_box": (
        "wrong",
        near,
        lambda r, a: (
            f"I first thought the answer is ${r['gold']}$, but the answer is $\\boxed{{{a}}}$."
        ),
    ),
    "negated": ("wrong", negated, lambda r, a: f"$\\boxed{{{a}}}$"),
    "unclosed_box": (
        "wrong",
        gold,
        lambda r, a: f"Putting it together, the result is $\\boxed{{{a}",
    ),
}

FAMILIES = {
    "number": NUMBER_FAMILIES,
    "yes_no": YES_NO_FAMILIES,
    "choice": CHOICE_FAMILIES,
    "math": MATH_FAMILIES,
}


def applies(name: str, row: dict) -> bool:
    """Families that only make sense for some rows (a LaTeX feature the gold must have)."""
    if name == "dfrac":
        return "\\frac" in row["gold"]
    if name == "degree_sign":
        return "^\\circ" in row["gold"]
    if name == "choice_text":  # a text two choices share cannot name one of them
        texts = [ch[3:].lower() for ch in row["choices"]]
        return len(set(texts)) == len(texts)
    if name in ("plain_answer_is", "answer_is_dollar_which"):
        return not any(s in row["gold"] for s in (". ", "\n", "$"))
    return True


@pytest.mark.parametrize("bench", list(FILES))
def test_phrasing_families(bench):
    rows = load(bench)
    families = FAMILIES[ANSWER_TYPES[bench]]
    assert len(families) >= 20
    cases, texts = [], []
    for name, (expect, answer_of, phrase) in families.items():
        for row in rows:
            answer = answer_of(row) if applies(name, row) else None
            if answer is not None:
                cases.append((name, expect, row, answer))
                texts.append(phrase(row, answer))
    grades = grade_many([c[2] for c in cases], texts, timeout=10, workers=2)
    table, failures = [], []
    for name, (expect, _, _) in families.items():
        got = [
            (case, text, g)
            for case, text, g in zip(cases, texts, grades, strict=True)
            if case[0] == name
        ]
        share = sum(g.correct for _, _, g in got) / max(1, len(got))
        table.append(f"{bench:15s} {name:30s} {expect:5s} n={len(got):4d} right={share:7.2%}")
        ok = share >= RIGHT_MIN if expect == "right" else share <= WRONG_MAX
        if not got or not ok:
            bad = [(t[-160:], case[3], g) for case, t, g in got if g.correct != (expect == "right")]
            failures.append((name, expect, len(got), share, bad[:3]))
    print("\n" + "\n".join(table))
    assert not failures, failures
