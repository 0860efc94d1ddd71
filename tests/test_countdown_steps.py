"""The countdown grader checks the work (`task.check_steps`): every generated solution passes,
every solution with one bad step fails, and no text makes it raise."""

import random
from collections import Counter
from fractions import Fraction
from types import SimpleNamespace

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sps.config import GradingConfig
from sps.tasks import countdown as cd
from sps.tasks.data import grade_row, grade_rows, row_reward

NUMS, TARGET = (9, 7, 2), 32
RIGHT = "9+7=16\n16*2=32\nAnswer: (9+7)*2\n"


@st.composite
def problems(draw) -> cd.Problem:
    """A random solvable problem of 2 to 4 numbers (any target the numbers can make)."""
    count, max_number = draw(st.integers(2, 4)), draw(st.integers(1, 12))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    p = cd.random_problem(rng, count, max_number, max_target=10**6, min_solutions=1)
    assume(p is not None)
    return p


@settings(max_examples=60, deadline=None)
@given(problems())
def test_every_solution_in_every_step_order_passes(p):
    for expr, paths in p.solutions().items():
        for path in paths:
            assert cd.grade(cd.format_completion(path), p.numbers, p.target) == (expr, True)


def _value(a: int, op: str, b: int) -> Fraction:
    """The slow, obvious a op b (b != 0 for /)."""
    if op == "/":
        return Fraction(a, b)
    return Fraction({"+": a + b, "-": a - b, "*": a * b}[op])


def _pool_before(numbers, steps, i) -> Counter:
    """The multiset of numbers available before step i of a correct path."""
    pool = Counter(numbers)
    for s in steps[:i]:
        pool -= Counter([s.a, s.b])
        pool[s.result] += 1
    return pool


def _break(path: cd.Path, numbers, i: int, kind: str, delta: int) -> str:
    """The path's completion with step i broken in one way only: a false operator (same
    numbers, so only the arithmetic is wrong), a false result, a number that is not
    available, one used again, the step repeated, or the last step left out."""
    steps, s = list(path.steps), path.steps[i]
    pool = _pool_before(numbers, steps, i)
    if kind == "false_op":
        wrong = [op for op in cd.OPS if op == "/" and s.b == 0 or _value(s.a, op, s.b) != s.result]
        steps[i] = cd.Step(s.a, wrong[abs(delta) % len(wrong)], s.b, s.result)
    elif kind == "false_result":
        assume(s.result + delta >= 0)  # a negative result is no step line at all
        steps[i] = cd.Step(s.a, s.op, s.b, s.result + delta)
    elif kind == "unavailable":  # a number larger than any in play
        x = max([*numbers, *(v for t in steps for v in (t.a, t.b, t.result))]) + abs(delta)
        steps[i] = cd.Step(x, "+", s.b, x + s.b)
    elif kind == "reused":  # a number an earlier step consumed, or this step's a twice
        gone = [v for t in steps[:i] for v in (t.a, t.b) if pool[v] == 0]
        if gone:
            steps[i] = cd.Step(gone[0], "+", s.b, gone[0] + s.b)
        else:
            assume(pool[s.a] == 1)
            steps[i] = cd.Step(s.a, "+", s.a, 2 * s.a)
    elif kind == "repeated":  # one more step than the numbers allow
        steps.insert(i, s)
    else:  # dropped: all steps true, but two numbers are left
        steps.pop()
    return cd.format_completion(cd.Path(tuple(steps), path.expr, path.value))


@settings(max_examples=300, deadline=None)
@given(
    problems(),
    st.data(),
    st.sampled_from(["false_op", "false_result", "unavailable", "reused", "repeated", "dropped"]),
    st.integers(-50, 50).filter(bool),
)
def test_one_bad_step_fails(p, data, kind, delta):
    expr = data.draw(st.sampled_from(sorted(p.solutions())))
    path = data.draw(st.sampled_from(p.solutions()[expr]))
    i = data.draw(st.integers(0, len(path.steps) - 1))
    bad = _break(path, p.numbers, i, kind, delta)
    assert cd.grade(bad, p.numbers, p.target) == (expr, False), bad
    # the answer line is still right: the steps alone make it wrong
    assert cd.grade(bad, p.numbers, p.target, check_steps=False) == (expr, True)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300), st.booleans())
def test_any_text_never_raises(text, check):
    pred, ok = cd.grade(text, (1, 2, 3, 4), 10, check_steps=check)
    assert isinstance(pred, str) and isinstance(ok, bool)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789+-*/=() \nAnswer:", max_size=200))
def test_step_like_soup_never_raises(text):
    pred, ok = cd.grade(text, (1, 2, 3, 4), 10)
    assert isinstance(pred, str) and isinstance(ok, bool)


def test_false_step_before_a_correct_answer_is_wrong():
    assert cd.grade(RIGHT, NUMS, TARGET) == ("(9+7)*2", True)
    for gamed in [
        "9+7=54\n16*2=32\nAnswer: (9+7)*2\n",
        "9*7=16\n16*2=32\nAnswer: (9+7)*2\n",  # only the arithmetic is false
    ]:
        assert cd.grade(gamed, NUMS, TARGET) == ("(9+7)*2", False)
        assert cd.grade(gamed, NUMS, TARGET, check_steps=False) == ("(9+7)*2", True)  # opt-out


def test_what_the_work_must_look_like():
    wrong = [
        "Answer: (9+7)*2\n",  # no steps
        "9+7=16\nAnswer: (9+7)*2\n",  # too few: 16 and 2 are left
        "Let me think.\n9+7=16\n16*2=32\nAnswer: (9+7)*2\n",  # prose is not a step
        RIGHT + "9+7=16\n",  # nothing may follow the answer
        "Answer: 1\n" + RIGHT,  # an earlier answer line is not a step
        "9+7=16\n16*2=32\nAnswer: 9*2+7\n",  # true steps, wrong answer line
        "9*2=18\n18+7=25\nAnswer: (9+7)*2\n",  # true steps to another value
        "9/2=4\n7*4=28\nAnswer: (9+7)*2\n",  # 9/2 is 9/2, not 4
        "9-7=2\n2/0=0\nAnswer: (9+7)*2\n",  # division by zero is never true
        "16*2=32\nAnswer: (9+7)*2\n",  # 16 is not given
    ]
    for text in wrong:
        assert cd.grade(text, NUMS, TARGET) == (cd.extract_answer(text), False), text
    # spaces and blank lines carry no claim; operand order is free
    assert cd.grade("\n 7 + 9 = 16 \n\n2*16=32\n  Answer:  2*(7+9)  \n\n", NUMS, TARGET)[1]
    assert cd.grade("9+7=16\n16*2=32\n", NUMS, TARGET) == ("", False)  # unparsed
    # equal numbers: each copy is consumed once
    assert cd.grade("3*3=9\n9-3=6\nAnswer: 3*3-3\n", (3, 3, 3), 6)[1]
    assert not cd.grade("3*3=9\n9-3=6\n6-3=3\nAnswer: 3*3-3\n", (3, 3, 3), 6)[1]


def test_the_setting_reaches_every_grading_path():
    row = SimpleNamespace(bench="countdown", id="c", numbers=[9, 7, 2], target=32)
    gamed = "9+7=54\n16*2=32\nAnswer: (9+7)*2\n"
    texts = [RIGHT, gamed, "Answer: (9+7)*2", "no answer", "x" * 51]
    checked, lax = GradingConfig(max_chars=50), GradingConfig(check_steps=False, max_chars=50)
    assert grade_rows([row] * 5, texts, checked) == [
        ("(9+7)*2", True, "ok"),
        ("(9+7)*2", False, "ok"),  # it has an answer: ok, and wrong
        ("(9+7)*2", False, "ok"),
        ("", False, "unparsed"),
        ("", False, "too_long"),
    ]
    assert [c for _, c, _ in grade_rows([row] * 5, texts, lax)] == [True, True, True, False, False]
    assert [grade_row(row, t, checked)[1] for t in texts] == [True, False, False, False, False]
    assert [row_reward([row], lax)(0, t) for t in texts] == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert [row_reward([row], checked)(0, t) for t in texts] == [1.0, 0.0, 0.0, 0.0, 0.0]
