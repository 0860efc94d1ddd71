"""Graders against real benchmark rows (../shared/benchmarks, skipped where absent).

Per benchmark: every problem's own gold, phrased as a model would, must grade correct (100%);
another problem's gold (the gold list rotated by one) may grade correct on at most 1% of the
pairs whose golds differ. Run with -s to see both numbers.
"""

from pathlib import Path

import pytest

from sps.config import DataConfig, section, validate
from sps.tasks.bench.prepare import load_split
from sps.tasks.grading import grade_many, mathans
from sps.tasks.grading.mathans import same_text
from sps.tasks.grading.numbers import parse_number

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
FILES = {
    "gsm8k": "gsm8k/train.jsonl",
    "math": "math500/dev.jsonl",
    "svamp": "svamp/dev.jsonl",
    "strategyqa": "strategyqa/train.jsonl",
    "commonsense_qa": "commonsense_qa/dev.jsonl",
}
MATH_ROWS = 200


def _with_commas(gold: str) -> str:
    value = parse_number(gold)
    return f"{int(value):,}" if value is not None and value.denominator == 1 else gold


def phrased(row: dict, gold: str) -> str:
    """How a model would state `gold` as its final answer to `row`."""
    kind = row["answer_type"]
    if kind == "number":
        said = _with_commas(gold)
        return f"First 3 + 4 = 7, so the total is {said} dollars.\nThe answer is {said}."
    if kind == "math":
        return f"Putting it together, the result is $\\boxed{{{gold}}}$."
    if kind == "yes_no":
        return (
            f"Some would say no and others yes; weighing both, no doubt. So the answer is {gold}."
        )
    text = next(c for c in row["choices"] if c.startswith(f"{gold}. "))[3:]
    return f"Option (A) seems possible, but the answer is ({gold}) {text}."


def same_gold(kind: str, a: str, b: str) -> bool:
    if kind == "number":
        return parse_number(a) == parse_number(b)
    return same_text(a.lower(), b.lower())


def load(bench: str) -> list[dict]:
    path = SHARED / FILES[bench]
    if not path.is_file():
        pytest.skip(f"{path} not present")
    data = validate({})["data"]
    data["sources"][bench]["test"] = {"source": "local", "path": str(path)}
    problems, _ = load_split(bench, "test", section(DataConfig, data))
    if bench == "math":
        problems = problems[:MATH_ROWS]
    kind = {"gsm8k": "number", "svamp": "number", "math": "math"}.get(bench)
    kind = kind or {"strategyqa": "yes_no", "commonsense_qa": "choice"}[bench]
    return [{**p, "answer_type": kind, "choices": p.get("choices")} for p in problems]


@pytest.mark.parametrize("bench", list(FILES))
def test_golds_grade_right_and_others_wrong(bench, monkeypatch):
    rows = load(bench)
    # MATH: every answer through math-verify in the pool, not the identical-text shortcut
    monkeypatch.setattr(mathans, "same_text", lambda gold, pred: False)
    golds = [r["gold"] for r in rows]
    own = grade_many(rows, [phrased(r, r["gold"]) for r in rows], timeout=10, workers=2)
    other_golds = golds[1:] + golds[:1]
    pairs = [
        (r, g)
        for r, g in zip(rows, other_golds, strict=True)
        if not same_gold(r["answer_type"], r["gold"], g)
    ]
    other = grade_many([r for r, _ in pairs], [phrased(r, g) for r, g in pairs], 10, 2)
    right = sum(g.correct for g in own) / len(own)
    false_pos = sum(g.correct for g in other) / len(other)
    print(
        f"\n{bench}: own gold correct {right:.2%} of {len(own)}; "
        f"another's gold correct {false_pos:.2%} of {len(other)} pairs"
    )
    misses = [
        (r["gold"], g.pred, g.status) for r, g in zip(rows, own, strict=True) if not g.correct
    ]
    assert right == 1.0, misses[:10]
    hits = [(r["gold"], o, g.pred) for (r, o), g in zip(pairs, other, strict=True) if g.correct]
    assert false_pos <= 0.01, hits[:10]
