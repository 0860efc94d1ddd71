"""Exploration baselines' advantages on hand-computed groups, and against slow references."""

from itertools import combinations
from math import sqrt

import pytest
import torch

from sps.algos import (
    passk_advantages,
    unlikeliness_rewards,
    w_reinforce_advantages,
)


def test_w_reinforce_hand_group():
    r = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert w_reinforce_advantages(r, lam=0.1)[0].tolist() == pytest.approx([0.1, -1, 0.1, -1])


def test_unlikeliness_hand_group():
    # scores ascending: index 2 (-3.0) rank 0, index 0 (-2.0) rank 1, index 3 rank 2, index 1 rank 3
    r = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    s = torch.tensor([[-2.0, -0.5, -3.0, -1.0]])
    out = unlikeliness_rewards(r, s, beta=0.25)
    expected = [1 * (1 - 0.25 * 1 / 4), 1 * (1 - 0.25 * 3 / 4), 1.0, 0.0]
    assert out[0].tolist() == pytest.approx(expected)


def _passk_reference(correct: list[bool], k: int) -> list[float]:
    """The definition: the advantage of a sample is the mean over the k-subsets containing it
    of (subset passes) minus the group's pass@k, normalised by sigma (Chen et al. 2025)."""
    n = len(correct)
    subsets = list(combinations(range(n), k))
    rho = sum(any(correct[i] for i in s) for s in subsets) / len(subsets)
    sigma = sqrt(rho * (1 - rho))
    if sigma == 0:
        return [0.0] * n
    out = []
    for i in range(n):
        mine = [s for s in subsets if i in s]
        out.append((sum(any(correct[j] for j in s) for s in mine) / len(mine) - rho) / sigma)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "pattern", ["10000000", "11000000", "10101010", "11111110", "00000000", "11111111"]
)
def test_passk_advantages_against_subset_enumeration(pattern, k):
    correct = [c == "1" for c in pattern]
    r = torch.tensor([correct], dtype=torch.float64)
    got = passk_advantages(r, k)[0].tolist()
    assert got == pytest.approx(_passk_reference(correct, k), abs=1e-9)


def test_passk_hand_group():
    # n = 4, c = 1, k = 2: rho = 1 - C(3,2)/C(4,2) = 1/2, sigma = 1/2
    # A_correct = (1 - 1/2) / (1/2) = 1; A_wrong = (1 - 1/2 - C(2,1)/C(3,1)) / (1/2) = -1/3
    r = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    assert passk_advantages(r, 2)[0].tolist() == pytest.approx([-1 / 3, 1.0, -1 / 3, -1 / 3])
    with pytest.raises(ValueError, match="k=5"):
        passk_advantages(r, 5)


def test_parity_refuses_runs_with_different_budgets(tmp_path):
    import json

    from sps.train.parity import check_parity, read_budget

    same = {"steps": 10, "prompts_per_step": 4, "group_size": 8, "max_new_tokens": 64}
    assert check_parity({"grpo": same, "sps-p4": dict(same)}) == []
    other = {**same, "group_size": 16}
    with pytest.raises(ValueError, match="group_size differs: grpo=8, sps-p4=16"):
        check_parity({"grpo": same, "sps-p4": other})
    assert len(check_parity({"grpo": same, "sps-p4": other}, allow_mismatch=True)) == 1
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"budget": same}))
    assert read_budget(run) == same
    with pytest.raises(ValueError, match="missing.json"):
        read_budget(tmp_path / "missing.json")
