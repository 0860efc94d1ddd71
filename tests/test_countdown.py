"""The built-in task: generation invariants and the grader (property tests)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sps.tasks import countdown as cd
from sps.tasks.arith import ParseError, parse_expression

PROBLEMS = cd.generate(seed=7, n=40, count=4, max_number=10, max_target=60, min_solutions=3)


def test_generation_is_seeded_distinct_and_solvable():
    again = cd.generate(seed=7, n=40, count=4, max_number=10, max_target=60, min_solutions=3)
    assert again == PROBLEMS
    assert len({cd.problem_key(p) for p in PROBLEMS}) == len(PROBLEMS)
    for p in PROBLEMS:
        sols = p.solutions()
        assert p.n_solutions == len(sols) >= 3
        for expr in sols:
            assert cd.is_correct(expr, p.numbers, p.target), (p, expr)


def test_exclude_keeps_splits_disjoint():
    other = cd.generate(
        seed=8,
        n=40,
        count=4,
        max_number=10,
        max_target=60,
        min_solutions=3,
        exclude={cd.problem_key(p) for p in PROBLEMS},
    )
    assert not {cd.problem_key(p) for p in other} & {cd.problem_key(p) for p in PROBLEMS}


def test_impossible_request_names_the_keys():
    with pytest.raises(ValueError, match="task.max_number"):
        cd.generate(seed=0, n=50, count=2, max_number=2, max_target=4, min_solutions=1)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PROBLEMS), st.randoms(use_true_random=False))
def test_every_generated_solution_trace_passes(problem, rng):
    completion = cd.correct_trace(problem, rng)
    pred, ok = cd.grade(completion, problem.numbers, problem.target)
    assert ok, (problem, completion)
    # the steps are real arithmetic and end at the target
    *steps, answer = completion.strip().split("\n")
    assert answer == f"Answer: {pred}"
    assert steps[-1].endswith(f"={problem.target}")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PROBLEMS), st.randoms(use_true_random=False), st.booleans())
def test_wrong_traces_fail(problem, rng, check):
    trace = cd.wrong_trace(problem, rng)
    assert not cd.grade(trace, problem.numbers, problem.target, check_steps=check)[1]


def _mutations(expr: str, numbers: tuple[int, ...]) -> list[str]:
    return [
        expr + "+1",  # value changes and an extra number
        expr + "*1",  # value kept, but 1 used beyond the given numbers
        f"({expr})-{numbers[0]}",
        expr.replace("+", "-", 1) if "+" in expr else expr.replace("*", "+", 1),
        expr[: len(expr) // 2],  # truncated
        expr.replace(str(numbers[0]), str(numbers[0] + 11), 1),  # a wrong number
    ]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PROBLEMS), st.randoms(use_true_random=False))
def test_mutated_solutions_fail(problem, rng):
    expr = rng.choice(sorted(problem.solutions()))
    for bad in _mutations(expr, problem.numbers):
        try:
            parsed = parse_expression(bad)
        except ParseError:
            parsed = None
        truly_correct = (
            parsed is not None
            and sorted(parsed.numbers) == sorted(problem.numbers)
            and parsed.value == problem.target
        )
        assert cd.is_correct(bad, problem.numbers, problem.target) == truly_correct
        if bad in (expr + "+1", expr + "*1", f"({expr})-{problem.numbers[0]}"):
            assert not cd.is_correct(bad, problem.numbers, problem.target)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_malformed_text_never_raises(text):
    pred, ok = cd.grade(text, (1, 2, 3, 4), 10)
    assert isinstance(pred, str) and isinstance(ok, bool)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+-*/() ", max_size=120))
def test_expression_soup_never_raises(text):
    assert cd.grade(f"1+1=2\nAnswer: {text}\n", (1, 2, 3, 4), 10)[1] in (True, False)


def test_grader_examples():
    nums = (7, 5, 3, 2)
    assert cd.grade("7-5=2\n2*3=6\n6*2=12\nAnswer: (7-5)*3*2\n", nums, 12) == ("(7-5)*3*2", True)

    def answer_only(text, numbers, target):  # task.check_steps: false reads the answer line
        return cd.grade(text, numbers, target, check_steps=False)[1]

    assert answer_only("Answer: 2*3*(7-5)", nums, 12)
    assert not cd.grade("Answer: 2*3*(7-5)", nums, 12)[1]  # no work shown
    assert not answer_only("Answer: 3*(7-5)", nums, 6)  # 2 unused
    assert not answer_only("Answer: 12", nums, 12)
    assert not answer_only("no answer line", nums, 12)
    # the last answer line wins
    assert answer_only("Answer: 1\nAnswer: (7-5)*3*2", nums, 12)
    assert not answer_only("Answer: (7-5)*3*2\nAnswer: 1", nums, 12)
    # exact rationals: 7/2 * 2 = 7, no float rounding
    assert answer_only("Answer: 7/2*2+5-3", (7, 2, 2, 5, 3), 9)
    assert not answer_only("Answer: 7/(5-5)+3+2", (7, 5, 5, 3, 2), 9)  # division by zero


def test_parser_limits():
    with pytest.raises(ParseError):
        parse_expression("(" * 100 + "1" + ")" * 100)
    with pytest.raises(ParseError):
        parse_expression("9" * 50)
    with pytest.raises(ParseError):
        parse_expression("__import__('os')")
    assert parse_expression("((1+2))*3").value == 9


def test_traces_mix_solutions():
    rng = random.Random(0)
    p = max(PROBLEMS, key=lambda q: q.n_solutions)
    answers = {cd.extract_answer(cd.correct_trace(p, rng)) for _ in range(200)}
    assert len(answers) >= 3
