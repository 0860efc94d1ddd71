"""Pure tensor functions for the RL (GRPO family) and IRL (group forward-KL) phases.

Everything here is stateless and model-agnostic, in the style of verl's ``core_algos.py``: the
trainer computes log-probs and rewards, these functions turn them into advantages and losses.
See ``shared/docs/method.md`` for the maths.
"""

from sps.algos.advantages import grpo_advantages
from sps.algos.baselines import (
    passk_advantages,
    unlikeliness_advantages,
    unlikeliness_rewards,
    w_reinforce_advantages,
)
from sps.algos.irl import group_fkl_loss, irl_q, irl_skip, sequence_scores, unique_groups
from sps.algos.losses import aggregate, entropy_from_logits, kl_k3, policy_loss

__all__ = [
    "aggregate",
    "entropy_from_logits",
    "group_fkl_loss",
    "grpo_advantages",
    "irl_q",
    "irl_skip",
    "kl_k3",
    "passk_advantages",
    "policy_loss",
    "sequence_scores",
    "unique_groups",
    "unlikeliness_advantages",
    "unlikeliness_rewards",
    "w_reinforce_advantages",
]
