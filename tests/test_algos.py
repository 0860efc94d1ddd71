"""sps.algos against slow, obvious Python-loop references on seeded random inputs."""

import math

import pytest
import torch

from sps.algos import (
    aggregate,
    entropy_from_logits,
    group_fkl_loss,
    grpo_advantages,
    irl_q,
    irl_skip,
    kl_k3,
    policy_loss,
    sequence_scores,
    unique_groups,
)

SHAPES = [(1, 1), (3, 5), (4, 17), (8, 2)]
AGG_MODES = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]


def ragged_mask(n: int, t: int, gen: torch.Generator) -> torch.Tensor:
    """Left-aligned masks of random lengths in [1, t], one row forced to full length."""
    lengths = torch.randint(1, t + 1, (n,), generator=gen)
    lengths[0] = t
    return (torch.arange(t)[None, :] < lengths[:, None]).to(torch.float64)


# ---------------------------------------------------------------- references (slow loops)


def ref_advantages(rewards: list[list[float]], scale: str, eps: float) -> list[list[float]]:
    out = []
    for row in rewards:
        g = len(row)
        mean = sum(row) / g
        std = math.sqrt(sum((r - mean) ** 2 for r in row) / g)
        if scale == "group":
            out.append([(r - mean) / (std + eps) for r in row])
        else:
            out.append([r - mean for r in row])
    return out


def ref_aggregate(loss: list[list[float]], mask: list[list[float]], mode: str, max_len=None):
    n, t = len(loss), len(loss[0])
    if mode == "token-mean":
        s = sum(loss[i][j] for i in range(n) for j in range(t) if mask[i][j])
        c = sum(1 for i in range(n) for j in range(t) if mask[i][j])
        return s / max(c, 1)
    if mode == "seq-mean-token-mean":
        per = []
        for i in range(n):
            s = sum(loss[i][j] for j in range(t) if mask[i][j])
            c = sum(1 for j in range(t) if mask[i][j])
            per.append(s / max(c, 1))
        return sum(per) / n
    s = sum(loss[i][j] for i in range(n) for j in range(t) if mask[i][j])
    return s / (n * (t if max_len is None else max_len))


def ref_token_loss(lp, olp, a, cl, ch, rlp=None, beta=0.0):
    rho = math.exp(lp - olp)
    loss = -min(rho * a, min(max(rho, 1 - cl), 1 + ch) * a)
    if rlp is not None and beta > 0:
        r = rlp - lp
        loss += beta * (math.exp(r) - r - 1)
    return loss


# ---------------------------------------------------------------- advantages


@pytest.mark.parametrize("scale", ["group", "none"])
@pytest.mark.parametrize("shape", [(1, 2), (4, 8), (16, 3)])
def test_grpo_advantages_matches_loop(scale, shape):
    gen = torch.Generator().manual_seed(17 * shape[0] + shape[1] + (scale == "none"))
    rewards = torch.rand(shape, generator=gen, dtype=torch.float64)
    rewards[:, 0] = (rewards[:, 0] > 0.5).double()  # mix binary and fractional rewards
    got = grpo_advantages(rewards, scale=scale, eps=1e-6)
    want = torch.tensor(ref_advantages(rewards.tolist(), scale, 1e-6), dtype=torch.float64)
    assert got.shape == rewards.shape
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("scale", ["group", "none"])
def test_grpo_advantages_constant_group_is_zero(scale):
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.7, 0.7, 0.7], [0.0, 1.0, 1.0]])
    adv = grpo_advantages(rewards, scale=scale)
    assert torch.equal(adv[:3], torch.zeros(3, 3))
    assert adv[3, 0] < 0 < adv[3, 1]
    assert adv[3].sum().abs() < 1e-6  # centred


def test_grpo_advantages_binary_group_values():
    # R = [0, 1, 1, 1]: mean 0.75, population std sqrt(3)/4.
    adv = grpo_advantages(torch.tensor([[0.0, 1.0, 1.0, 1.0]], dtype=torch.float64), eps=0.0)
    s = math.sqrt(3) / 4
    torch.testing.assert_close(
        adv[0], torch.tensor([-0.75 / s, 0.25 / s, 0.25 / s, 0.25 / s]).double()
    )


def test_grpo_advantages_unknown_scale():
    with pytest.raises(ValueError, match="bogus"):
        grpo_advantages(torch.zeros(2, 3), scale="bogus")


# ---------------------------------------------------------------- aggregation


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_aggregate_matches_loop(mode, shape):
    gen = torch.Generator().manual_seed(7 + shape[0] * 31 + shape[1])
    loss = torch.randn(shape, generator=gen, dtype=torch.float64)
    mask = ragged_mask(*shape, gen)
    want = ref_aggregate(loss.tolist(), mask.tolist(), mode)
    assert aggregate(loss, mask, mode).item() == pytest.approx(want, rel=1e-12, abs=1e-12)
    # bool mask gives the same answer
    assert aggregate(loss, mask.bool(), mode).item() == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_aggregate_max_len_and_guards():
    loss = torch.ones(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert aggregate(loss, mask, "seq-mean-token-sum-norm", max_len=10).item() == pytest.approx(
        3 / 20
    )
    # masked garbage (inf / nan) must not leak
    bad = torch.tensor([[1.0, 1.0, float("inf")], [1.0, float("nan"), 0.0]])
    for mode in AGG_MODES:
        assert torch.isfinite(aggregate(bad, mask, mode))
    # all-masked: 0, not nan
    for mode in AGG_MODES:
        assert aggregate(loss, torch.zeros(2, 3), mode).item() == 0.0
    with pytest.raises(ValueError, match="bogus"):
        aggregate(loss, mask, "bogus")


# ---------------------------------------------------------------- k3, policy loss


def test_kl_k3_nonneg_and_zero_at_equal():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    b = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    k = kl_k3(a, b)
    assert (k >= 0).all()
    assert torch.equal(kl_k3(a, a), torch.zeros_like(a))
    r = (b - a).tolist()
    want = torch.tensor([[math.exp(x) - x - 1 for x in row] for row in r], dtype=torch.float64)
    torch.testing.assert_close(k, want)


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("shape", SHAPES)
def test_policy_loss_on_policy_is_minus_advantage(mode, shape):
    gen = torch.Generator().manual_seed(11 + shape[0] + shape[1])
    logp = -torch.rand(shape, generator=gen, dtype=torch.float64) * 3
    adv = torch.randn(shape[0], generator=gen, dtype=torch.float64)
    mask = ragged_mask(*shape, gen)
    loss, stats = policy_loss(logp, logp.clone(), adv, mask, agg=mode)
    want = aggregate(-adv[:, None].expand(shape), mask, mode)
    torch.testing.assert_close(loss, want)
    assert stats["clip_frac"] == 0.0
    assert stats["ratio_mean"] == pytest.approx(1.0)
    assert math.isnan(stats["kl"])


def test_policy_loss_on_policy_gradient_with_same_tensor():
    # old_logp is logp itself: the loss must still carry the policy gradient -A * m / count.
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([2.0, -1.0], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    loss, _ = policy_loss(logp, logp, adv, mask)
    loss.backward()
    want = -adv[:, None] * mask / 3
    torch.testing.assert_close(logp.grad, want)


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_ref", [False, True])
def test_policy_loss_matches_loop_outside_clip(mode, shape, with_ref):
    gen = torch.Generator().manual_seed(101 + 7 * shape[0] + shape[1] + int(with_ref))
    n, t = shape
    logp = -torch.rand(shape, generator=gen, dtype=torch.float64) * 3
    # log-ratios up to +-0.7: rho in [0.5, 2], far outside [0.8, 1.28]
    old = logp - (torch.rand(shape, generator=gen, dtype=torch.float64) - 0.5) * 1.4
    adv = torch.randn(n, generator=gen, dtype=torch.float64)
    mask = ragged_mask(n, t, gen)
    ref = logp + torch.randn(shape, generator=gen, dtype=torch.float64) * 0.3 if with_ref else None
    cl, ch, beta = 0.2, 0.28, 0.05
    loss, stats = policy_loss(
        logp, old, adv, mask, clip_low=cl, clip_high=ch, agg=mode, ref_logp=ref, kl_coef=beta
    )
    lp, olp, m, a = logp.tolist(), old.tolist(), mask.tolist(), adv.tolist()
    rl = ref.tolist() if ref is not None else None
    tok = [
        [
            ref_token_loss(lp[i][j], olp[i][j], a[i], cl, ch, rl[i][j] if rl else None, beta)
            for j in range(t)
        ]
        for i in range(n)
    ]
    assert loss.item() == pytest.approx(ref_aggregate(tok, m, mode), rel=1e-10, abs=1e-12)

    # stats by loop
    count = clipped = 0
    ratio_sum = kl_sum = 0.0
    for i in range(n):
        for j in range(t):
            if not m[i][j]:
                continue
            rho = math.exp(lp[i][j] - olp[i][j])
            unclipped, clip_t = -rho * a[i], -min(max(rho, 1 - cl), 1 + ch) * a[i]
            count += 1
            clipped += clip_t > unclipped
            ratio_sum += rho
            if rl:
                r = rl[i][j] - lp[i][j]
                kl_sum += math.exp(r) - r - 1
    assert stats["clip_frac"] == pytest.approx(clipped / count)
    assert stats["ratio_mean"] == pytest.approx(ratio_sum / count)
    if with_ref:
        assert stats["kl"] == pytest.approx(kl_sum / count)
    else:
        assert math.isnan(stats["kl"])


def test_policy_loss_clip_frac_hand_example():
    # A > 0: clipped when rho > 1 + ch; A < 0: clipped when rho < 1 - cl.
    rho = torch.tensor([[1.5, 0.5, 1.0, 1.1]], dtype=torch.float64)
    logp = torch.zeros(1, 4, dtype=torch.float64)
    old = -rho.log()
    mask = torch.ones(1, 4, dtype=torch.float64)
    _, s_pos = policy_loss(logp, old, torch.tensor([1.0]).double(), mask)
    _, s_neg = policy_loss(logp, old, torch.tensor([-1.0]).double(), mask)
    assert s_pos["clip_frac"] == pytest.approx(0.25)  # only 1.5
    assert s_neg["clip_frac"] == pytest.approx(0.25)  # only 0.5


def test_policy_loss_finite_with_garbage_padding():
    logp = torch.tensor([[-1.0, -1e4]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[-1.1, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    loss, stats = policy_loss(
        logp, old, torch.tensor([1.0]).double(), mask, ref_logp=old, kl_coef=0.1
    )
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()
    assert logp.grad[0, 1] == 0.0
    assert math.isfinite(stats["kl"])


# ---------------------------------------------------------------- entropy


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 4, 11)])
def test_entropy_matches_direct_formula(shape):
    gen = torch.Generator().manual_seed(len(shape))
    logits = torch.randn(shape, generator=gen, dtype=torch.float64) * 3
    p = torch.softmax(logits, dim=-1)
    want = -(p * p.log()).sum(dim=-1)
    torch.testing.assert_close(entropy_from_logits(logits), want)


def test_entropy_extremes():
    big = torch.tensor([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]])
    h = entropy_from_logits(big)
    assert torch.isfinite(h).all()
    assert h[0].item() == pytest.approx(0.0, abs=1e-6)
    assert h[1].item() == pytest.approx(math.log(3), rel=1e-6)


# ---------------------------------------------------------------- IRL


@pytest.mark.parametrize("shape", SHAPES)
def test_sequence_scores_matches_loop(shape):
    gen = torch.Generator().manual_seed(3 * shape[0] + shape[1])
    tok = -torch.rand(shape, generator=gen, dtype=torch.float64) * 4
    mask = ragged_mask(*shape, gen)
    lp, m = tok.tolist(), mask.tolist()
    sums = [sum(x for x, k in zip(r, mr, strict=True) if k) for r, mr in zip(lp, m, strict=True)]
    lens = [sum(1 for k in mr if k) for mr in m]
    torch.testing.assert_close(sequence_scores(tok, mask, "sum"), torch.tensor(sums).double())
    means = [s / max(n, 1) for s, n in zip(sums, lens, strict=True)]
    torch.testing.assert_close(sequence_scores(tok, mask, "mean"), torch.tensor(means).double())
    torch.testing.assert_close(sequence_scores(tok, mask.bool()), torch.tensor(means).double())


def test_sequence_scores_empty_row_and_bad_mode():
    tok = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]])
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    torch.testing.assert_close(sequence_scores(tok, mask), torch.tensor([-1.5, 0.0]))
    with pytest.raises(ValueError, match="bogus"):
        sequence_scores(tok, mask, "bogus")


def test_unique_groups_hand_example():
    ids = [[1, 2, 3], [4], [1, 2, 3], [1, 2], [4], [1, 2, 3], []]
    first, counts = unique_groups(ids)
    assert first == [0, 1, 3, 6]
    assert counts == [3, 2, 1, 1]
    assert unique_groups([]) == ([], [])
    # prefix is not a duplicate
    assert unique_groups([[1, 2], [1, 2, 0]]) == ([0, 1], [1, 1])


def test_unique_groups_matches_loop_random():
    gen = torch.Generator().manual_seed(5)
    for _ in range(20):
        ids = [
            torch.randint(
                0, 3, (int(torch.randint(0, 4, (1,), generator=gen)),), generator=gen
            ).tolist()
            for _ in range(8)
        ]
        first, counts = unique_groups(ids)
        seen: list[list[int]] = []
        for seq in ids:
            if seq not in seen:
                seen.append(seq)
        assert [ids[i] for i in first] == seen
        assert counts == [ids.count(s) for s in seen]


def test_irl_q_uniform_and_inverse_frequency():
    demo = torch.tensor([True, False, True, True])
    counts = torch.tensor([1, 5, 2, 4])
    torch.testing.assert_close(irl_q(demo, counts), torch.tensor([1 / 3, 0.0, 1 / 3, 1 / 3]))
    q = irl_q(torch.tensor([True, True, True]), torch.tensor([1, 2, 4]), "inverse_frequency")
    torch.testing.assert_close(q, torch.tensor([4 / 7, 2 / 7, 1 / 7]))
    q = irl_q(demo, counts.double(), "inverse_frequency")
    # 1/1, 1/2, 1/4 on demos -> normalise by 7/4
    torch.testing.assert_close(q, torch.tensor([4 / 7, 0.0, 2 / 7, 1 / 7], dtype=torch.float64))


def test_irl_q_errors():
    with pytest.raises(ValueError, match="demonstration"):
        irl_q(torch.tensor([False, False]), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="bogus"):
        irl_q(torch.tensor([True, False]), torch.tensor([1, 1]), "bogus")


@pytest.mark.parametrize("q_mode", ["uniform", "inverse_frequency"])
@pytest.mark.parametrize("tau", [1.0, 0.3, 2.5])
@pytest.mark.parametrize("u", [2, 5, 9])
def test_group_fkl_gradient_closed_form(q_mode, tau, u):
    gen = torch.Generator().manual_seed(u * 100 + int(tau * 10))
    scores = (torch.randn(u, generator=gen, dtype=torch.float64) * 2).requires_grad_(True)
    demo = torch.rand(u, generator=gen) < 0.5
    demo[0] = True
    counts = torch.randint(1, 5, (u,), generator=gen)
    loss, info = group_fkl_loss(scores, demo, counts, tau=tau, q_mode=q_mode)
    loss.backward()
    p, q, w = info["p"], info["q"], info["w"]
    assert not (p.requires_grad or q.requires_grad or w.requires_grad)
    # p, q by loop
    z = [s / tau for s in scores.tolist()]
    mx = max(z)
    e = [math.exp(x - mx) for x in z]
    p_ref = [x / sum(e) for x in e]
    torch.testing.assert_close(p, torch.tensor(p_ref, dtype=torch.float64))
    torch.testing.assert_close(q, irl_q(demo, counts, q_mode).double())
    assert q.sum().item() == pytest.approx(1.0) and p.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(w, q - p)
    loss_ref = -sum(qi * math.log(pi) for qi, pi in zip(q.tolist(), p_ref, strict=True) if qi > 0)
    assert loss.item() == pytest.approx(loss_ref, rel=1e-12)
    torch.testing.assert_close(scores.grad, (p - q) / tau, atol=1e-6, rtol=0)


def test_group_fkl_support_semantics():
    # Non-demo (e.g. incorrect) items get q = 0 and a positive gradient (descent lowers their
    # score); an undervalued demo (p < q) gets a negative gradient (descent raises it).
    scores = torch.tensor([3.0, 0.0, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    demo = torch.tensor([True, True, False, False])
    loss, info = group_fkl_loss(scores, demo, torch.ones(4, dtype=torch.long))
    loss.backward()
    assert torch.equal(info["q"][~demo], torch.zeros(2, dtype=torch.float64))
    assert (scores.grad[~demo] > 0).all()
    assert scores.grad[1] < 0 and info["w"][1] > 0  # p(y1) small, q = 1/2: undervalued
    assert scores.grad.sum().abs() < 1e-12  # mass on U is only redistributed
    # a gradient step moves p towards q
    with torch.no_grad():
        p_after = torch.softmax(scores - 0.5 * scores.grad, dim=-1)
    kl = lambda p: -(info["q"][demo] * p[demo].log()).sum()  # noqa: E731
    assert kl(p_after) < kl(info["p"])


def test_group_fkl_single_demo_singleton_is_zero():
    scores = torch.tensor([-2.0], requires_grad=True)
    loss, _ = group_fkl_loss(scores, torch.tensor([True]), torch.tensor([8]))
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert scores.grad.abs().item() < 1e-7


def test_irl_skip():
    assert irl_skip(torch.tensor([False, False, False]))  # |D| = 0
    assert irl_skip(torch.tensor([True]))  # |U| = 1
    assert irl_skip(torch.tensor([False]))
    assert irl_skip(torch.zeros(0, dtype=torch.bool))
    assert not irl_skip(torch.tensor([True, False]))
    assert not irl_skip(torch.tensor([True, True]))
