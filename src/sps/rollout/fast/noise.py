"""Counter-based noise and drawing: one uniform per (seed, prompt, sample, step) from a
32-bit hash, with no generator state (so the decode step is capturable as a CUDA graph),
transformers' temperature / top-k / top-p warpers, and the draw by inversion of the CDF.
A sample thus depends only on (seed, prompt index, sample index) and the model.
"""

from __future__ import annotations

import math

import torch

from sps.rollout.base import SampleParams

_MASK32 = 0xFFFFFFFF


# ---------------------------------------------------------------- counter-based noise


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 for int64 x in [0, 2^32), without int64 overflow (split c in 16-bit
    halves: x * half < 2^48)."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 (C. Wellons' hash-prospector): a bijection of [0, 2^32) with full avalanche."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniforms(seed: int, prompt_idx: torch.Tensor, sample_idx: torch.Tensor, steps: int):
    """u[r, t] in (0, 1], a function of (seed, prompt_idx[r], sample_idx[r], t) only.

    Two 32-bit lanes k1, k2 key a row (so distinct rows collide with probability ~2^-64);
    u = (top 24 bits of mix(mix(k1 ^ mix(t ^ c)) ^ k2) + 1) / 2^24, exact in float32.
    """
    seed = int(seed) & ((1 << 64) - 1)
    lanes = []
    for salt in (0x9E3779B9, 0x85EBCA6B):
        k = _mix32(sample_idx.long() ^ salt)
        k = _mix32(k ^ prompt_idx.long())
        k = _mix32(k ^ (seed & _MASK32))
        lanes.append(_mix32(k ^ (seed >> 32)))
    t = _mix32(torch.arange(steps, device=prompt_idx.device) ^ 0x632BE5AB)
    h = _mix32(_mix32(lanes[0][:, None] ^ t[None, :]) ^ lanes[1][:, None])
    return ((h >> 8) + 1).float() / float(1 << 24)


# ---------------------------------------------------------------- sampling


def process_logits(logits: torch.Tensor, params: SampleParams) -> torch.Tensor:
    """transformers' warpers in their order: temperature, top-k (keeps ties with the k-th),
    top-p (drops the ascending-sorted prefix of mass <= 1 - top_p, keeps at least one)."""
    logits = logits.float()
    if params.temperature != 1.0:
        logits = logits / params.temperature
    if params.top_k > 0:
        k = min(params.top_k, logits.shape[-1])
        kth = torch.topk(logits, k).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if params.top_p < 1.0:
        srt, order = torch.sort(logits, descending=False)
        cum = srt.softmax(-1).cumsum(-1)
        remove = cum <= 1 - params.top_p
        remove[..., -1:] = False
        logits = logits.masked_fill(remove.scatter(-1, order, remove), -math.inf)
    return logits


def draw(logits: torch.Tensor, u: torch.Tensor, params: SampleParams, which=None):
    """(token, log-prob) per drawing row: the first token whose cumulative probability
    reaches u * total (inversion; a zero-probability token is never chosen since u > 0).
    Drawing row r uses logits row which[r] (default: row r), so rows that share a state
    share the softmax and the cumulative sum."""
    if params.top_k == 1:  # greedy: the processed distribution is a point mass
        tok = logits.argmax(-1)
        tok = tok if which is None else tok.index_select(0, which)
        return tok, torch.zeros(tok.shape[0], device=logits.device)
    logp = process_logits(logits, params).log_softmax(-1)
    cdf = logp.exp().cumsum(-1)
    if which is not None:
        cdf = cdf.index_select(0, which)
    tok = (cdf < u[:, None] * cdf[:, -1:]).sum(-1)
    if which is None:
        return tok, logp.gather(-1, tok[:, None]).squeeze(-1)
    return tok, logp.view(-1).index_select(0, which * logp.shape[-1] + tok)
