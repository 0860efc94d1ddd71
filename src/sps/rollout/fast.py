"""A fast sampler of our own for Llama-architecture causal LMs (the default rollout backend).

It runs the model's decode on its own modules' weights instead of `model.generate`:

- Shared prefill: each distinct prompt of a batch is run once (left padded to the batch's
  widest prompt W); its K/V rows are copied into the rows of its n samples, and the first
  token of every sample is drawn from that one prompt's logits.
- A preallocated KV cache per layer, shape [rows, kv_heads, W + max_new_tokens - 1, head_dim].
  Every row writes decode step t at the same slot W + t - 1 (so a step writes one column, no
  concatenation); pad slots are masked; rotary positions are per row (prompt length + t - 1),
  as `generate` numbers them for left-padded prompts.
- Attention through `F.scaled_dot_product_attention`. Grouped-query attention without repeating
  K/V: during decode the G = heads / kv_heads query heads that share a kv head are passed as G
  "query positions" of that kv head, which is exact because they all sit at the same position.
- Sampling by inversion with counter-based noise. Sample i of prompt p draws token t with
  u = hash(seed, p, i, t) in (0, 1] and picks the first token whose cumulative probability
  reaches u (the tokens in vocabulary order). A sample's tokens are thus a function of
  (seed, prompt index, sample index) and of the model only: not of the batch size, the other
  rows or how many rows are still running. One uniform per row and step (not one per
  vocabulary entry as in Gumbel-max), computed for the whole chunk up front, costs nothing in
  the loop and needs no generator state (so the decode step can be a CUDA graph). The hash
  is lowbias32 (an avalanching 32-bit mixer) chained over two 32-bit lanes; 24 bits make u.
- Temperature, top-k and top-p as transformers' warpers (same order, same tie and
  keep-at-least-one rules); log-probs are those of the processed distribution, like
  `rollout.hf` (its `output_scores`). top_k == 1 is greedy decoding (argmax, log-prob 0).
- Stop per row on EOS or max_new_tokens. Rows that stopped are dropped from the batch
  (compaction: their cache rows are squeezed out) once enough of them have stopped; on the CPU
  this is most of the gain over `generate`, which runs every row until the slowest one stops.
- On CUDA the decode step works on fixed buffers with the step index in a device tensor, and
  is captured as a CUDA graph for a few bucketed batch sizes (powers of two); the host reads
  the stop flags only every `CHECK_EVERY` steps. Untested: no GPU was available when this was
  written. The same static step runs (uncaptured) on the CPU in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sps.rollout.base import Rollouts, SampleParams, encode_prompts

CHECK_EVERY = 8  # CUDA: decode steps between host reads of the stop flags
COMPACT_FRACTION = 0.25  # CPU: squeeze out stopped rows once this share of the batch has stopped
MIN_BUCKET = 16  # CUDA: smallest captured batch size

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


def draw(logits: torch.Tensor, u: torch.Tensor, params: SampleParams):
    """(token, log-prob) per row: the first token whose cumulative probability reaches
    u * total (inversion; a zero-probability token is never chosen since u > 0)."""
    if params.top_k == 1:  # greedy: the processed distribution is a point mass
        return logits.argmax(-1), torch.zeros(logits.shape[0], device=logits.device)
    logp = process_logits(logits, params).log_softmax(-1)
    cdf = logp.exp().cumsum(-1)
    tok = (cdf < u[:, None] * cdf[:, -1:]).sum(-1)
    return tok, logp.gather(-1, tok[:, None]).squeeze(-1)


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

    def rms(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """LlamaRMSNorm: w * x / sqrt(mean(x^2) + eps), the statistics in fp32."""
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return w * xf.to(x.dtype)

    def mlp(self, x: torch.Tensor, lw: _Layer) -> torch.Tensor:
        gate, up = F.linear(x, lw.wgu, lw.bgu).chunk(2, dim=-1)
        act = self.act(gate) if self.act is not None else self._act_module(gate)
        return F.linear(act * up, lw.wd, lw.bd)


def _bias(linear, dtype) -> torch.Tensor | None:
    return None if linear.bias is None else linear.bias.detach().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return (x * cos) + (_rotate_half(x) * sin)  # the op order of transformers' apply_rotary_pos_emb


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
        kvs.append((k, v))
        if nkv != nq:
            k, v = (z.repeat_interleave(nq // nkv, dim=1) for z in (k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + F.linear(a.transpose(1, 2).reshape(n, width, nq * d), lw.wo, lw.bo)
        x = x + w.mlp(w.rms(x, lw.ln2), lw)
    logits = F.linear(w.rms(x[:, -1], w.norm), w.head).float()
    return logits, kvs


# ---------------------------------------------------------------- decode state


class _State:
    """Preallocated buffers of one batch; rows [0, b) are live, compaction moves rows down.

    cache: per layer K and V [rows, kv_heads, T, head_dim]; tok: last token per row; pos: its
    rotary position; valid: [rows, T] False at pad slots;
    u: [rows, max_new] noise; out_tok / out_lp: [rows, max_new] drawn tokens and log-probs;
    done: row has emitted EOS; rows: the output row each live row belongs to.
    """

    def __init__(self, w: Weights, rows: int, slots: int, max_new: int):
        dev, d = w.device, w.head_dim
        shape = (rows, w.n_kv, slots, d)
        self.cache = [
            (
                torch.zeros(shape, dtype=w.dtype, device=dev),
                torch.zeros(shape, dtype=w.dtype, device=dev),
            )
            for _ in w.layers
        ]
        self.tok = torch.zeros(rows, dtype=torch.long, device=dev)
        self.pos = torch.zeros(rows, dtype=torch.long, device=dev)
        self.valid = torch.zeros(rows, slots, dtype=torch.bool, device=dev)
        self.u = torch.ones(rows, max_new, device=dev)
        self.out_tok = torch.zeros(rows, max_new, dtype=torch.long, device=dev)
        self.out_lp = torch.zeros(rows, max_new, device=dev)
        self.done = torch.zeros(rows, dtype=torch.bool, device=dev)
        self.rows = torch.arange(rows, device=dev)
        # Static (graph) mode: the step index and the first generated slot live on the device.
        self.t = torch.ones((), dtype=torch.long, device=dev)
        self.slot0 = torch.zeros((), dtype=torch.long, device=dev)
        self.slot_ar = torch.arange(slots, device=dev)

    def per_row(self) -> list[torch.Tensor]:
        kv = [z for pair in self.cache for z in pair]
        return [*kv, self.tok, self.pos, self.valid, self.u, self.out_tok, self.out_lp, self.rows]

    def compact(self, keep: torch.Tensor, b: int, used_slots: int) -> None:
        """Move rows `keep` (ascending, all < b) to [0, len(keep)); caches only up to the
        slots written so far. index_select first: source and target overlap."""
        n = keep.numel()
        for z in self.per_row():
            if z.dim() == 4:
                z[:n, :, :used_slots] = z[:b, :, :used_slots].index_select(0, keep)
            else:
                z[:n] = z[:b].index_select(0, keep)
        self.done[:n] = False


def _decode_step(w: Weights, st: _State, b: int, t: int | None, params: SampleParams, eos: int):
    """Feed rows [0, b) their last token, draw token t, record it. `t` None is the static
    form for CUDA graphs: the step index and slot come from device tensors and attention runs
    over all slots (masked), so shapes and addresses are the same at every step."""
    nq, nkv, d = w.n_heads, w.n_kv, w.head_dim
    static = t is None
    if static:
        slot = st.slot0 + st.t - 1
        slot_idx = slot.view(1)
        keys = st.valid[:b] & (st.slot_ar <= slot)[None]
        bias = torch.zeros(keys.shape, dtype=w.dtype, device=keys.device)
        mask = bias.masked_fill(~keys, -math.inf)[:, None, None]  # additive: any SDPA kernel
        keys_end = None
    else:
        slot = int(st.slot0) + t - 1
        keys_end = slot + 1
        mask = st.valid[:b, :keys_end][:, None, None]
    pos = st.pos[:b]
    cos, sin = w.cos[pos][:, None], w.sin[pos][:, None]  # [b, 1, D]
    x = w.embed[st.tok[:b]]
    for lw, (kc, vc) in zip(w.layers, st.cache, strict=True):
        h = w.rms(x, lw.ln1)
        qkv = F.linear(h, lw.wqkv, lw.bqkv).view(b, nq + 2 * nkv, d)
        qk = _rope(qkv[:, : nq + nkv], cos, sin)  # q and k heads rotated in one go
        q, k, v = qk[:, :nq], qk[:, nq:], qkv[:, nq + nkv :]
        if static:
            kc[:b].index_copy_(2, slot_idx, k[:, :, None])
            vc[:b].index_copy_(2, slot_idx, v[:, :, None])
            ks, vs = kc[:b], vc[:b]
        else:
            kc[:b, :, slot] = k
            vc[:b, :, slot] = v
            ks, vs = kc[:b, :, :keys_end], vc[:b, :, :keys_end]
        # the G query heads of one kv head as G query positions: GQA without repeating K/V
        a = F.scaled_dot_product_attention(q.view(b, nkv, nq // nkv, d), ks, vs, attn_mask=mask)
        x = x + F.linear(a.reshape(b, nq * d), lw.wo, lw.bo)
        x = x + w.mlp(w.rms(x, lw.ln2), lw)
    logits = F.linear(w.rms(x, w.norm), w.head).float()
    if static:
        t_idx = st.t.view(1)
        tok, lp = draw(logits, st.u[:b].index_select(1, t_idx).squeeze(1), params)
        st.out_tok[:b].index_copy_(1, t_idx, tok[:, None])
        st.out_lp[:b].index_copy_(1, t_idx, lp[:, None])
        st.t += 1
    else:
        tok, lp = draw(logits, st.u[:b, t], params)
        st.out_tok[:b, t] = tok
        st.out_lp[:b, t] = lp
    st.done[:b] |= tok == eos
    st.tok[:b] = tok
    st.pos[:b] += 1


# ---------------------------------------------------------------- the sampler


@dataclass
class Samples:
    """Raw output: per row (prompt-major, n per prompt) its tokens [N, max_new] (garbage after
    the stop), per-token log-probs [N, max_new] and number of generated tokens."""

    prompt_idx: list[int]
    tokens: torch.Tensor
    token_logprobs: torch.Tensor
    lengths: list[int]
    stopped: list[bool]


class _Graphs:
    """CUDA graphs of the static decode step, one per bucketed batch size (captured lazily)."""

    def __init__(self, w: Weights, st: _State, params: SampleParams, eos: int):
        self.w, self.st, self.params, self.eos = w, st, params, eos
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.pool = torch.cuda.graph_pool_handle()

    def replay(self, b: int) -> None:
        if b not in self.graphs:
            self.graphs[b] = self._capture(b)
        self.graphs[b].replay()

    def _capture(self, b: int) -> torch.cuda.CUDAGraph:
        st = self.st
        saved = [z.clone() for z in (st.t, st.tok, st.pos, st.done, st.out_tok, st.out_lp)]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up runs (allocator, kernels) off the graph
            for _ in range(2):
                st.t.copy_(saved[0])
                _decode_step(self.w, st, b, None, self.params, self.eos)
        torch.cuda.current_stream().wait_stream(stream)
        st.t.copy_(saved[0])
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            _decode_step(self.w, st, b, None, self.params, self.eos)
        # The warm-up ran for real: restore what it changed (its cache writes land in the
        # current slot, which the next real step overwrites before anything reads it).
        for z, s in zip((st.t, st.tok, st.pos, st.done, st.out_tok, st.out_lp), saved, strict=True):
            z.copy_(s)
        return graph


def _bucket(n: int, top: int) -> int:
    b = MIN_BUCKET
    while b < n:
        b *= 2
    return min(b, top)


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
    prompt-major list. `static` runs the fixed-shape decode step (default: on CUDA), `graphs`
    captures it as CUDA graphs (default: on CUDA)."""
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    static = cuda if static is None else static
    graphs = cuda if graphs is None else graphs
    if graphs and not (static and cuda):
        raise ValueError("CUDA graphs need the static step on a CUDA device")
    max_new, n = params.max_new_tokens, params.n
    width = max(map(len, prompt_ids))
    slots = width + max_new - 1
    if static:  # aligned key length (SDPA kernels on CUDA prefer multiples of 8/16)
        slots = -(-max(slots, 1) // 16) * 16
    w = Weights(model, width + max_new, torch.bfloat16 if cuda else torch.float32)
    flat = [p for p in range(len(prompt_ids)) for _ in range(n)]
    rows_max = min(params.batch_size, len(flat))
    st = _State(w, rows_max, max(slots, 1), max_new)
    gr = _Graphs(w, st, params, eos) if graphs else None
    out = (
        torch.zeros(len(flat), max_new, dtype=torch.long, device=device),
        torch.zeros(len(flat), max_new, device=device),
    )
    for start in range(0, len(flat), params.batch_size):
        idx = flat[start : start + params.batch_size]
        _run_chunk(w, st, gr, static, prompt_ids, idx, start, params, seed, eos, pad, out)
    return _finish(flat, *out, eos)


def _run_chunk(w, st, gr, static, prompt_ids, idx, start, params, seed, eos, pad, out):
    device, max_new, n = w.device, params.max_new_tokens, params.n
    b = len(idx)
    # --- shared prefill: each distinct prompt of the chunk once
    uniq = sorted(set(idx))
    local = {p: j for j, p in enumerate(uniq)}
    width = max(len(prompt_ids[p]) for p in uniq)
    ids = torch.tensor(
        [[pad] * (width - len(prompt_ids[p])) + prompt_ids[p] for p in uniq], device=device
    )
    plen = torch.tensor([len(prompt_ids[p]) for p in uniq], device=device)
    logits, kvs = prefill(w, ids, plen)
    which = torch.tensor([local[p] for p in idx], device=device)
    for (kc, vc), (k, v) in zip(st.cache, kvs, strict=True):
        kc[:b, :, :width] = k.index_select(0, which)
        vc[:b, :, :width] = v.index_select(0, which)
    row_plen = plen.index_select(0, which)
    st.valid[:b] = True  # generated slots; the static step masks those not yet written
    st.valid[:b, :width] = torch.arange(width, device=device)[None] >= (width - row_plen)[:, None]
    st.pos[:b] = row_plen
    prompt_t = torch.tensor(idx, device=device)
    sample_t = torch.arange(start, start + b, device=device) % n
    st.u[:b] = uniforms(seed, prompt_t, sample_t, max_new)
    st.rows[:b] = torch.arange(start, start + b, device=device)
    st.slot0.fill_(width)
    st.t.fill_(1)
    # --- first token from the prompt's logits
    tok, lp = draw(logits.index_select(0, which), st.u[:b, 0], params)
    st.out_tok[:b, 0], st.out_lp[:b, 0] = tok, lp
    st.done[:b] = tok == eos
    st.tok[:b] = tok
    # --- decode. Rows [0, live) are real; in static mode [live, b) are stopped filler rows
    # that pad the batch to a captured bucket size.
    live = b
    for t in range(1, max_new):
        if not static or t % CHECK_EVERY == 1:
            n_done = int(st.done[:live].sum())  # the only host sync of the loop
            if n_done == live:
                break
            target = _bucket(live - n_done, b) if static else live - n_done
            if (static and target < b) or (not static and n_done >= COMPACT_FRACTION * live):
                keep = (~st.done[:live]).nonzero().squeeze(1)
                _flush(st, live, out)
                st.compact(keep, live, width + t - 1)
                live, b = keep.numel(), target
                st.done[live:b] = True
        if gr is not None:
            gr.replay(b)
        else:
            _decode_step(w, st, b, None if static else t, params, eos)
    _flush(st, live, out)


def _flush(st: _State, live: int, out: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Copy the live rows' outputs to their rows of the result (before compaction drops
    the stopped ones)."""
    rows = st.rows[:live]
    out[0].index_copy_(0, rows, st.out_tok[:live])
    out[1].index_copy_(0, rows, st.out_lp[:live])


def _finish(flat: list[int], tokens: torch.Tensor, logprobs: torch.Tensor, eos: int) -> Samples:
    max_new = tokens.shape[1]
    is_eos = tokens == eos
    stopped = is_eos.any(1)
    lengths = torch.where(stopped, is_eos.int().argmax(1) + 1, max_new)
    keep = torch.arange(max_new, device=tokens.device)[None] < lengths[:, None]
    return Samples(
        flat,
        tokens.cpu(),
        (logprobs * keep).cpu(),
        lengths.tolist(),
        stopped.tolist(),
    )


def generate(model, tokenizer, prompts: list[str], params: SampleParams, seed: int) -> Rollouts:
    """Same contract as `rollout.hf.generate`; sample i of prompt p depends only on
    (seed, p, i) and the model (not on batch_size)."""
    prompt_ids = encode_prompts(tokenizer, prompts)
    s = sample(model, prompt_ids, params, seed, tokenizer.eos_token_id, tokenizer.pad_token_id)
    out = Rollouts(list(s.prompt_idx), [], [], [], [], prompt_ids)
    rows = s.tokens.tolist()
    sums = s.token_logprobs.sum(1).tolist()
    for row, length, stop, lp in zip(rows, s.lengths, s.stopped, sums, strict=True):
        out.token_ids.append(row[:length])
        out.texts.append(tokenizer.decode(row[:length], skip_special_tokens=True))
        out.logprobs.append(lp)
        out.finish.append("stop" if stop else "length")
    return out
