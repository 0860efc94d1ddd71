"""Advantages of the exploration baselines SPS is compared against (method.md).

Each takes a group-major reward tensor [B, G] (binary rewards, 1 = correct) and returns
advantages of the same shape; the policy loss is the usual clipped surrogate.
"""

from __future__ import annotations

from math import comb

import torch

from sps.algos.advantages import grpo_advantages


def w_reinforce_advantages(rewards: torch.Tensor, lam: float = 0.1) -> torch.Tensor:
    """W-REINFORCE (Zhu et al. 2025, arXiv 2506.01347): A = +lambda if correct, -1 if not.

    Down-weighting the positive samples keeps most of the push on the negative ones, which
    lowers wrong answers without sharpening the distribution on the right ones.
    """
    correct = rewards > 0.5
    return torch.where(correct, torch.full_like(rewards, lam), torch.full_like(rewards, -1.0))


def unlikeliness_rewards(
    rewards: torch.Tensor, scores: torch.Tensor, beta: float = 0.25
) -> torch.Tensor:
    """Unlikeliness reward (He et al. 2025, arXiv 2506.02355).

    Rank each group's completions by s(y) ascending (rank 0 least likely, G-1 most likely) and
    set R' = R * (1 - beta * rank / G): correct but unlikely completions keep more reward.
    Ties keep their order of appearance (a stable sort). Feed R' to `grpo_advantages`.
    s(y) is the configured sequence score (`irl.score`, `sequence_scores`): the per-token mean
    log-prob by default, as in He et al.'s ray_lean_trainer.py; a sum would mostly rank by
    length (longer = less likely).
    """
    size = rewards.shape[-1]
    order = torch.sort(scores, dim=-1, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(size, device=scores.device).expand_as(order))
    return rewards * (1 - beta * rank.to(rewards.dtype) / size)


def unlikeliness_advantages(
    rewards: torch.Tensor,
    scores: torch.Tensor,
    beta: float = 0.25,
    scale: str = "group",
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO advantages of the unlikeliness-shaped rewards."""
    return grpo_advantages(unlikeliness_rewards(rewards, scores, beta), scale, eps)


def passk_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """Pass@k training (Chen et al. 2025, arXiv 2508.10751), analytic group advantages.

    With n = G samples and c correct: rho = 1 - C(n-c, k) / C(n, k) (the group's Pass@k),
    sigma = sqrt(rho (1 - rho)); A_correct = (1 - rho) / sigma and
    A_wrong = (1 - rho - C(n-c-1, k-1) / C(n-1, k-1)) / sigma. A group with sigma = 0 (all
    correct, or too few wrong for any k-subset to fail) gets zero advantages.
    """
    n = rewards.shape[-1]
    if not 1 <= k <= n:
        raise ValueError(f"pass@k training needs 1 <= k <= group size ({n}), got k={k}")
    out = torch.zeros_like(rewards, dtype=torch.float64)
    for b, row in enumerate(rewards > 0.5):
        c = int(row.sum())
        rho = 1 - comb(n - c, k) / comb(n, k)
        sigma = (rho * (1 - rho)) ** 0.5
        if sigma == 0:
            continue
        a_wrong = (1 - rho - comb(n - c - 1, k - 1) / comb(n - 1, k - 1)) / sigma
        out[b] = a_wrong
        out[b, row] = (1 - rho) / sigma
    return out.to(rewards.dtype if rewards.is_floating_point() else torch.float32)
