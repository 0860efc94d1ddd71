"""Per-group bookkeeping of a rollout batch: rewards, distinct completions, diagnostics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sps.algos import unique_groups


@dataclass
class Group:
    """One prompt's G rollouts: `rows` index into the flat batch."""

    rows: list[int]
    rewards: np.ndarray  # [G]
    first: list[int]  # flat row of each distinct completion (first occurrence)
    counts: list[int]  # multiplicity of each distinct completion
    correct: list[bool]  # per distinct completion
    prompt: int  # index into the batch's prompts


def make_groups(
    prompt_idx: list[int], token_ids: list[list[int]], rewards: list[float]
) -> list[Group]:
    order: dict[int, list[int]] = {}
    for row, p in enumerate(prompt_idx):
        order.setdefault(p, []).append(row)
    groups = []
    for prompt, rows in order.items():
        first_local, counts = unique_groups([token_ids[r] for r in rows])
        first = [rows[i] for i in first_local]
        r = np.array([rewards[i] for i in rows], dtype=float)
        groups.append(Group(rows, r, first, counts, [rewards[i] > 0.5 for i in first], prompt))
    return groups


def squeeze_stats(groups: list[Group]) -> dict[str, float]:
    """Diagnostics of method.md that need only rewards and multiplicities."""
    rewards = np.stack([g.rewards for g in groups])
    size = rewards.shape[1]
    with_correct = [g for g in groups if g.rewards.max() > 0.5]
    dcr = [sum(c for c in g.correct) / max(1, int((g.rewards > 0.5).sum())) for g in with_correct]
    return {
        "reward_mean": float(rewards.mean()),
        "frac_all_correct": float((rewards.min(1) > 0.5).mean()),
        "frac_all_wrong": float((rewards.max(1) <= 0.5).mean()),
        "distinct_ratio": float(np.mean([len(g.first) / size for g in groups])),
        "distinct_correct_ratio": float(np.mean(dcr)) if dcr else float("nan"),
        "top1_share": float(np.mean([max(g.counts) / size for g in groups])),
    }
