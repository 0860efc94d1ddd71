"""The prefix-dedup decode path (the default off CUDA): the model runs once per distinct
prefix (a "state") and each row draws its own token from its state's distribution, so rows
that share a prefix share the work; stopped rows leave the batch at once.
"""

from __future__ import annotations

import math

import torch

from sps.rollout.fast.attention import _combine, attend, attend_shared
from sps.rollout.fast.noise import draw, uniforms
from sps.rollout.fast.weights import _forward, _Group, _prefill_groups

GEN_BLOCK = 16  # generated-token cache: grows by this many slots (CPU), a multiple of it (static)


def _run_dedup(w, groups: list[_Group], prompt_ids, params, seed, eos, pad, out, keys) -> None:
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
    prompt = torch.tensor([keys[x.prompt] for x in groups], device=dev)[row_group]
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
