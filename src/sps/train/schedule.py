"""Which phase each optimizer step runs.

- `none` (GRPO): every step is RL.
- `fixed` (SPS): N RL steps, then M IRL steps, repeated; N is the alternation period.
- `adaptive` (SPS): M IRL steps whenever a squeezing indicator falls below `threshold`; it
  fires again only after the indicator has recovered above `threshold + hysteresis`, so it
  cannot flap around the threshold.
"""

from __future__ import annotations

import math

from sps.config import ScheduleConfig


def phase_at(step: int, schedule: ScheduleConfig) -> str:
    """'rl' or 'irl' for 0-based `step` of a `none` or `fixed` schedule: with period N and M
    IRL steps, a cycle is N RL steps followed by M IRL steps (the first IRL step is step N)."""
    if schedule.kind == "none":
        return "rl"
    if schedule.kind != "fixed":
        raise ValueError(f"phase_at needs a none or fixed schedule, got {schedule.kind!r}")
    cycle = schedule.period + schedule.irl_steps
    return "irl" if step % cycle >= schedule.period else "rl"


def indicator(history: list[dict], name: str) -> list[float]:
    """The squeezing indicator of each completed step: `distinct_correct` is the
    distinct-correct ratio; `entropy` is the token entropy relative to step 0's."""
    if name == "distinct_correct":
        return [row["distinct_correct_ratio"] for row in history]
    if name == "entropy":
        first = history[0]["entropy"] if history else math.nan
        return [row["entropy"] / first if first > 0 else math.nan for row in history]
    raise ValueError(f"unknown squeezing indicator {name!r}")


def adaptive_phases(values: list[float], low: float, high: float, irl_steps: int) -> list[str]:
    """Phases of steps 0..len(values): step t is decided from values[:t].

    Armed at the start. An armed schedule whose last value is below `low` runs `irl_steps`
    IRL steps and disarms; it re-arms once a value exceeds `high`. NaN (no information, e.g.
    no correct completion) neither fires nor re-arms.
    """
    phases, armed, pending = [], True, 0
    for t in range(len(values) + 1):
        last = values[t - 1] if t > 0 else math.nan
        if not armed and last > high:
            armed = True
        if pending:
            pending -= 1
            phases.append("irl")
        elif armed and last < low:
            armed, pending = False, irl_steps - 1
            phases.append("irl")
        else:
            phases.append("rl")
    return phases


def next_phase(schedule: ScheduleConfig, history: list[dict]) -> str:
    """The phase of the step after `history` (the metrics rows of the completed steps)."""
    if schedule.kind != "adaptive":
        return phase_at(len(history), schedule)
    values = indicator(history, schedule.indicator)
    return adaptive_phases(
        values, schedule.threshold, schedule.threshold + schedule.hysteresis, schedule.irl_steps
    )[-1]
