"""Group-relative advantages (GRPO / Dr. GRPO)."""

import torch

ADV_SCALES = ("group", "none")


def grpo_advantages(rewards: torch.Tensor, scale: str = "group", eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantage of each completion.

    ``rewards`` has shape [B, G]: B prompts (groups), G completions each.

    - ``scale="group"`` (GRPO): A_i = (R_i - mean_j R_j) / (std_j R_j + eps), population std.
    - ``scale="none"`` (Dr. GRPO): A_i = R_i - mean_j R_j.

    A group whose rewards are all equal gets zero advantages under both scales.
    Returns a tensor of the same shape and dtype as ``rewards``.
    """
    if scale not in ADV_SCALES:
        raise ValueError(f"unknown advantage scale {scale!r}; expected one of {ADV_SCALES}")
    if rewards.dim() != 2:
        raise ValueError(f"rewards must have shape [B, G], got {tuple(rewards.shape)}")
    rewards = rewards if rewards.is_floating_point() else rewards.float()
    centred = rewards - rewards.mean(dim=-1, keepdim=True)
    if scale == "group":
        # Population std (unbiased=False), as in method.md.
        centred = centred / (rewards.std(dim=-1, keepdim=True, unbiased=False) + eps)
    # Rounding in the mean of e.g. [0.7, 0.7, 0.7] leaves ~1e-8 residuals that eps would blow up
    # to ~1e-2; force constant groups to exactly zero advantage.
    constant = (rewards == rewards[:, :1]).all(dim=-1, keepdim=True)
    return torch.where(constant, torch.zeros_like(centred), centred)
