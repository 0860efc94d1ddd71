"""Which phase each optimizer step runs.

- `none` (GRPO): every step is RL.
- `fixed` (SPS): N RL steps, then M IRL steps, repeated; N is the alternation period.
- `adaptive` (SPS): M IRL steps whenever a squeezing indicator falls below `threshold`; it
  fires again only after the indicator has recovered above `threshold + hysteresis`, so it
  cannot flap around the threshold, or after `max_gap` RL steps without IRL, so that
  sustained squeezing (an indicator that never recovers) keeps getting IRL phases.
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


def adaptive_phases(
    values: list[float], low: float, high: float, irl_steps: int, max_gap: int = 0
) -> list[str]:
    """Phases of steps 0..len(values): step t is decided from values[:t].

    Armed at the start. An armed schedule whose last value is below `low` runs `irl_steps`
    IRL steps and disarms. It re-arms once a value exceeds `high` (the hysteresis: no
    flapping around `low`), or, when `max_gap` > 0, once `max_gap` RL steps have passed since
    its last IRL step. Why the gap: RL keeps squeezing, so after the first phases the
    indicator may never climb back above `high` and a recovery-only trigger stays silent for
    the rest of the run; with the gap, an indicator stuck below `low` gets M IRL steps every
    max_gap + M steps (fixed SPS with period max_gap), while one that recovers above `high`
    within max_gap RL steps of each phase gets exactly the phases it got without the gap.
    NaN (no information, e.g. no correct completion) neither fires nor re-arms by value.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    phases, armed, pending, gap = [], True, 0, 0
    for t in range(len(values) + 1):
        last = values[t - 1] if t > 0 else math.nan
        if not armed and (last > high or 0 < max_gap <= gap):
            armed = True
        if pending:
            pending -= 1
            phases.append("irl")
        elif armed and last < low:
            armed, pending, gap = False, irl_steps - 1, 0
            phases.append("irl")
        else:
            gap += 1
            phases.append("rl")
    return phases


def next_phase(schedule: ScheduleConfig, history: list[dict]) -> str:
    """The phase of the step after `history` (the metrics rows of the completed steps)."""
    if schedule.kind != "adaptive":
        return phase_at(len(history), schedule)
    values = indicator(history, schedule.indicator)
    high = schedule.threshold + schedule.hysteresis
    phases = adaptive_phases(values, schedule.threshold, high, schedule.irl_steps, schedule.max_gap)
    return phases[-1]
