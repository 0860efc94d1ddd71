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
    scores: torch.Tensor,
    rl: RLConfig,
    base: BaselineConfig,
) -> torch.Tensor:
    """[B, G] advantages. `scores` [B, G] is each rollout's sequence score s(y) under the
    rollout policy, as `irl.score` configures it (per-token mean log-prob by default, as in
    method.md and He et al.'s code; a sum would rank long completions as unlikely); only the
    unlikeliness reward reads it. The entropy bonus changes the loss, not the advantages, so
    it uses GRPO's."""
    if estimator in ("grpo", "entropy-bonus"):
        return grpo_advantages(rewards, rl.adv_scale, rl.adv_eps)
    if estimator == "w-reinforce":
        return w_reinforce_advantages(rewards, base.w_reinforce_lambda)
    if estimator == "unlikeliness":
        return unlikeliness_advantages(
            rewards, scores, base.unlikeliness_beta, rl.adv_scale, rl.adv_eps
        )
    if estimator == "passk-training":
        return passk_advantages(rewards, base.passk_k)
    raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
