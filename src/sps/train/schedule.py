"""Which phase each optimizer step runs: GRPO is all RL; SPS `fixed` alternates N RL, M IRL."""

from __future__ import annotations

from sps.config import ScheduleConfig


def phase_at(step: int, schedule: ScheduleConfig) -> str:
    """'rl' or 'irl' for 0-based `step`: with period N and M IRL steps, a cycle is
    N RL steps followed by M IRL steps (so the first IRL step is step N)."""
    if schedule.kind == "none":
        return "rl"
    cycle = schedule.period + schedule.irl_steps
    return "irl" if step % cycle >= schedule.period else "rl"
