"""Throughput of the MATH grader: 10,000 completions through grade_many with 2 workers.

The completions mix, built from hand-written MATH-style golds (and tests/data/math.jsonl's,
when present): right answers in other spellings (so math-verify does the work, not the
identical-text shortcut; two plain numbers are settled exactly without it), wrong answers
(mostly distinct), unparsed ones (no final answer, a truncated \\boxed{), and a few adversarial
power towers that hang sympy and must time out.

    python -m sps.benchmarks.grading                 # 10,000 completions, 2 workers, 5 s timeout
    python -m sps.benchmarks.grading --n 2000 --timeout 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from sps.tasks.grading import STATUSES, grade_many

# (gold, an equivalent spelling a model might write)
GOLDS = [
    ("\\frac{3}{4}", "0.75"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\left(1, 2\\right)", "(1,2)"),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"),
    ("42", "42.0"),
    ("-\\frac{\\pi}{6}", "-\\pi/6"),
    ("x^2 + 2x + 1", "(x+1)^2"),
    ("6 - 5i", "-5i + 6"),
    ("\\text{Evelyn}", "Evelyn"),
    ("3, 5, 7", "3,5,7"),
    ("90^\\circ", "90"),
    ("[2, 5)", "[2,5)"),
    ("\\frac{243}{625}", "0.3888"),
    ("1.25", "\\frac{5}{4}"),
    ("11\\sqrt2", "11\\sqrt{2}"),
]
TOWER = "\\boxed{9^{9^{9^{9^{9}}}}}"


def fixture_golds() -> list[tuple[str, str]]:
    path = Path(__file__).resolve().parents[3] / "tests" / "data" / "math.jsonl"
    if not path.is_file():
        return []
    return [
        (json.loads(line)["answer"], json.loads(line)["answer"])
        for line in path.open()
        if "answer" in json.loads(line)
    ]


def wrong(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return str(rng.randrange(-1000, 1000))
    if kind == 1:
        return f"\\frac{{{rng.randrange(1, 500)}}}{{{rng.randrange(2, 500)}}}"
    return f"{rng.randrange(2, 50)}\\sqrt{{{rng.randrange(2, 30)}}}"


def completion(gold: str, same: str, rng: random.Random) -> str:
    roll = rng.random()
    steps = f"First, {rng.randrange(100)} + {rng.randrange(100)} gives the middle step.\n"
    if roll < 0.45:
        return steps + f"Therefore the answer is $\\boxed{{{same}}}$."
    if roll < 0.90:
        return steps + f"So the answer is $\\boxed{{{wrong(rng)}}}$."
    if roll < 0.95:
        return steps + "I am not sure how to finish."
    return steps + f"So the answer is $\\boxed{{\\frac{{1}}{{{rng.randrange(9)}}}"  # truncated


def build(n: int, adversarial: int, seed: int) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    pool = GOLDS + fixture_golds()
    rows, texts = [], []
    for i in range(n):
        gold, same = pool[i % len(pool)]
        rows.append({"answer_type": "math", "gold": gold, "choices": None})
        texts.append(TOWER if i < adversarial else completion(gold, same, rng))
    order = list(range(n))
    rng.shuffle(order)
    return [rows[i] for i in order], [texts[i] for i in order]


def workers_cpu() -> float | None:
    """CPU seconds of the pool's finished workers (Linux): they are the forkserver's children,
    so their time is the forkserver's cutime + cstime once it has reaped them. With the load
    average, this tells a slow run on a busy machine from a slow grader."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--adversarial", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows, texts = build(args.n, args.adversarial, args.seed)
    load = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    grades = grade_many(rows, texts, timeout=args.timeout, workers=args.workers)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    count = {s: sum(g.status == s for g in grades) for s in STATUSES}
    correct = sum(g.correct for g in grades)
    distinct = len({(r["gold"], g.pred) for r, g in zip(rows, grades, strict=True)})
    print(
        f"{len(grades)} MATH completions, {args.workers} workers, timeout {args.timeout}s: "
        f"{wall:.1f} s wall, {len(grades) / wall:.0f} completions/s; correct {correct}, "
        f"ok {count['ok']}, unparsed {count['unparsed']}, timeout {count['timeout']}, "
        f"too long {count['too_long']}; "
        f"{distinct} distinct (gold, answer) pairs"
    )
    pool_cpu = workers_cpu()
    if pool_cpu is not None:
        print(
            f"CPU: {cpu:.1f} s here (extraction), {pool_cpu:.1f} s in the workers "
            f"(math-verify); load average {load:.1f} on {os.cpu_count()} cores at the start"
        )


if __name__ == "__main__":
    main()
