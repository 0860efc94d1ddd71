"""Adaptive SPS: hysteresis against flapping, and re-arming under sustained squeezing."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sps.config import ConfigError, ScheduleConfig
from sps.train.schedule import adaptive_phases, next_phase

NAN = math.nan


def _reference(values, low, high, irl_steps, max_gap):
    """The rule, restated one step at a time: step t continues a phase started at f < t when
    t < f + M; otherwise it starts one iff the last value is below `low` and no phase ran
    yet, or a value since f exceeded `high`, or at least max_gap RL steps passed since it."""
    phases, fires = [], []
    for t in range(len(values) + 1):
        if fires and t < fires[-1] + irl_steps:
            phases.append("irl")
            continue
        last = values[t - 1] if t else NAN
        armed = not fires
        if fires:
            f = fires[-1]
            armed = any(v > high for v in values[f:t]) or 0 < max_gap <= t - f - irl_steps
        if armed and last < low:
            fires.append(t)
            phases.append("irl")
        else:
            phases.append("rl")
    return phases


def _irl_starts(phases):
    return [t for t, p in enumerate(phases) if p == "irl" and (t == 0 or phases[t - 1] == "rl")]


@pytest.mark.parametrize("gap,m", [(1, 1), (5, 1), (8, 1), (4, 2), (3, 3)])
def test_adaptive_fires_again_and_again_under_sustained_squeezing(gap, m):
    stuck = [0.1] * 60  # the indicator never recovers
    phases = adaptive_phases(stuck, low=0.5, high=0.6, irl_steps=m, max_gap=gap)
    starts = _irl_starts(phases)
    # the first phase at step 1 (after the first low value), then every gap + M steps
    assert starts == list(range(1, 61, gap + m))
    assert all(phases[s : s + m] == ["irl"] * m for s in starts)
    assert phases.count("irl") == sum(len(phases[s : s + m]) for s in starts)
    # without the gap it fires once and never again: the bug this key fixes
    assert _irl_starts(adaptive_phases(stuck, 0.5, 0.6, m)) == [1]


def test_adaptive_recovering_indicator_behaves_as_before():
    # low 0.5, high 0.7, M = 2: fires at the first dip, not again while the value hovers
    # around 0.5 (it never recovers above 0.7), re-arms at 0.8 and fires at the next dip.
    values = [0.9, 0.4, 0.45, 0.55, 0.45, 0.6, 0.8, NAN, 0.3, 0.9]
    before = ["rl", "rl", "irl", "irl", "rl", "rl", "rl", "rl", "rl", "irl", "irl"]
    for gap in (0, 3, 10, 100):
        assert adaptive_phases(values, 0.5, 0.7, 2, max_gap=gap) == before, gap
    # a gap shorter than the hovering stretch fires in it: the gap is what re-arms it
    assert adaptive_phases(values, 0.5, 0.7, 2, max_gap=1)[5:7] == ["irl", "irl"]


def test_adaptive_keeps_its_hysteresis_with_a_gap():
    hover = [0.49, 0.51] * 30  # flapping around the threshold
    phases = adaptive_phases(hover, low=0.5, high=0.7, irl_steps=1, max_gap=6)
    starts = _irl_starts(phases)
    assert len(starts) > 3
    assert all(b - a >= 6 + 1 for a, b in zip(starts, starts[1:], strict=False))
    flappy = adaptive_phases(hover, low=0.5, high=0.5, irl_steps=1, max_gap=6)
    assert len(_irl_starts(flappy)) > 2 * len(starts)


values_st = st.lists(
    st.one_of(st.floats(0, 1), st.just(NAN)), max_size=60
)  # 0..1 like both indicators near their thresholds


@settings(max_examples=400, deadline=None)
@given(values_st, st.integers(1, 3), st.integers(0, 6), st.sampled_from([0.0, 0.1, 0.3]))
def test_adaptive_phases_match_the_rule(values, m, gap, hysteresis):
    got = adaptive_phases(values, 0.4, 0.4 + hysteresis, m, max_gap=gap)
    assert got == _reference(values, 0.4, 0.4 + hysteresis, m, gap)
    assert len(got) == len(values) + 1


def test_next_phase_reads_max_gap_from_the_schedule():
    sched = ScheduleConfig("adaptive", irl_steps=1, threshold=0.5, hysteresis=0.1, max_gap=2)
    history = []
    for _ in range(12):
        phase = next_phase(sched, history)
        history.append({"phase": phase, "distinct_correct_ratio": 0.2})
    assert [row["phase"] for row in history] == ["rl"] + ["irl", "rl", "rl"] * 3 + ["irl", "rl"]
    with pytest.raises(ConfigError, match="sps.adaptive.max_gap"):
        ScheduleConfig("adaptive", max_gap=-1)
