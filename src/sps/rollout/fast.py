"""A fast sampler of our own for Llama-architecture causal LMs (the default rollout backend).

It decodes with the model's own weights (embed_tokens; q/k/v and gate/up projections stacked
into one matmul each; the model's rotary table; RMSNorm; MLP; lm_head, tied or not) instead of
`model.generate`, on two paths that draw exactly the same samples:

- Prefix dedup (default off CUDA). Rows with the same prompt and the same tokens so far have
  the same next-token distribution, so the model runs once per distinct prefix (a "state")
  and every row draws its own token from its state's distribution with its own noise. After
  each draw the states are the distinct (state, token) pairs of the rows still running; their
  caches are gathered from their parents'. This is the "prefill each prompt once and share its
  cache across its samples" of the issue carried on past the prompt: a trained model's samples
  share long prefixes (the tiny countdown model: 3-4 rows per state at n = 64-256), and rows
  that stopped leave the batch at once.
- Static (default on CUDA). Fixed buffers in prompt-group layout (row u * m + j is sample j
  of group u, padded with stopped filler rows), the step index in a device tensor, and the
  decode step captured as one CUDA graph per (groups, rows per group) shape; every
  CHECK_EVERY steps the host reads the stop flags once and squeezes finished rows out,
  bucketing rows per group to powers of two so that few shapes (graphs) occur. Untested on a
  GPU (none was available when this was written); the same step runs uncaptured on the CPU
  in the tests.

Both paths:

- Prefill each distinct prompt once (left padded, pad keys masked, positions counted from the
  first real token as `generate` does) and keep its K/V in one [groups, kv_heads, W, head_dim]
  tensor per layer that all its samples read: no per-sample copy of the prompt cache.
- Generated tokens' K/V go to a preallocated [rows, kv_heads, C, head_dim] cache per layer,
  step t writing slot t - 1 (no concatenation). On the CPU, C grows by GEN_BLOCK slots so that
  the attended cache is one contiguous tensor (a strided slice of a larger buffer costs the
  CPU attention kernel a copy); on the static path it is fixed.
- Attention in two parts, combined exactly by their log-sum-exps l_p, l_g:
  out = out_g + sigmoid(l_p - l_g) * (out_p - out_g). The prompt part runs a group's rows
  against its prompt's keys as one matmul per (group, kv head); the generated part is per
  row, with aten's CPU flash attention (F.scaled_dot_product_attention's kernel, called
  directly for its log-sum-exp) or a plain fp32-softmax form on the static path. The
  G = heads / kv_heads query heads that share a kv head act as G query positions of it, so
  grouped-query attention needs no repeated K/V.
- Sampling by inversion with counter-based noise: sample i of prompt p draws its token t with
  u = hash(seed, p, i, t) in (0, 1] and takes the first token (in vocabulary order) whose
  cumulative probability reaches u * total. A sample is thus a function of (seed, prompt
  index, sample index) and the model only: not of the batch size, the other rows, the path or
  how many rows are still running. One uniform per row and step (Gumbel-max would need one
  per vocabulary entry), hashed for the whole chunk up front and with no generator state, so
  that the decode step is capturable as a CUDA graph. The hash is lowbias32 (an avalanching
  32-bit mixer) chained over two 32-bit lanes of the key; the top 24 bits make u.
- Temperature, top-k and top-p as transformers' warpers (same order, same tie and
  keep-at-least-one rules); log-probs are those of the processed distribution, like
  `rollout.hf` (its `output_scores`). top_k == 1 is greedy decoding (argmax, log-prob 0).
  Each row stops at EOS (included in its tokens) or after max_new_tokens.
"""

from __future__ import annotations

import math
import warnings
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sps.rollout.base import Rollouts, SampleParams, encode_prompts

CHECK_EVERY = 8  # static mode: decode steps between host reads of the stop flags
MIN_BUCKET = 4  # static mode: fewest rows per group in a captured shape
GEN_BLOCK = 16  # generated-token cache: grows by this many slots (CPU), a multiple of it (static)

_MASK32 = 0xFFFFFFFF


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


# ---------------------------------------------------------------- CPU path: dedup by prefix


def _run_dedup(w, groups: list[_Group], prompt_ids, params, seed, eos, pad, out) -> None:
    """Decode one chunk on *states*: rows with the same prompt and the same tokens so far
    have the same next-token distribution, so the model runs once per distinct prefix and
    each row draws its own token from its state's distribution with its own noise (exact).
    A state's cache holds its generated tokens' K/V; after each draw the new states are the
    distinct (state, token) pairs of the rows still running, and their caches are gathered
    from their parents'. Stopped rows and states drop out, and so do prompts with no row
    left. Low-entropy models (like the trained tiny one) have many rows per state."""
    dev, max_new, vocab = w.device, params.max_new_tokens, w.head.shape[0]
    nkv, d = w.n_kv, w.head_dim
    width = max(len(prompt_ids[x.prompt]) for x in groups)
    logits, kvs, pmask, plen = _prefill_groups(w, groups, prompt_ids, width, pad)
    kp, vp = [k for k, _ in kvs], [v for _, v in kvs]
    first = torch.tensor([x.first for x in groups], device=dev)
    count = torch.tensor([x.count for x in groups], device=dev)
    U = len(groups)
    row_group = torch.arange(U, device=dev).repeat_interleave(count)
    rows = first.repeat_interleave(count) + (
        torch.arange(row_group.shape[0], device=dev) - (count.cumsum(0) - count)[row_group]
    )  # output (flat) row of each chunk row
    prompt = torch.tensor([x.prompt for x in groups], device=dev)[row_group]
    u_all = uniforms(seed, prompt, rows % params.n, max_new)
    live = torch.arange(rows.shape[0], device=dev)  # chunk rows still running
    state_of = row_group  # state of each live row; the first states are the prompts
    group_of = torch.arange(U, device=dev)  # group of each state
    cap = min(GEN_BLOCK, max(max_new - 1, 1))
    kg = [torch.zeros(U, nkv, cap, d, dtype=w.dtype, device=dev) for _ in w.layers]
    vg = [torch.zeros(U, nkv, cap, d, dtype=w.dtype, device=dev) for _ in w.layers]
    gen_mask = torch.zeros(max_new, max_new, device=dev)
    gen_mask.masked_fill_(torch.ones_like(gen_mask, dtype=torch.bool).triu(), -math.inf)
    state_tok = None
    for t in range(max_new):
        if t > 0:
            logits = _dedup_forward(
                w, state_tok, group_of, plen, t, kg, vg, kp, vp, pmask, gen_mask[t : t + 1, :cap]
            )
        tok, lp = draw(logits, u_all[live, t], params, state_of)
        out[0][rows[live], t] = tok
        out[1][rows[live], t] = lp
        going = tok != eos
        if t == max_new - 1 or not bool(going.any()):
            break
        live, key = live[going], state_of[going] * vocab + tok[going]
        key, state_of = torch.unique(key, sorted=True, return_inverse=True)
        parent, state_tok = key // vocab, key % vocab
        group_of = group_of.index_select(0, parent)
        if t >= cap:  # full: the next write (slot t) needs room
            cap = min(cap + GEN_BLOCK, max_new - 1)
        for caches in (kg, vg):
            for i, z in enumerate(caches):
                caches[i] = _gather_grow(z, parent, cap)
        counts = torch.bincount(group_of, minlength=kp[0].shape[0])
        if bool((counts == 0).any()):  # drop prompts with no state left
            keep = (counts > 0).nonzero().squeeze(1)
            group_of = (torch.cumsum(counts > 0, 0) - 1).index_select(0, group_of)
            kp = [z.index_select(0, keep) for z in kp]
            vp = [z.index_select(0, keep) for z in vp]
            pmask, plen = pmask.index_select(0, keep), plen.index_select(0, keep)


def _gather_grow(z: torch.Tensor, parent: torch.Tensor, cap: int) -> torch.Tensor:
    """Rows `parent` of cache z, widened to `cap` slots (new slots zero: masked, not NaN)."""
    z = z.index_select(0, parent)
    if z.shape[2] == cap:
        return z
    extra = torch.zeros(*z.shape[:2], cap - z.shape[2], z.shape[3], dtype=z.dtype, device=z.device)
    return torch.cat([z, extra], dim=2)


def _dedup_forward(w, tok, group_of, plen, t, kg, vg, kp, vp, pmask, gen_mask):
    """One decode step of the states: feed token t - 1, write it to slot t - 1, and attend
    to the group's prompt (queries scattered to a [groups, rows] layout for that) and to
    the state's own generated tokens."""
    nq, nkv, d = w.n_heads, w.n_kv, w.head_dim
    g, n, n_groups = nq // nkv, tok.shape[0], kp[0].shape[0]
    counts = torch.bincount(group_of, minlength=n_groups)
    m = int(counts.max())
    start = torch.cumsum(counts, 0) - counts
    slot = group_of * m + torch.arange(n, device=tok.device) - start.index_select(0, group_of)
    cap = kg[0].shape[2]
    gmask = gen_mask.view(1, 1, 1, cap)

    def attn(i, q, k, v):
        kg[i][:, :, t - 1] = k
        vg[i][:, :, t - 1] = v
        qpad = q.new_zeros(n_groups * m, nq, d).index_copy_(0, slot, q)
        qpad = qpad.view(n_groups, m, nkv, g, d).permute(0, 2, 1, 3, 4)
        op, lp = attend_shared(qpad.reshape(n_groups, nkv, m * g, d), kp[i], vp[i], pmask)
        op = op.view(n_groups, nkv, m, g, d).transpose(1, 2).reshape(n_groups * m, nkv, g, d)
        lp = lp.view(n_groups, nkv, m, g).transpose(1, 2).reshape(n_groups * m, nkv, g)
        og, lg = attend(q.reshape(n, nkv, g, d), kg[i], vg[i], gmask)
        a = _combine(og, lg, op.index_select(0, slot), lp.index_select(0, slot))
        return a.reshape(n, nq * d)

    return _forward(w, tok, plen.index_select(0, group_of) + (t - 1), attn)


# ---------------------------------------------------------------- static path (CUDA graphs)


class _Batch:
    """Fixed buffers of the static path, allocated once for the largest chunk; a chunk's
    rows sit in prompt-group layout, row u * m + j being row j of group u, padded with
    stopped filler rows. Compaction moves rows down in place, so the prefix views that a
    CUDA graph captured keep their addresses.

    Per group: kp, vp (per layer [U, kv_heads, W, head_dim]), pmask ([U, 1, 1, W]), plen.
    Per row: kg, vg (per layer [rows, kv_heads, C, head_dim]), tok (last token), u
    ([rows, max_new] noise), out_tok / out_lp, done, rows (output row; filler: scratch).
    t is the step index on the device; gen_mask[t] masks generated slots >= t.
    """

    def __init__(self, w: Weights, groups: int, m: int, width: int, cap: int, max_new: int):
        dev, nkv, d, b = w.device, w.n_kv, w.head_dim, groups * m
        self.U, self.m = groups, m
        z = torch.zeros
        self.kp = [z(groups, nkv, width, d, dtype=w.dtype, device=dev) for _ in w.layers]
        self.vp = [z(groups, nkv, width, d, dtype=w.dtype, device=dev) for _ in w.layers]
        self.pmask = z(groups, 1, 1, width, device=dev)
        self.plen = z(groups, dtype=torch.long, device=dev)
        self.kg = [z(b, nkv, cap, d, dtype=w.dtype, device=dev) for _ in w.layers]
        self.vg = [z(b, nkv, cap, d, dtype=w.dtype, device=dev) for _ in w.layers]
        self.tok = z(b, dtype=torch.long, device=dev)
        self.u = torch.ones(b, max_new, device=dev)
        self.out_tok = z(b, max_new, dtype=torch.long, device=dev)
        self.out_lp = z(b, max_new, device=dev)
        self.done = torch.ones(b, dtype=torch.bool, device=dev)
        self.rows = z(b, dtype=torch.long, device=dev)
        self.t = torch.ones((), dtype=torch.long, device=dev)
        slot, step = torch.arange(cap, device=dev), torch.arange(max_new + 1, device=dev)
        self.gen_mask = z(max_new + 1, cap, device=dev).masked_fill(
            slot[None] >= step[:, None], -math.inf
        )

    @property
    def b(self) -> int:
        return self.U * self.m

    def compact(self, idx: torch.Tensor, m: int, filler: torch.Tensor, scratch: int) -> None:
        """Rows `idx` of the current layout become the new layout with m rows per group."""
        b, n = self.b, idx.numel()
        for z in [self.tok, self.u, self.out_tok, self.out_lp, self.rows, *self.kg, *self.vg]:
            z[:n] = z[:b].index_select(0, idx)  # index_select first: the ranges overlap
        self.m = m
        self.done[:n] = filler
        self.rows[:n].masked_fill_(filler, scratch)


def _static_step(w: Weights, bt: _Batch, params: SampleParams, eos: int) -> None:
    """Feed every row its last token and draw token bt.t; fixed shapes and addresses, no
    host sync (capturable as a CUDA graph)."""
    nq, nkv, d = w.n_heads, w.n_kv, w.head_dim
    g, U, m, b = nq // nkv, bt.U, bt.m, bt.b
    step = bt.t
    slot = (step - 1).view(1)
    gmask = bt.gen_mask.index_select(0, step.view(1)).view(1, 1, 1, -1)

    def attn(i, q, k, v):
        kg, vg = bt.kg[i][:b], bt.vg[i][:b]
        kg.index_copy_(2, slot, k[:, :, None])
        vg.index_copy_(2, slot, v[:, :, None])
        # the group's m rows x g heads are the query positions of its prompt's kv heads
        qp = q.reshape(U, m, nkv, g, d).permute(0, 2, 1, 3, 4).reshape(U, nkv, m * g, d)
        op, lp = attend_shared(qp, bt.kp[i][:U], bt.vp[i][:U], bt.pmask[:U])
        og, lg = attend(q.reshape(b, nkv, g, d), kg, vg, gmask, math_form=True)
        op = op.reshape(U, nkv, m, g, d).transpose(1, 2).reshape(b, nkv, g, d)
        lp = lp.reshape(U, nkv, m, g).transpose(1, 2).reshape(b, nkv, g)
        return _combine(og, lg, op, lp).reshape(b, nq * d)

    pos = bt.plen[:U, None].expand(U, m).reshape(b) + (step - 1)  # no sync: capturable
    logits = _forward(w, bt.tok[:b], pos, attn)
    col = step.view(1)
    tok, lp_tok = draw(logits, bt.u[:b].index_select(1, col).squeeze(1), params)
    bt.out_tok[:b].index_copy_(1, col, tok[:, None])
    bt.out_lp[:b].index_copy_(1, col, lp_tok[:, None])
    bt.done[:b] |= tok == eos
    bt.tok[:b] = tok
    bt.t += 1


class _Graphs:
    """CUDA graphs of the static step, one per (groups, rows per group) shape, captured at
    first use into one memory pool."""

    def __init__(self, w: Weights, bt: _Batch, params: SampleParams, eos: int):
        self.w, self.bt, self.params, self.eos = w, bt, params, eos
        self.graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self.pool = torch.cuda.graph_pool_handle()
        self.failed = False

    def replay(self) -> None:
        key = (self.bt.U, self.bt.m)
        if key not in self.graphs and not self.failed:
            try:
                self.graphs[key] = self._capture()
            except RuntimeError as exc:  # never let the optimisation break sampling
                msg = f"fast sampler: CUDA graph capture failed, running eagerly: {exc}"
                warnings.warn(msg, stacklevel=2)
                self.failed = True
        if self.failed:
            _static_step(self.w, self.bt, self.params, self.eos)
        else:
            self.graphs[key].replay()

    def _capture(self) -> torch.cuda.CUDAGraph:
        bt = self.bt
        # Warm-up and capture run the step for real: save what it changes, restore after.
        # (Its cache writes go to the current slot, which the real step rewrites first.)
        names = ["t", "tok", "done", "out_tok", "out_lp"]
        saved = {n: getattr(bt, n).clone() for n in names}
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    bt.t.copy_(saved["t"])
                    _static_step(self.w, bt, self.params, self.eos)
            torch.cuda.current_stream().wait_stream(stream)
            bt.t.copy_(saved["t"])
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                _static_step(self.w, bt, self.params, self.eos)
        finally:
            for n in names:
                getattr(bt, n).copy_(saved[n])
        return graph


def _bucket(n: int, top: int) -> int:
    """Smallest power of two >= n (at least MIN_BUCKET), at most `top`."""
    b = MIN_BUCKET
    while b < n:
        b *= 2
    return min(b, top)


def _run_static(w, bt: _Batch, gr, groups, prompt_ids, params, seed, eos, pad, out, scratch):
    """One chunk on the static path: prefill, first token, then the captured (or eager)
    static step, with a stop check and compaction every CHECK_EVERY steps."""
    dev = w.device
    U, m = len(groups), max(x.count for x in groups)
    bt.U, bt.m = U, m
    b, width = bt.b, bt.kp[0].shape[2]
    logits, kvs, pmask, plen = _prefill_groups(w, groups, prompt_ids, width, pad)
    for i, (k, v) in enumerate(kvs):
        bt.kp[i][:U] = k
        bt.vp[i][:U] = v
    bt.pmask[:U], bt.plen[:U] = pmask, plen
    j = torch.arange(m, device=dev)
    count = torch.tensor([x.count for x in groups], device=dev)
    first = torch.tensor([x.first for x in groups], device=dev)
    filler = (j[None] >= count[:, None]).reshape(b)
    flat_idx = (first[:, None] + j[None]).reshape(b)
    prompt = torch.tensor([x.prompt for x in groups], device=dev).repeat_interleave(m)
    bt.rows[:b] = flat_idx.masked_fill(filler, scratch)
    bt.u[:b] = uniforms(seed, prompt, flat_idx % params.n, params.max_new_tokens)
    tok, lp = draw(logits, bt.u[:b, 0], params, torch.arange(U, device=dev).repeat_interleave(m))
    bt.out_tok[:b, 0] = tok
    bt.out_lp[:b, 0] = lp
    bt.done[:b] = (tok == eos) | filler
    bt.tok[:b] = tok
    bt.t.fill_(1)
    for t in range(1, params.max_new_tokens):
        if t % CHECK_EVERY == 1:
            live = (~bt.done[: bt.b]).view(bt.U, bt.m).sum(1).tolist()  # the only host sync
            if sum(live) == 0:
                break
            _compact_static(bt, live, out, scratch)
        if gr is not None:
            gr.replay()
        else:
            _static_step(w, bt, params, eos)
    _flush(bt, out)


def _compact_static(bt: _Batch, live: list[int], out, scratch: int) -> None:
    """Shrink the rows per group to the next power of two that holds every group's live
    rows (few distinct shapes, so few graphs)."""
    m = _bucket(max(live), bt.m)
    if m >= bt.m:
        return
    done = bt.done[: bt.b].view(bt.U, bt.m).tolist()
    idx, filler = [], []
    for u in range(bt.U):
        rows = [u * bt.m + j for j, d in enumerate(done[u]) if not d]
        idx += rows + [u * bt.m] * (m - len(rows))
        filler += [False] * len(rows) + [True] * (m - len(rows))
    dev = bt.done.device
    _flush(bt, out)
    bt.compact(torch.tensor(idx, device=dev), m, torch.tensor(filler, device=dev), scratch)


def _flush(bt: _Batch, out) -> None:
    """Copy the rows' outputs to their rows of `out` (filler rows to the scratch row)."""
    rows = bt.rows[: bt.b]
    out[0].index_copy_(0, rows, bt.out_tok[: bt.b])
    out[1].index_copy_(0, rows, bt.out_lp[: bt.b])


_GRAPH_CACHE: dict[str, tuple] = {}  # the last static setup with graphs, reused by the next call


def _static_setup(model, w: Weights, key: tuple, graphs: bool):
    """(weights, buffers, graphs) of the static path. With graphs, the last setup is kept:
    a later call on the same model with the same shapes and settings (each RL step, each
    shard) copies the current weights into the captured tensors and replays the graphs
    instead of capturing them again."""
    U, m, width, cap, max_new, params, eos = key
    if not graphs:
        return w, _Batch(w, U, m, width, cap, max_new), None
    last = _GRAPH_CACHE.get("last")
    if last is not None and last[0]() is model and last[1] == key:
        _, _, cached, bt, gr = last
        cached.copy_from(w)
        return cached, bt, gr
    _GRAPH_CACHE.clear()
    bt = _Batch(w, U, m, width, cap, max_new)
    gr = _Graphs(w, bt, params, eos)
    _GRAPH_CACHE["last"] = (weakref.ref(model), key, w, bt, gr)
    return w, bt, gr


# ---------------------------------------------------------------- the sampler


@dataclass
class Samples:
    """Raw output, one row per sample (prompt-major, n per prompt): tokens [N, max_new]
    (arbitrary after the stop), per-token log-probs [N, max_new] (0 after the stop), the
    number of generated tokens and whether the row stopped at EOS."""

    prompt_idx: list[int]
    tokens: torch.Tensor
    token_logprobs: torch.Tensor
    lengths: list[int]
    stopped: list[bool]


@torch.no_grad()
def sample(
    model,
    prompt_ids: list[list[int]],
    params: SampleParams,
    seed: int,
    eos: int,
    pad: int,
    static: bool | None = None,
    graphs: bool | None = None,
) -> Samples:
    """`params.n` samples of every prompt, in chunks of `params.batch_size` rows of the
    prompt-major list. `static` picks the fixed-shape path (default on CUDA) over the
    prefix-dedup path (default elsewhere); `graphs` captures the static step as CUDA graphs
    (default on CUDA)."""
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    static = cuda if static is None else static
    graphs = (cuda and static) if graphs is None else graphs
    if graphs and not (static and cuda):
        raise ValueError("CUDA graphs need the static path on a CUDA device")
    if min(map(len, prompt_ids)) == 0:
        raise ValueError("empty prompt (and the tokenizer has no BOS token)")
    max_new, n = params.max_new_tokens, params.n
    flat = [p for p in range(len(prompt_ids)) for _ in range(n)]
    chunks = [
        _groups(flat, s, min(s + params.batch_size, len(flat)))
        for s in range(0, len(flat), params.batch_size)
    ]
    width = max(map(len, prompt_ids))
    w = Weights(model, width + max_new, torch.bfloat16 if cuda else torch.float32)
    scratch = len(flat)  # output row that the static path's filler rows write to
    out = (
        torch.zeros(len(flat) + 1, max_new, dtype=torch.long, device=device),
        torch.zeros(len(flat) + 1, max_new, device=device),
    )
    if static:  # one set of buffers for every chunk, prompts padded to the widest of all
        U = max(len(c) for c in chunks)
        m = max(x.count for c in chunks for x in c)
        cap = -(-max(max_new - 1, 1) // GEN_BLOCK) * GEN_BLOCK  # aligned for the kernels
        w, bt, gr = _static_setup(model, w, (U, m, width, cap, max_new, params, eos), graphs)
        for groups in chunks:
            _run_static(w, bt, gr, groups, prompt_ids, params, seed, eos, pad, out, scratch)
    else:
        for groups in chunks:
            _run_dedup(w, groups, prompt_ids, params, seed, eos, pad, out)
    return _finish(flat, out[0][:-1], out[1][:-1], eos)


def _finish(flat: list[int], tokens: torch.Tensor, logprobs: torch.Tensor, eos: int) -> Samples:
    max_new = tokens.shape[1]
    is_eos = tokens == eos
    stopped = is_eos.any(1)
    lengths = torch.where(stopped, is_eos.int().argmax(1) + 1, max_new)
    keep = torch.arange(max_new, device=tokens.device)[None] < lengths[:, None]
    return Samples(flat, tokens.cpu(), (logprobs * keep).cpu(), lengths.tolist(), stopped.tolist())


def generate(model, tokenizer, prompts: list[str], params: SampleParams, seed: int) -> Rollouts:
    """Same contract as `rollout.hf.generate`; sample i of prompt p depends only on
    (seed, p, i) and the model, not on batch_size."""
    prompt_ids = encode_prompts(tokenizer, prompts)
    s = sample(model, prompt_ids, params, seed, tokenizer.eos_token_id, tokenizer.pad_token_id)
    out = Rollouts(list(s.prompt_idx), [], [], [], [], prompt_ids)
    sums = s.token_logprobs.sum(1).tolist()
    for row, length, stop, lp in zip(s.tokens.tolist(), s.lengths, s.stopped, sums, strict=True):
        out.token_ids.append(row[:length])
        out.texts.append(tokenizer.decode(row[:length], skip_special_tokens=True))
        out.logprobs.append(lp)
        out.finish.append("stop" if stop else "length")
    return out
