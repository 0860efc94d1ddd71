"""Teacher-forced token log-probs and entropies of completions under a model."""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

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
    chunk: int = 0,
):
    """(logp, entropy, mask), each [N, W-1]: position t scores token t+1 of `ids`.

    logp carries the gradient; entropy (of the full-vocabulary distribution) is detached
    unless `entropy_grad` (the entropy bonus differentiates it). `chunk` > 0 computes the
    head `chunk` positions at a time under activation checkpointing, so the float32 logits of
    the whole batch (N x W x vocabulary) never exist at once: the memory-lean path for real
    vocabularies; 0 takes the model's full logits.
    """
    nxt = ids[:, 1:]
    with autocast(ids.device):
        if chunk <= 0:
            logits = _upcast(model(input_ids=ids, attention_mask=attn).logits[:, :-1])
            logp, ent = _head_stats(logits, nxt, with_entropy, entropy_grad)
            return logp, ent, target[:, 1:]
        hidden = _hidden(model, ids, attn)[:, :-1]
    head = model.get_output_embeddings()
    parts = [
        checkpoint(
            _chunk_stats,
            head,
            hidden[:, i : i + chunk],
            nxt[:, i : i + chunk],
            with_entropy,
            entropy_grad,
            use_reentrant=False,
        )
        for i in range(0, nxt.shape[1], chunk)
    ]
    logp = torch.cat([p[0] for p in parts], dim=1)
    ent = torch.cat([p[1] for p in parts], dim=1) if with_entropy else None
    return logp, ent, target[:, 1:]


def _hidden(model, ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """The decoder's last hidden states [N, W, H], through the model's own forward (which
    is where FSDP gathers the embeddings and the head: rl.parallel fsdp) with no logits
    computed (`logits_to_keep`: no position); a hook on the decoder takes its output."""
    seen: list[torch.Tensor] = []
    hook = model.get_decoder().register_forward_hook(
        lambda _module, _args, out: seen.append(out.last_hidden_state)
    )
    try:
        none = torch.zeros(0, dtype=torch.long, device=ids.device)
        model(input_ids=ids, attention_mask=attn, logits_to_keep=none)
    finally:
        hook.remove()
    return seen[-1]


def _chunk_stats(head, hidden, nxt, with_entropy: bool, entropy_grad: bool):
    logp, ent = _head_stats(_upcast(head(hidden)), nxt, with_entropy, entropy_grad)
    return logp, ent if ent is not None else logp.new_zeros(0)


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """float32 for half-precision logits (a stable softmax); float64 stays float64."""
    return logits if logits.dtype == torch.float64 else logits.float()


def _head_stats(logits: torch.Tensor, nxt: torch.Tensor, with_entropy: bool, entropy_grad: bool):
    """Chosen-token log-probs and optional entropies of one block of logits."""
    logp = logits.log_softmax(-1).gather(-1, nxt.unsqueeze(-1)).squeeze(-1)
    ent = None
    if with_entropy:
        ent = entropy_from_logits(logits if entropy_grad else logits.detach())
    return logp, ent


def enable_gradient_checkpointing(model) -> None:
    """Recompute each decoder layer's activations in the backward pass (in training mode).

    Non-reentrant, so it also works when no input needs a gradient (LoRA freezes the
    embeddings). transformers 5 renamed the method; the old name is kept for 4.x."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
