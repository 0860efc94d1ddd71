"""The built-in task: countdown arithmetic.

Given a few numbers and a target, write an expression that uses each number exactly once
and evaluates to the target with + - * /. Problems are generated from a seed; every problem
is solvable and has at least `min_solutions` distinct correct expressions (distinct as
canonical strings: operands of + and * are ordered, so `3+4` and `4+3` count once).

Completions look like real benchmark answers: one line per step (`7-5=2`), then a final
line `Answer: <expression>`. The grader reads only the last answer line.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from sps.tasks.arith import ParseError, parse_expression

ANSWER_RE = re.compile(r"Answer:\s*([^\n]*)")
OPS = "+-*/"


@dataclass(frozen=True)
class Step:
    a: int
    op: str
    b: int
    result: int

    def text(self) -> str:
        return f"{self.a}{self.op}{self.b}={self.result}"


@dataclass(frozen=True)
class Path:
    """One way of combining all numbers: the steps in order and the final expression."""

    steps: tuple[Step, ...]
    expr: str
    value: int


def _combine(a: int, b: int) -> Iterator[tuple[str, int]]:
    """Integer-valued combinations with canonical operand order (a >= b)."""
    yield "+", a + b
    yield "*", a * b
    if a > b:
        yield "-", a - b
    if b > 1 and a % b == 0:
        yield "/", a // b


def _paths(items: tuple[tuple[int, str], ...]) -> Iterator[tuple[tuple[Step, ...], str, int]]:
    if len(items) == 1:
        yield (), items[0][1], items[0][0]
        return
    for i in range(len(items)):
        for j in range(len(items)):
            if i == j or items[i][0] < items[j][0]:
                continue
            (a, ea), (b, eb) = items[i], items[j]
            if a == b and i > j:  # equal values: keep one order only
                continue
            rest = tuple(x for k, x in enumerate(items) if k not in (i, j))
            for op, value in _combine(a, b):
                wrap = [e if e.isdigit() else f"({e})" for e in (ea, eb)]
                if op in "+*":  # canonical operand order makes commuted duplicates equal
                    wrap.sort()
                expr = f"{wrap[0]}{op}{wrap[1]}"
                for steps, final, v in _paths(rest + ((value, expr),)):
                    yield (Step(a, op, b, value),) + steps, final, v


@functools.lru_cache(maxsize=4096)
def solutions_by_target(numbers: tuple[int, ...]) -> dict[int, dict[str, tuple[Path, ...]]]:
    """All ways to combine `numbers` (sorted tuple): target -> expression -> step orders."""
    table: dict[int, dict[str, list[Path]]] = {}
    for steps, expr, value in _paths(tuple((n, str(n)) for n in numbers)):
        table.setdefault(value, {}).setdefault(expr, []).append(Path(steps, expr, value))
    return {t: {e: tuple(p) for e, p in d.items()} for t, d in table.items()}


@dataclass(frozen=True)
class Problem:
    numbers: tuple[int, ...]
    target: int
    n_solutions: int

    @property
    def id(self) -> str:
        return "cd-" + "_".join(map(str, self.numbers)) + f"-{self.target}"

    def prompt(self) -> str:
        return f"Make {self.target} from {' '.join(map(str, self.numbers))}.\n"

    def solutions(self) -> dict[str, tuple[Path, ...]]:
        return solutions_by_target(tuple(sorted(self.numbers)))[self.target]


def random_problem(
    rng: random.Random, count: int, max_number: int, max_target: int, min_solutions: int
) -> Problem | None:
    """Draw numbers, then a target among those with enough distinct solutions (or None)."""
    numbers = tuple(sorted(rng.randint(1, max_number) for _ in range(count)))
    table = solutions_by_target(numbers)
    targets = sorted(
        t for t, exprs in table.items() if 1 <= t <= max_target and len(exprs) >= min_solutions
    )
    if not targets:
        return None
    target = rng.choice(targets)
    shown = tuple(rng.sample(numbers, len(numbers)))  # order shown in the prompt is random
    return Problem(shown, target, len(table[target]))


def generate(
    seed: int,
    n: int,
    count: int,
    max_number: int,
    max_target: int,
    min_solutions: int,
    exclude: set[tuple] | None = None,
) -> list[Problem]:
    """`n` distinct problems (distinct by sorted numbers and target) from `seed`."""
    rng, seen, out = random.Random(seed), set(exclude or ()), []
    for _ in range(200 * n):
        if len(out) == n:
            return out
        p = random_problem(rng, count, max_number, max_target, min_solutions)
        if p is None or problem_key(p) in seen:
            continue
        seen.add(problem_key(p))
        out.append(p)
    raise ValueError(
        f"could only generate {len(out)} of {n} distinct countdown problems; raise "
        "task.max_number or task.max_target, or lower task.min_solutions / the n_* counts"
    )


def problem_key(p: Problem) -> tuple:
    return (tuple(sorted(p.numbers)), p.target)


# ---- traces -------------------------------------------------------------------------------


def format_completion(path: Path) -> str:
    return "".join(s.text() + "\n" for s in path.steps) + f"Answer: {path.expr}\n"


def correct_trace(p: Problem, rng: random.Random) -> str:
    """A correct solution: a random distinct expression, then one of its step orders."""
    sols = p.solutions()
    expr = rng.choice(sorted(sols))
    return format_completion(rng.choice(sols[expr]))


def wrong_trace(p: Problem, rng: random.Random) -> str:
    """A plausible wrong attempt: valid arithmetic that ends at another value."""
    table = solutions_by_target(tuple(sorted(p.numbers)))
    wrong = sorted(t for t in table if t != p.target and t > 0)
    exprs = table[rng.choice(wrong)]
    return format_completion(rng.choice(exprs[rng.choice(sorted(exprs))]))


def make_trace(p: Problem, rng: random.Random, wrong_fraction: float) -> str:
    return wrong_trace(p, rng) if rng.random() < wrong_fraction else correct_trace(p, rng)


# ---- grading ------------------------------------------------------------------------------


def extract_answer(completion: str) -> str | None:
    """The expression on the last `Answer:` line, or None."""
    found = ANSWER_RE.findall(completion)
    return found[-1].strip() if found else None


def is_correct(expr: str | None, numbers: tuple[int, ...] | list[int], target: int) -> bool:
    """True iff `expr` uses each number exactly once and equals `target` exactly."""
    if expr is None:
        return False
    try:
        parsed = parse_expression(expr)
    except ParseError:
        return False
    return sorted(parsed.numbers) == sorted(numbers) and parsed.value == target


def grade(completion: str, numbers: tuple[int, ...] | list[int], target: int) -> tuple[str, bool]:
    """(the extracted answer, or '' when none, and whether it is correct)."""
    pred = extract_answer(completion)
    return (pred or ""), is_correct(pred, numbers, target)
