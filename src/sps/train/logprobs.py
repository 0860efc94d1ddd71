"""Teacher-forced token log-probs and entropies of completions under a model."""

from __future__ import annotations

import inspect

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


PREFIX_MIN = 16  # shared prompt tokens worth a separate pass (a few-shot block has ~100)


def token_logprobs(
    model,
    ids: torch.Tensor,
    attn: torch.Tensor,
    target: torch.Tensor,
    with_entropy: bool = True,
    entropy_grad: bool = False,
    chunk: int = 0,
    share_prefix: bool = True,
):
    """(logp, entropy, mask), each [N, W-1]: position t scores token t+1 of `ids`.

    logp carries the gradient; entropy (of the full-vocabulary distribution) is detached
    unless `entropy_grad` (the entropy bonus differentiates it). `chunk` 0 takes the model's
    full logits. `chunk` > 0 is the lean path for real models, equal to it at every scored
    position (mask True; elsewhere logp and entropy are 0):
    - the head runs only where a completion token is scored, `chunk` positions at a time
      under activation checkpointing, so the float32 logits of the batch (N x W x
      vocabulary) never exist, and no prompt position costs a head;
    - with `share_prefix`, when every row starts with the same PREFIX_MIN or more prompt
      tokens (a few-shot prompt), the decoder runs that prefix once and every row attends to
      its keys and values (repeated: their gradients sum over the rows, as in the full pass).
      It needs the model's KV cache in training: off under FSDP or gradient checkpointing;
      a model whose rotary scaling depends on the length (`can_share`) or whose cache is not
      plain attention K/V (`_repeatable`: Mamba, hybrids) runs whole. With dropout the rows
      share the prefix's dropout mask (same expected gradient, correlated noise).
    """
    nxt, mask = ids[:, 1:], target[:, 1:]
    with autocast(ids.device):
        if chunk <= 0:
            logits = _upcast(model(input_ids=ids, attention_mask=attn).logits[:, :-1])
            logp, ent = _head_stats(logits, nxt, with_entropy, entropy_grad)
            return logp, ent, mask
        p = shared_prefix(ids, attn, target) if share_prefix and can_share(model) else 0
        p = p if p >= PREFIX_MIN else 0
        hidden, p = _hidden(model, ids, attn, p)  # positions p..W-1
    rows, cols = mask.nonzero(as_tuple=True)  # every scored position is at p or later
    h, tok = hidden[rows, cols - p], nxt[rows, cols]
    head = model.get_output_embeddings()
    parts = [
        checkpoint(
            _chunk_stats,
            head,
            h[i : i + chunk],
            tok[i : i + chunk],
            with_entropy,
            entropy_grad,
            use_reentrant=False,
        )
        for i in range(0, len(tok), chunk)
    ]
    logp = _scatter(mask, rows, cols, [x[0] for x in parts], h)
    ent = _scatter(mask, rows, cols, [x[1] for x in parts], h) if with_entropy else None
    return logp, ent, mask


def shared_prefix(ids: torch.Tensor, attn: torch.Tensor, target: torch.Tensor) -> int:
    """Tokens P that every row starts with and that no scored position needs: the rows agree
    on ids[:, :P], all of them real tokens (attn 1: the prefix pass has no mask), and the
    first completion token is after P (position P-1 scores token P, a prompt token), so the
    pass over P..W-1 holds every position that scores a target."""
    same = (ids == ids[:1]).all(0) & attn.bool().all(0)
    common = int(same.long().cumprod(0).sum())
    first = int(target.float().argmax(1).min()) if target.any() else ids.shape[1]
    return max(0, min(common, first - 1))


LENGTH_DEPENDENT_ROPE = ("dynamic", "longrope")  # their rotation depends on the whole length


def can_share(model) -> bool:
    """Whether a prefix run alone gets the keys and values it gets inside the whole row: not
    when the rotary scaling depends on the sequence length (dynamic NTK, longrope), where the
    prefix alone would be rotated for a shorter context."""
    config = getattr(model, "config", None)
    for key in ("rope_parameters", "rope_scaling"):
        rope = getattr(config, key, None)
        if (
            isinstance(rope, dict)
            and rope.get("rope_type", rope.get("type")) in LENGTH_DEPENDENT_ROPE
        ):
            return False
    return True


def _repeatable(cache) -> bool:
    """A plain attention KV cache, which repeats row by row; hybrid and recurrent caches
    (Mamba, linear-attention layers) and legacy tuples do not, so those models run whole."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    layers = getattr(cache, "layers", None)
    return (
        isinstance(cache, DynamicCache)
        and bool(layers)
        and all(isinstance(layer, DynamicLayer) for layer in layers)
    )


def _scatter(mask, rows, cols, parts: list[torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """The per-position values back in [N, W-1] (0 where nothing is scored), differentiable
    (with no scored position at all, still a graph through `h`, whose rows are none)."""
    values = torch.cat(parts) if parts else _upcast(h.sum(-1))
    out = torch.zeros(mask.shape, dtype=values.dtype, device=mask.device)
    return out.index_put((rows, cols), values)


def _hidden(model, ids: torch.Tensor, attn: torch.Tensor, prefix: int = 0):
    """(hidden, prefix): the decoder's last hidden states [N, W - prefix, H] of positions
    prefix..W-1, through the model's own forward (which is where FSDP gathers the embeddings
    and the head: rl.parallel fsdp) with no logits computed (`logits_to_keep`: no position); a
    hook on the decoder takes its output. With `prefix`, the first `prefix` tokens (the same
    in every row) run once, and the rest attend to their cached keys and values; a model
    whose cache cannot be repeated per row runs whole instead (prefix 0)."""
    seen: list[torch.Tensor] = []
    hook = model.get_decoder().register_forward_hook(
        lambda _module, _args, out: seen.append(out.last_hidden_state)
    )
    none = torch.zeros(0, dtype=torch.long, device=ids.device)
    try:
        if prefix > 0:
            out = model(input_ids=ids[:1, :prefix], use_cache=True, logits_to_keep=none)
            name = _cache_name(model)
            cache = getattr(out, name, None)
            if _repeatable(cache):
                cache.batch_repeat_interleave(ids.shape[0])
                kwargs = {name: cache, "use_cache": True, "logits_to_keep": none}
                model(input_ids=ids[:, prefix:], attention_mask=attn, **kwargs)
                return seen[-1], prefix
        model(input_ids=ids, attention_mask=attn, logits_to_keep=none)
        return seen[-1], 0
    finally:
        hook.remove()


def _cache_name(model) -> str:
    """The KV cache's argument and output name: transformers 5.24 renamed `past_key_values`
    to `cache` (the old name warns, then goes); >= 4.56 is supported."""
    params = inspect.signature(model.get_decoder().forward).parameters
    return "cache" if "cache" in params else "past_key_values"


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
