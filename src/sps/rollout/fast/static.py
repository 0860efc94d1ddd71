"""The static decode path (the default on CUDA): fixed buffers in prompt-group layout, the
step index on the device and the decode step captured as CUDA graphs, one per (groups, rows
per group) shape; every CHECK_EVERY steps finished rows are squeezed out (compaction).
"""

from __future__ import annotations

import math
import warnings
import weakref

import torch

from sps.rollout.base import SampleParams
from sps.rollout.fast.attention import _combine, attend, attend_shared
from sps.rollout.fast.noise import draw, uniforms
from sps.rollout.fast.weights import Weights, _forward, _prefill_groups

CHECK_EVERY = 8  # static mode: decode steps between host reads of the stop flags
MIN_BUCKET = 4  # static mode: fewest rows per group in a captured shape


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


def _run_static(w, bt: _Batch, gr, groups, prompt_ids, params, seed, eos, pad, out, scratch, keys):
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
    prompt = torch.tensor([keys[x.prompt] for x in groups], device=dev).repeat_interleave(m)
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
