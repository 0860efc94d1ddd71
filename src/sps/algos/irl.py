"""IRL phase (method.md, ``irl.objective: group_fkl``): forward KL from the max-entropy
demonstration distribution q to the policy's distribution p restricted to a group's distinct
completions.
"""

import torch

SCORE_MODES = ("mean", "sum")
Q_MODES = ("uniform", "inverse_frequency")


def sequence_scores(
    token_logp: torch.Tensor, mask: torch.Tensor, mode: str = "mean"
) -> torch.Tensor:
    """Sequence score s(y) from token log-probs [N, T] and a 0/1 mask [N, T]; returns [N].

    - ``mean``: s(y) = sum_t m_t log pi(y_t) / max(sum_t m_t, 1).
    - ``sum``:  s(y) = sum_t m_t log pi(y_t).
    """
    if mode not in SCORE_MODES:
        raise ValueError(f"unknown score mode {mode!r}; expected one of {SCORE_MODES}")
    m = mask.to(token_logp.dtype)
    total = torch.where(m > 0, token_logp, torch.zeros_like(token_logp)).sum(dim=-1)
    if mode == "sum":
        return total
    return total / m.sum(dim=-1).clamp(min=1.0)


def unique_groups(token_ids: list[list[int]]) -> tuple[list[int], list[int]]:
    """Deduplicate one group's completions by their token ids.

    Returns ``(first, counts)``: ``first[k]`` is the index in ``token_ids`` of the first occurrence
    of the k-th distinct completion (distinct completions ordered by first occurrence) and
    ``counts[k]`` its multiplicity in the group. ``sum(counts) == len(token_ids)``.
    """
    index: dict[tuple[int, ...], int] = {}
    first: list[int] = []
    counts: list[int] = []
    for i, ids in enumerate(token_ids):
        key = tuple(ids)
        k = index.get(key)
        if k is None:
            index[key] = len(first)
            first.append(i)
            counts.append(1)
        else:
            counts[k] += 1
    return first, counts


def irl_q(demo: torch.Tensor, counts: torch.Tensor, mode: str = "uniform") -> torch.Tensor:
    """Demonstration distribution q over a group's distinct completions U; returns [u].

    ``demo`` (bool [u]) marks D within U; ``counts`` [u] are multiplicities in the group.

    - ``uniform`` (max-entropy over D): q(y) = 1/|D| for y in D, else 0.
    - ``inverse_frequency``: q(y) = (1/c(y)) / sum_{y' in D} 1/c(y') for y in D, else 0.

    Float dtype: that of ``counts`` if floating, else torch's default dtype.
    """
    if mode not in Q_MODES:
        raise ValueError(f"unknown irl q mode {mode!r}; expected one of {Q_MODES}")
    demo = demo.to(torch.bool)
    if not bool(demo.any()):
        raise ValueError("irl_q needs at least one demonstration (|D| = 0); skip the group")
    dtype = counts.dtype if counts.is_floating_point() else torch.get_default_dtype()
    if mode == "uniform":
        w = demo.to(dtype)
    else:
        c = counts.to(dtype)
        if bool((c[demo] <= 0).any()):
            raise ValueError("inverse_frequency q needs positive counts on demonstrations")
        w = torch.where(demo, 1.0 / c.clamp(min=1e-12), torch.zeros_like(c))
    return w / w.sum()


def group_fkl_loss(
    scores: torch.Tensor,
    demo: torch.Tensor,
    counts: torch.Tensor,
    tau: float = 1.0,
    q_mode: str = "uniform",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Group forward-KL IRL loss for ONE group's distinct completions U.

        p(y) = softmax_{y in U}(s(y) / tau),  q = irl_q(demo, counts, q_mode)
        L    = -sum_{y in D} q(y) log p(y)  (= KL(q || p) + H(q), H(q) constant in theta)
        dL/ds(y) = (p(y) - q(y)) / tau

    ``scores`` [u] carries the gradient. Returns ``(loss, {"p", "q", "w"})`` with detached tensors,
    w = q - p (w > 0: undervalued completion, raised by the step).
    """
    q = irl_q(demo, counts, q_mode).to(device=scores.device, dtype=scores.dtype)
    log_p = torch.log_softmax(scores / tau, dim=-1)
    # where, not q * log_p: keeps 0 * (-inf) from giving nan if a score underflows.
    loss = -torch.where(q > 0, q * log_p, torch.zeros_like(log_p)).sum()
    p = log_p.detach().exp()
    return loss, {"p": p, "q": q.detach(), "w": q.detach() - p}


def irl_skip(demo: torch.Tensor) -> bool:
    """True when the group gives no IRL signal: no demonstration (|D| = 0) or one distinct
    completion (|U| <= 1, where p = q = 1 and the gradient is zero)."""
    return demo.numel() <= 1 or not bool(demo.to(torch.bool).any())
