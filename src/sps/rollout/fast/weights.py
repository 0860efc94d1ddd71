"""The model as the sampler sees it: a Llama's weights detached into the sampler's layout
(q/k/v and gate/up stacked, the model's own rotary table), and the forward passes both decode
paths share: prefill of left-padded prompt groups, and one new token per row with the
attention supplied by the caller (each path keeps its K/V cache its own way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def supports(model) -> str | None:
    """None when this sampler can run `model`, else the reason it cannot."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) != "llama":
        return f"model_type {getattr(cfg, 'model_type', None)!r} is not 'llama'"
    if getattr(cfg, "pretraining_tp", 1) not in (None, 1):
        return "pretraining_tp > 1"
    layer = model.model.layers[0].self_attn
    if hasattr(layer, "q_norm") or hasattr(layer, "k_norm"):
        return "attention with q/k norms"
    return None


# ---------------------------------------------------------------- the model's weights


@dataclass
class _Layer:
    ln1: torch.Tensor
    ln2: torch.Tensor
    wqkv: torch.Tensor  # q, k and v projections stacked: one matmul
    bqkv: torch.Tensor | None
    wo: torch.Tensor
    bo: torch.Tensor | None
    wgu: torch.Tensor  # gate and up projections stacked
    bgu: torch.Tensor | None
    wd: torch.Tensor
    bd: torch.Tensor | None


def _cat(parts: list[torch.Tensor | None], dtype) -> torch.Tensor | None:
    if any(p is None for p in parts):
        return None
    return torch.cat([p.detach() for p in parts]).to(dtype).contiguous()


class Weights:
    """Detached copies of a LlamaForCausalLM's weights in the sampler's layout and dtype
    (bf16 on CUDA, like the bf16 autocast of the hf backend; fp32 on the CPU)."""

    def __init__(self, model, max_len: int, dtype: torch.dtype):
        reason = supports(model)
        if reason:
            raise NotImplementedError(f"fast sampler: {reason}")
        cfg = model.config
        self.n_heads = cfg.num_attention_heads
        self.n_kv = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads
        self.eps = cfg.rms_norm_eps
        self.act = F.silu if cfg.hidden_act in ("silu", "swish") else None
        self.dtype = dtype
        inner = model.model
        self.device = inner.embed_tokens.weight.device
        with torch.no_grad():
            self.embed = inner.embed_tokens.weight.detach().to(dtype)
            self.norm = inner.norm.weight.detach().to(dtype)
            self.head = model.get_output_embeddings().weight.detach().to(dtype)  # tied or not
            self.layers = []
            for layer in inner.layers:
                att, mlp = layer.self_attn, layer.mlp
                self._act_module = mlp.act_fn
                proj = (att.q_proj, att.k_proj, att.v_proj)
                self.layers.append(
                    _Layer(
                        ln1=layer.input_layernorm.weight.detach().to(dtype),
                        ln2=layer.post_attention_layernorm.weight.detach().to(dtype),
                        wqkv=_cat([p.weight for p in proj], dtype),
                        bqkv=_cat([p.bias for p in proj], dtype),
                        wo=att.o_proj.weight.detach().to(dtype),
                        bo=_bias(att.o_proj, dtype),
                        wgu=_cat([mlp.gate_proj.weight, mlp.up_proj.weight], dtype),
                        bgu=_cat([mlp.gate_proj.bias, mlp.up_proj.bias], dtype),
                        wd=mlp.down_proj.weight.detach().to(dtype),
                        bd=_bias(mlp.down_proj, dtype),
                    )
                )
            # The model's own rotary module: any rope_type (scaling, attention factor) it knows.
            pos = torch.arange(max_len, device=self.device)[None]
            probe = torch.zeros(1, device=self.device, dtype=torch.float32)
            cos, sin = inner.rotary_emb(probe, pos)
            self.cos, self.sin = cos[0].to(dtype), sin[0].to(dtype)  # [max_len, head_dim]
            half = self.head_dim // 2
            self.sin_signed = torch.cat([-self.sin[:, :half], self.sin[:, half:]], dim=-1)

    def tensors(self) -> list[torch.Tensor]:
        fields = ("ln1", "ln2", "wqkv", "bqkv", "wo", "bo", "wgu", "bgu", "wd", "bd")
        per_layer = [getattr(lw, f) for lw in self.layers for f in fields]
        return [self.embed, self.norm, self.head, self.cos, self.sin, self.sin_signed, *per_layer]

    def copy_from(self, other: Weights) -> None:
        """Take `other`'s values into this object's tensors (whose addresses graphs hold)."""
        for mine, theirs in zip(self.tensors(), other.tensors(), strict=True):
            if mine is not None:
                mine.copy_(theirs)

    def rms(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """LlamaRMSNorm: w * x / sqrt(mean(x^2) + eps), the statistics in fp32."""
        if x.dtype == torch.float32:  # one fused op, the same arithmetic
            return F.rms_norm(x, w.shape, w, self.eps)
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return w * xf.to(x.dtype)

    def mlp(self, x: torch.Tensor, lw: _Layer) -> torch.Tensor:
        gate, up = F.linear(x, lw.wgu, lw.bgu).chunk(2, dim=-1)
        act = self.act(gate) if self.act is not None else self._act_module(gate)
        return F.linear(act * up, lw.wd, lw.bd)

    def residual(self, x: torch.Tensor, a: torch.Tensor, wt: torch.Tensor, bias) -> torch.Tensor:
        """x + a @ wt.T, the add fused into the matmul when there is no bias."""
        if bias is None:
            return torch.addmm(x, a, wt.t())
        return x + F.linear(a, wt, bias)


def _bias(linear, dtype) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return (x * cos) + (_rotate_half(x) * sin)  # the op order of transformers' apply_rotary_pos_emb


def _rope_signed(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """_rope with the sign of rotate_half moved into sin ([-sin_1, sin_2]): the halves swap
    by one roll, and the arithmetic is the same ((-a) * s == a * (-s) exactly)."""
    swapped = x.roll(x.shape[-1] // 2, -1)
    return (x * cos) + (swapped * sin_signed)


# ---------------------------------------------------------------- prefill


def prefill(w: Weights, ids: torch.Tensor, plen: torch.Tensor):
    """Run U left-padded prompts [U, W] once: (last-position logits [U, V], per layer (K, V)
    of shape [U, kv_heads, W, head_dim]). Pad queries attend to themselves only, so no row of
    the attention is empty (an all-masked row would make NaNs that leak through 0 * NaN)."""
    n, width = ids.shape
    ar = torch.arange(width, device=ids.device)
    offset = (width - plen)[:, None]  # first real slot of each row
    pos = (ar[None] - offset).clamp(min=0)
    valid = ar[None] >= offset
    causal = ar[None, :] <= ar[:, None]
    mask = (causal[None] & valid[:, None, :]) | torch.eye(
        width, dtype=torch.bool, device=ids.device
    )
    mask = mask[:, None]  # [U, 1, W, W]
    cos, sin = w.cos[pos][:, :, None], w.sin[pos][:, :, None]  # [U, W, 1, D]
    x = w.embed[ids]
    nq, nkv, d = w.n_heads, w.n_kv, w.head_dim
    kvs = []
    for lw in w.layers:
        h = w.rms(x, lw.ln1)
        qkv = F.linear(h, lw.wqkv, lw.bqkv).view(n, width, nq + 2 * nkv, d)
        q, k, v = qkv.split([nq, nkv, nkv], dim=2)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        kvs.append((k.contiguous(), v.contiguous()))
        if nkv != nq:
            k, v = (z.repeat_interleave(nq // nkv, dim=1) for z in (k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + F.linear(a.transpose(1, 2).reshape(n, width, nq * d), lw.wo, lw.bo)
        x = x + w.mlp(w.rms(x, lw.ln2), lw)
    logits = F.linear(w.rms(x[:, -1], w.norm), w.head).float()
    return logits, kvs


# ---------------------------------------------------------------- one new token per row


def _forward(w: Weights, tok: torch.Tensor, pos: torch.Tensor, attn) -> torch.Tensor:
    """Logits [n, V] of one new token per row (token `tok` at rotary position `pos`);
    attn(layer, q [n, heads, d], k, v [n, kv_heads, d]) stores k, v and returns [n, heads * d]."""
    nq, nkv, d = w.n_heads, w.n_kv, w.head_dim
    n = tok.shape[0]
    cos, sin = w.cos.index_select(0, pos)[:, None], w.sin_signed.index_select(0, pos)[:, None]
    x = w.embed.index_select(0, tok)
    for i, lw in enumerate(w.layers):
        qkv = F.linear(w.rms(x, lw.ln1), lw.wqkv, lw.bqkv).view(n, nq + 2 * nkv, d)
        qk = _rope_signed(qkv[:, : nq + nkv], cos, sin)  # q and k heads in one go
        a = attn(i, qk[:, :nq], qk[:, nq:], qkv[:, nq + nkv :])
        x = w.residual(x, a, lw.wo, lw.bo)
        x = x + w.mlp(w.rms(x, lw.ln2), lw)
    return F.linear(w.rms(x, w.norm), w.head).float()


# ---------------------------------------------------------------- prompt groups


@dataclass
class _Group:
    prompt: int  # index into the prompts
    first: int  # flat (output) index of its first row in this chunk
    count: int  # its rows in this chunk


def _groups(flat: list[int], start: int, stop: int) -> list[_Group]:
    out: list[_Group] = []
    for i in range(start, stop):
        if out and out[-1].prompt == flat[i]:
            out[-1].count += 1
        else:
            out.append(_Group(flat[i], i, 1))
    return out


def _prefill_groups(w: Weights, groups: list[_Group], prompt_ids, width: int, pad: int):
    """Prefill each group's prompt once: (logits [U, V], per-layer (K, V) [U, kv, W, d],
    additive pad mask [U, 1, 1, W], prompt lengths [U])."""
    dev = w.device
    rows = [prompt_ids[x.prompt] for x in groups]
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=dev)
    plen = torch.tensor([len(r) for r in rows], device=dev)
    logits, kvs = prefill(w, ids, plen)
    slot = torch.arange(width, device=dev)
    pmask = torch.zeros(len(rows), 1, 1, width, device=dev).masked_fill(
        (slot[None] < (width - plen)[:, None]).view(len(rows), 1, 1, width), -math.inf
    )
    return logits, kvs, pmask, plen
