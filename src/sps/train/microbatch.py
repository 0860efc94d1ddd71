"""Micro-batches of a rollout batch, whose accumulated gradients equal the whole batch's.

A loss that is a mean over the batch is a sum of per-micro-batch parts only if every part is
divided by the batch's (global) count rather than its own: `share` gives the factor that turns
a micro-batch's own mean into that part. The IRL loss is a mean over groups, so its
micro-batches hold whole groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def row_parts(n: int, size: int) -> list[slice]:
    """Consecutive row slices of at most `size` rows (0 = one slice of all n)."""
    if size <= 0 or size >= n:
        return [slice(0, n)]
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def group_parts(group_rows: Sequence[Sequence[int]], size: int) -> list[tuple[slice, list[int]]]:
    """(row slice, group indices) of micro-batches made of whole groups, each at most `size`
    rows unless one group alone is larger. Groups must be contiguous and in row order."""
    n = max((max(r) + 1 for r in group_rows), default=0)
    if size <= 0 or size >= n:
        return [(slice(0, n), list(range(len(group_rows))))]
    parts: list[tuple[slice, list[int]]] = []
    start, members = 0, []
    for gi, rows in enumerate(group_rows):
        lo, hi = min(rows), max(rows) + 1
        if members and hi - start > size:
            parts.append((slice(start, lo), members))
            start, members = lo, []
        members.append(gi)
    parts.append((slice(start, n), members))
    return parts


def share(mode: str, tokens: float, seqs: float, total_tokens: float, total_seqs: float) -> float:
    """Factor that turns `aggregate(..., mode)` of a micro-batch (its own mean) into its part
    of the whole batch's: token-mean is a mean over all tokens, the seq-mean modes over all
    sequences (their token normaliser is per sequence or the constant max length)."""
    if mode == "token-mean":
        return tokens / max(total_tokens, 1.0)
    return seqs / max(total_seqs, 1.0)


def trim(ids: torch.Tensor, attn: torch.Tensor, target: torch.Tensor, rows: slice):
    """The rows' slice of right-padded tensors, cut to the widest of those rows: columns past
    a row's end never influence its positions (causal attention), so trimming is exact."""
    ids, attn, target = ids[rows], attn[rows], target[rows]
    width = int(attn.sum(1).max()) if len(ids) else 0
    return ids[:, :width], attn[:, :width], target[:, :width]
