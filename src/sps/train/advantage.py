"""Per-method advantages of an RL step: GRPO and the exploration baselines of method.md."""

from __future__ import annotations

import torch

from sps.algos import (
    grpo_advantages,
    passk_advantages,
    unlikeliness_advantages,
    w_reinforce_advantages,
)
from sps.config import BaselineConfig, RLConfig

# Method ids the workflow trains; "grpo" is also the RL phase of every SPS run.
ESTIMATORS = ("grpo", "entropy-bonus", "w-reinforce", "unlikeliness", "passk-training")


def group_advantages(
    estimator: str,
    rewards: torch.Tensor,
    likelihood: torch.Tensor,
    rl: RLConfig,
    base: BaselineConfig,
) -> torch.Tensor:
    """[B, G] advantages. `likelihood` is each rollout's summed log-prob under the rollout
    policy, [B, G]; only the unlikeliness reward reads it. The entropy bonus changes the loss,
    not the advantages, so it uses GRPO's."""
    if estimator in ("grpo", "entropy-bonus"):
        return grpo_advantages(rewards, rl.adv_scale, rl.adv_eps)
    if estimator == "w-reinforce":
        return w_reinforce_advantages(rewards, base.w_reinforce_lambda)
    if estimator == "unlikeliness":
        return unlikeliness_advantages(
            rewards, likelihood, base.unlikeliness_beta, rl.adv_scale, rl.adv_eps
        )
    if estimator == "passk-training":
        return passk_advantages(rewards, base.passk_k)
    raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
