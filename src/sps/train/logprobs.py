"""Teacher-forced token log-probs and entropies of completions under a model."""

from __future__ import annotations

import torch

from sps.algos import entropy_from_logits
from sps.models.io import autocast


def pack(prompt_ids: list[list[int]], completions: list[list[int]], pad: int, device: torch.device):
    """Right-padded prompt+completion rows and a mask of the completion positions (as targets)."""
    rows = [p + c for p, c in zip(prompt_ids, completions, strict=True)]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    target = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (p, c) in enumerate(zip(prompt_ids, completions, strict=True)):
        ids[i, : len(p) + len(c)] = torch.tensor(p + c)
        attn[i, : len(p) + len(c)] = 1
        target[i, len(p) : len(p) + len(c)] = True
    return ids.to(device), attn.to(device), target.to(device)


def token_logprobs(
    model,
    ids: torch.Tensor,
    attn: torch.Tensor,
    target: torch.Tensor,
    with_entropy: bool = True,
    entropy_grad: bool = False,
):
    """(logp, entropy, mask), each [N, W-1]: position t scores token t+1 of `ids`.

    logp carries the gradient; entropy (of the full-vocabulary distribution) is detached
    unless `entropy_grad` (the entropy bonus differentiates it).
    """
    with autocast(ids.device):
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    nxt = ids[:, 1:]
    logp = logits.log_softmax(-1).gather(-1, nxt.unsqueeze(-1)).squeeze(-1)
    ent = None
    if with_entropy:
        ent = entropy_from_logits(logits if entropy_grad else logits.detach())
    return logp, ent, target[:, 1:]
