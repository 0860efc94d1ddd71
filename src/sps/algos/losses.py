"""RL-phase losses: clipped policy-gradient loss, k3 KL, aggregation, entropy."""

import math

import torch

AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")

# Bound on |log-ratio| before exp: keeps exp finite (and its gradient free of 0 * inf = nan)
# at padded positions whose log-probs are arbitrary. Same guard as verl's core_algos.
_LOG_RATIO_CLAMP = 20.0


def _as_float_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.to(dtype=like.dtype)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = _as_float_mask(mask, x)
    return torch.where(m > 0, x, torch.zeros_like(x)).sum() / m.sum().clamp(min=1.0)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi_theta || pi_ref) (Schulman's approximation).

    k3_t = exp(r_t) - r_t - 1,  r_t = log pi_ref(t) - log pi_theta(t).

    Non-negative, zero iff the two log-probs agree. r is clamped to [-20, 20] so exp stays finite.
    """
    r = (ref_logp - logp).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return torch.exp(r) - r - 1.0


def aggregate(
    loss_tok: torch.Tensor, mask: torch.Tensor, mode: str, max_len: int | None = None
) -> torch.Tensor:
    """Reduce a per-token loss [N, T] with a 0/1 (or bool) mask [N, T] to a scalar.

    - ``token-mean`` (DAPO): sum_{i,t} m_it l_it / sum_{i,t} m_it.
    - ``seq-mean-token-mean`` (original GRPO): (1/N) sum_i [sum_t m_it l_it / sum_t m_it].
    - ``seq-mean-token-sum-norm`` (Dr. GRPO): sum_{i,t} m_it l_it / (N * L_max),
      L_max = ``max_len`` if given, else T.

    Every denominator is clamped to >= 1 so an all-masked batch or row gives 0, not nan.
    Masked positions are zeroed with ``where`` (not multiplied) so non-finite padding cannot leak.
    """
    if mode not in AGG_MODES:
        raise ValueError(f"unknown loss aggregation {mode!r}; expected one of {AGG_MODES}")
    m = _as_float_mask(mask, loss_tok)
    masked = torch.where(m > 0, loss_tok, torch.zeros_like(loss_tok))
    if mode == "token-mean":
        return masked.sum() / m.sum().clamp(min=1.0)
    if mode == "seq-mean-token-mean":
        per_seq = masked.sum(dim=-1) / m.sum(dim=-1).clamp(min=1.0)
        return per_seq.sum() / max(per_seq.numel(), 1)
    n = loss_tok.shape[0]
    length = loss_tok.shape[-1] if max_len is None else max_len
    return masked.sum() / max(n * length, 1)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    agg: str = "token-mean",
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    max_len: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (PPO/GRPO) loss with an optional k3 KL penalty.

    Shapes: ``logp``, ``old_logp``, ``mask``, ``ref_logp`` [N, T]; ``advantages`` [N], one per
    sequence, broadcast over its tokens.

        rho_t = exp(logp_t - old_logp_t)
        l_t   = -min(rho_t A, clip(rho_t, 1 - clip_low, 1 + clip_high) A) + kl_coef * k3_t

    The k3 term is added only when ``ref_logp`` is given and ``kl_coef > 0``; the result is reduced
    with :func:`aggregate` (``agg``, ``max_len``).

    Stats (floats): ``clip_frac`` = share of masked tokens where the clipped branch is active
    (clipped term strictly larger loss than the unclipped one), ``kl`` = masked mean k3 (nan
    without ``ref_logp``), ``ratio_mean`` = masked mean rho.

    ``old_logp``, ``ref_logp`` and ``advantages`` are detached (constants of the step). The
    log-ratio is clamped to [-20, 20] before exp (finite at padding; no effect on real tokens).
    """
    # old/ref log-probs and advantages are constants of the step: detach them so that passing
    # old_logp=logp (on-policy) still gives the policy gradient instead of d(rho)=0.
    old_logp = old_logp.detach()
    ref_logp = ref_logp.detach() if ref_logp is not None else None
    adv = advantages.detach().to(logp.dtype).unsqueeze(-1)
    log_ratio = (logp - old_logp).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    loss_unclipped = -ratio * adv
    loss_clipped = -ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * adv
    loss_tok = torch.maximum(loss_unclipped, loss_clipped)  # = -min(rho A, clip(rho) A)

    k3 = kl_k3(logp, ref_logp) if ref_logp is not None else None
    if k3 is not None and kl_coef > 0:
        loss_tok = loss_tok + kl_coef * k3

    loss = aggregate(loss_tok, mask, agg, max_len=max_len)

    with torch.no_grad():
        clipped = (loss_clipped > loss_unclipped).to(logp.dtype)
        stats = {
            "clip_frac": _masked_mean(clipped, mask).item(),
            "kl": _masked_mean(k3, mask).item() if k3 is not None else math.nan,
            "ratio_mean": _masked_mean(ratio, mask).item(),
        }
    return loss, stats


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of softmax(logits) over the last dim, one value per position.

    H = -sum_v p_v log p_v = logsumexp(z) - sum_v p_v z_v,  p = softmax(z).
    Uses logsumexp, so large logits do not overflow.
    """
    p = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (p * logits).sum(dim=-1)
