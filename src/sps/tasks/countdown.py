"""The built-in task: countdown arithmetic.

Given a few numbers and a target, write an expression that uses each number exactly once
and evaluates to the target with + - * /. Problems are generated from a seed; every problem
is solvable and has at least `min_solutions` distinct correct expressions (distinct as
canonical strings: operands of + and * are ordered, so `3+4` and `4+3` count once).

Completions look like real benchmark answers: one line per step (`7-5=2`), then a final
line `Answer: <expression>`. The grader checks the work (`check_work`): true steps that turn
the given numbers into the target, and an answer line that uses each number once and equals
the target. With `check_steps=False` it reads only the last answer line.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from sps.tasks.arith import MAX_DIGITS, ParseError, apply_op, parse_expression

ANSWER_RE = re.compile(r"Answer:\s*([^\n]*)")
_INT = rf"([0-9]{{1,{MAX_DIGITS}}})"
STEP_RE = re.compile(rf"{_INT}\s*([-+*/])\s*{_INT}\s*=\s*{_INT}")  # a step line, stripped
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
    for p in _new_problems(rng, 200 * n, seen, count, max_number, max_target, min_solutions):
        seen.add(problem_key(p))
        out.append(p)
        if len(out) == n:
            return out
    raise ValueError(
        f"could only generate {len(out)} of {n} distinct countdown problems; raise "
        "task.max_number or task.max_target, or lower task.min_solutions / the n_* counts"
    )


def _new_problems(
    rng: random.Random, attempts: int, seen: set[tuple], *shape: int
) -> Iterator[Problem]:
    """Solvable problems of `shape` (count, max_number, max_target, min_solutions) whose key
    is not in `seen` (which the caller updates), from at most `attempts` draws of `rng`."""
    for _ in range(attempts):
        p = random_problem(rng, *shape)
        if p is not None and problem_key(p) not in seen:
            yield p


def problem_key(p: Problem) -> tuple:
    return (tuple(sorted(p.numbers)), p.target)


EXAMPLE_OPS = "*-+/"  # the last operator of the worked examples, in turn


def worked_examples(
    seed: int, n: int, count: int, max_number: int, max_target: int, min_solutions: int
) -> list[tuple[Problem, Path]]:
    """`n` distinct problems from `seed`, each with one solution whose last step uses
    EXAMPLE_OPS[i % 4], so that the examples of a prompt show every operator."""
    rng, seen, out = random.Random(seed), set(), []
    shape = (count, max_number, max_target, min_solutions)
    for p in _new_problems(rng, 1000 * n, seen, *shape):
        want = EXAMPLE_OPS[len(out) % len(EXAMPLE_OPS)]
        paths = [x for xs in p.solutions().values() for x in xs if x.steps[-1].op == want]
        if paths:
            seen.add(problem_key(p))
            out.append((p, rng.choice(paths)))
            if len(out) == n:
                return out
    raise ValueError(
        f"could only find {len(out)} of {n} worked examples (task.shots); raise "
        "task.max_number or task.max_target"
    )


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


def parse_step(line: str) -> Step | None:
    """The step `a<op>b=r` on this line (spaces allowed), or None if it is not one."""
    m = STEP_RE.fullmatch(line.strip())
    return Step(int(m[1]), m[2], int(m[3]), int(m[4])) if m else None


def _true(step: Step) -> bool:
    try:
        return apply_op(step.op, step.a, step.b) == step.result
    except ParseError:  # division by zero
        return False


def check_work(completion: str, numbers: tuple[int, ...] | list[int], target: int) -> bool:
    """True iff the completion is the worked solution the traces teach, and it is right.

    Its non-blank lines must be k step lines `a<op>b=r` and then one `Answer:` line, and:
    - each step is true in exact rational arithmetic (`7/2=3` is false);
    - each step takes a and b from the numbers available at that point, a multiset that
      starts as the given numbers; the step consumes a and b and adds r;
    - after the last step exactly one number is left, and it is the target (so k = count-1);
    - the answer expression uses each given number once and equals the target (`is_correct`).
    Any other non-blank line (prose, a second `Answer:` line, text after the answer) makes it
    wrong, and so does no step at all: the grade is about the work shown, not a lucky line.
    Step operands and results are non-negative integers, as in every generated solution.
    """
    lines = [line.strip() for line in completion.split("\n")]
    lines = [line for line in lines if line]
    if not lines or not lines[-1].startswith("Answer:"):
        return False
    pool = Counter(numbers)
    for line in lines[:-1]:
        step = parse_step(line)
        if step is None or not _true(step):
            return False
        for x in (step.a, step.b):
            if pool[x] < 1:
                return False  # not given, or already used
            pool[x] -= 1
        pool[step.result] += 1
    answer = lines[-1][len("Answer:") :].strip()
    return +pool == Counter([target]) and is_correct(answer, numbers, target)  # +: drop zeros


def grade(
    completion: str,
    numbers: tuple[int, ...] | list[int],
    target: int,
    check_steps: bool = True,
) -> tuple[str, bool]:
    """(pred, correct): pred is the expression on the last `Answer:` line, or '' when there
    is none, whatever the steps say (so '' means unparsed under both settings, and answer
    diversity reads the same). correct is `check_work` with `check_steps`; without it,
    `is_correct(pred)` alone (the answer line only: false steps go unnoticed)."""
    pred = extract_answer(completion)
    if check_steps:
        return (pred or ""), check_work(completion, numbers, target)
    return (pred or ""), is_correct(pred, numbers, target)
