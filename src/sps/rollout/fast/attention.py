"""Attention in two parts, a prompt part shared by a group's rows and a per-row part over
the generated tokens, each with its log-sum-exp so that the two combine exactly
(out = out_g + sigmoid(l_p - l_g) * (out_p - out_g)) without copying the prompt's K/V per row.
"""

from __future__ import annotations

import torch


def attend(q, k, v, mask: torch.Tensor, math_form: bool = False):
    """Softmax attention of q [.., Lq, D] over k, v [.., Lk, D] with an additive fp32 mask,
    and its log-sum-exp [.., Lq] (natural log), so that two key sets combine exactly."""
    if q.device.type == "cpu" and not math_form:
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, attn_mask=mask.to(q.dtype)
        )
        return out, lse
    s = torch.matmul(q, k.transpose(-1, -2)).float() * q.shape[-1] ** -0.5 + mask
    lse = torch.logsumexp(s, dim=-1)
    return torch.matmul(torch.exp(s - lse[..., None]).to(v.dtype), v), lse


def attend_shared(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):
    """`attend` for many queries [U, H, Lq, D] over few keys [U, H, Lk, D] (a prompt shared by
    a group), mask [U, 1, 1, Lk]. Scores are laid out [.., Lk, Lq] so that the softmax
    reductions run along the long query axis (faster than the CPU flash kernel here)."""
    s = torch.matmul(k, q.transpose(-1, -2)).float().mul_(q.shape[-1] ** -0.5)
    s = s.add_(mask.transpose(-1, -2))
    top = s.amax(-2, keepdim=True)
    e = s.sub_(top).exp_()
    z = e.sum(-2, keepdim=True)
    out = torch.matmul(e.to(v.dtype).transpose(-1, -2), v) / z.transpose(-1, -2).to(v.dtype)
    return out, (top + z.log()).squeeze(-2)


def _combine(og, lg, op, lp):
    """Attention over the union of two key sets from each part's output and log-sum-exp."""
    return torch.lerp(og, op, torch.sigmoid(lp - lg).unsqueeze(-1).to(og.dtype))
