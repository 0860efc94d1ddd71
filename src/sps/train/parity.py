"""Budget parity: every compared method must have used the same training budget."""

from __future__ import annotations

import json
from pathlib import Path

BUDGET_KEYS = ("steps", "prompts_per_step", "group_size", "max_new_tokens")


def read_budget(path: str | Path) -> dict:
    """The `budget` of a run's run.json; the error names the file."""
    try:
        return json.loads(Path(path).read_text())["budget"]
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: cannot read the run's budget: {exc}") from exc


def check_parity(budgets: dict[str, dict], allow_mismatch: bool = False) -> list[str]:
    """Differences between the runs' budgets, one line each. Raises unless allowed, so a
    comparison of methods trained on different budgets never passes silently."""
    problems = []
    for key in BUDGET_KEYS:
        values = {name: b.get(key) for name, b in budgets.items()}
        if len(set(values.values())) > 1:
            problems.append(
                f"{key} differs: " + ", ".join(f"{n}={v}" for n, v in sorted(values.items()))
            )
    if problems and not allow_mismatch:
        raise ValueError(
            "runs were trained on different budgets (set "
            "analysis.allow_budget_mismatch to compare anyway):\n  " + "\n  ".join(problems)
        )
    return problems
