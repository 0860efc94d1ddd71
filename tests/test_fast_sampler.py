"""The fast sampler (rollout/fast/) against transformers on tiny random Llamas.

The models get weights of std 0.25 (not the 0.02 of a fresh init) so that next-token
distributions have a few nats of entropy and attention matters: a near-uniform model would let
wrong attention or a wrong temperature pass unnoticed.
"""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from sps.config import ModelConfig
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.rollout import fast, generate
from sps.rollout.base import SampleParams, encode_prompts, left_pad

PROMPTS = ["Make 13 from 9 7 3.\n", "hi", "Make 100 from 10 12 9 4.\n", "x", "abc def"]


def _peaky(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.25)
    return model.eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors gain nothing from more threads, and a second thread on a busy machine
    makes every op wait for it (this file ran 10x slower with 2 threads on a loaded box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    """The built-in architecture: 4 heads = 4 kv heads, tied embeddings."""
    torch.manual_seed(0)
    return _peaky(tiny_llama(ModelConfig(64, 3, 4, 192, 160), tok))


@pytest.fixture(scope="module")
def gqa_model(tok):
    """Grouped-query attention (6 heads, 2 kv heads) and an untied lm_head."""
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    return _peaky(LlamaForCausalLM(cfg))


def _hf_probs(logits: torch.Tensor, params: SampleParams) -> torch.Tensor:
    """Probabilities after transformers' own warpers, in generate's order."""
    scores = logits.float()
    if params.temperature != 1.0:
        scores = TemperatureLogitsWarper(params.temperature)(None, scores)
    if params.top_k:
        scores = TopKLogitsWarper(params.top_k)(None, scores)
    if params.top_p < 1.0:
        scores = TopPLogitsWarper(params.top_p)(None, scores)
    return scores.softmax(-1)


def _chi2_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson chi-square test of counts against probs; bins expecting < 5 are pooled."""
    counts, probs = counts.double(), probs.double()
    assert counts[probs == 0].sum() == 0, "a zero-probability outcome was drawn"
    expected = probs * counts.sum()
    big = expected >= 5
    obs = torch.cat([counts[big], counts[~big].sum().view(1)])
    exp = torch.cat([expected[big], expected[~big].sum().view(1)])
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    stat = ((obs - exp) ** 2 / exp).sum()
    df = obs.numel() - 1
    return float(torch.special.gammaincc(torch.tensor(df / 2.0), stat / 2))


def _rows(s: fast.Samples) -> list[list[int]]:
    return [r[:n] for r, n in zip(s.tokens.tolist(), s.lengths, strict=True)]


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("which", ["model", "gqa_model"])
def test_greedy_equals_generate(request, tok, which, static):
    m = request.getfixturevalue(which)
    pids = encode_prompts(tok, PROMPTS)
    ids, mask = left_pad(pids, tok.pad_token_id, torch.device("cpu"))

    def greedy(eos: int | None) -> torch.Tensor:
        """transformers' greedy completions (24 new tokens at most) stopping at eos."""
        out = m.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=24,
            pad_token_id=tok.pad_token_id,
            eos_token_id=eos,
        )
        return out[:, ids.shape[1] :]

    # An EOS that greedy decoding reaches on some prompts, so stopping is compared too.
    eos = int(greedy(None)[0, 10])
    ref = greedy(eos)
    params = SampleParams(n=1, max_new_tokens=24, top_k=1, batch_size=3)
    got = fast.sample(m, pids, params, seed=0, eos=eos, pad=tok.pad_token_id, static=static)
    want = [r[: r.index(eos) + 1] if eos in r else r for r in ref.tolist()]
    assert _rows(got) == want
    assert any(eos in r for r in want) and any(eos not in r for r in want)
    assert got.stopped == [eos in r for r in want]


@pytest.mark.parametrize(
    "params",
    [
        SampleParams(n=20000, max_new_tokens=1, temperature=1.0),
        SampleParams(n=20000, max_new_tokens=1, temperature=0.7, top_k=20, top_p=0.9),
    ],
    ids=["plain", "t0.7-k20-p0.9"],
)
def test_first_token_distribution(model, tok, params):
    """Chi-square of 20k first tokens against transformers' warped softmax; the same samples
    reject a 10% wrong temperature (the test has power)."""
    pids = encode_prompts(tok, PROMPTS[:1])
    s = fast.sample(model, pids, params, seed=3, eos=tok.eos_token_id, pad=tok.pad_token_id)
    counts = torch.bincount(s.tokens[:, 0], minlength=len(tok))
    with torch.no_grad():
        logits = model(torch.tensor(pids)).logits[0, -1]
    assert _chi2_pvalue(counts, _hf_probs(logits[None], params)[0]) > 1e-3
    wrong = SampleParams(**{**params.__dict__, "temperature": params.temperature * 1.1})
    probs = _hf_probs(logits[None], wrong)[0]
    probs = torch.where(counts > 0, probs, 0.0) if params.top_k else probs  # same support
    assert _chi2_pvalue(counts, probs / probs.sum()) < 1e-3


def test_two_token_sequence_distribution(gqa_model, tok):
    """Chi-square over whole 2-token sequences (a, b) against p(a) p(b | a) from a
    teacher-forced forward pass of every continuation a (GQA model, decode step included)."""
    params = SampleParams(n=20000, max_new_tokens=2, temperature=0.9, top_p=0.95)
    pids = encode_prompts(tok, PROMPTS[2:3])
    s = fast.sample(gqa_model, pids, params, seed=5, eos=tok.eos_token_id, pad=tok.pad_token_id)
    vocab = len(tok)
    assert all(n == 2 for n in s.lengths)  # a random model essentially never says EOS
    counts = torch.bincount(s.tokens[:, 0] * vocab + s.tokens[:, 1], minlength=vocab * vocab)
    with torch.no_grad():
        first = gqa_model(torch.tensor(pids)).logits[0, -1]
        seqs = torch.tensor([pids[0] + [a] for a in range(vocab)])
        second = gqa_model(seqs).logits[:, -1]
    joint = _hf_probs(first[None], params)[0][:, None] * _hf_probs(second, params)
    assert _chi2_pvalue(counts, joint.reshape(-1)) > 1e-3


@pytest.mark.parametrize("which", ["model", "gqa_model"])
def test_logprobs_equal_teacher_forcing(request, tok, which):
    m = request.getfixturevalue(which)
    params = SampleParams(n=6, max_new_tokens=20, temperature=0.8, top_k=30, top_p=0.9)
    pids = encode_prompts(tok, PROMPTS)
    s = fast.sample(m, pids, params, seed=1, eos=tok.eos_token_id, pad=tok.pad_token_id)
    with torch.no_grad():
        for i, (p, row) in enumerate(zip(s.prompt_idx, _rows(s), strict=True)):
            seq = torch.tensor([pids[p] + row])
            logits = m(seq).logits[0, len(pids[p]) - 1 : -1]
            want = _hf_probs(logits, params).log().gather(1, torch.tensor(row)[:, None])[:, 0]
            torch.testing.assert_close(s.token_logprobs[i, : len(row)], want, atol=1e-4, rtol=0)
            assert (s.token_logprobs[i, len(row) :] == 0).all()


def test_independent_of_batching_and_path(gqa_model, tok):
    """Same seed: the same samples for any batch size, on the dedup and the static path,
    and sample (p, i) does not depend on n or on the other prompts."""
    pids = encode_prompts(tok, PROMPTS)
    eos = 5  # a frequent stop, so rows leave the batch at different steps

    def run(n=24, batch_size=64, static=False, prompts=pids):
        params = SampleParams(n=n, max_new_tokens=16, temperature=1.3, batch_size=batch_size)
        return fast.sample(gqa_model, prompts, params, 7, eos, tok.pad_token_id, static=static)

    ref = run()
    rows = _rows(ref)
    assert 0 < sum(ref.stopped) < len(rows)
    for kw in [dict(batch_size=7), dict(batch_size=1000), dict(static=True, batch_size=50)]:
        other = run(**kw)
        assert _rows(other) == rows, kw
        torch.testing.assert_close(other.token_logprobs, ref.token_logprobs, atol=1e-4, rtol=0)
    fewer = _rows(run(n=5, prompts=pids[:3]))
    assert fewer == [rows[p * 24 + i] for p in range(3) for i in range(5)]
    assert _rows(run(n=24, batch_size=64)) == rows  # deterministic
    params = SampleParams(n=24, max_new_tokens=16, temperature=1.3, batch_size=64)
    assert _rows(fast.sample(gqa_model, pids, params, 8, eos, tok.pad_token_id)) != rows


def test_stop_and_length(model, tok):
    pids = encode_prompts(tok, PROMPTS)
    eos = 40
    params = SampleParams(n=32, max_new_tokens=12, temperature=1.5, batch_size=50)
    s = fast.sample(model, pids, params, seed=2, eos=eos, pad=tok.pad_token_id)
    rows = _rows(s)
    assert 0 < sum(s.stopped) < len(rows)
    for row, n, stopped in zip(rows, s.lengths, s.stopped, strict=True):
        assert 1 <= n <= 12 and len(row) == n
        assert (eos in row) == stopped
        if stopped:
            assert row.index(eos) == n - 1
        else:
            assert n == 12
    one = fast.sample(model, pids, SampleParams(n=3, max_new_tokens=1), 2, eos, 0)
    assert one.lengths == [1] * 15


def test_generate_dispatch(model, tok):
    params = SampleParams(n=3, max_new_tokens=10, batch_size=8)
    ro = generate(model, tok, PROMPTS[:2], params, seed=0)
    assert ro.prompt_idx == [0, 0, 0, 1, 1, 1]
    assert ro.prompt_ids == encode_prompts(tok, PROMPTS[:2])
    for ids, text, lp, fin in zip(ro.token_ids, ro.texts, ro.logprobs, ro.finish, strict=True):
        assert 1 <= len(ids) <= 10 and lp <= 0 and math.isfinite(lp)
        assert fin == ("stop" if ids[-1] == tok.eos_token_id else "length")
        assert text == tok.decode(ids, skip_special_tokens=True)
    hf = generate(model, tok, PROMPTS[:2], params, seed=0, backend="hf")
    assert hf.prompt_idx == ro.prompt_idx and len(hf) == len(ro)
    with pytest.raises(ValueError, match="backend"):
        generate(model, tok, PROMPTS[:2], params, seed=0, backend="bogus")


@pytest.mark.parametrize("backend", ["fast", "hf"])
def test_keyed_samples_do_not_depend_on_the_other_prompts(model, tok, backend):
    """With keys, a prompt's samples are a function of (seed, key): the same whether it is
    drawn alone or with others (what data-parallel training relies on)."""
    params = SampleParams(n=4, max_new_tokens=10, batch_size=64)
    both = generate(model, tok, PROMPTS[:2], params, seed=5, backend=backend, keys=[17, 3])
    alone = generate(model, tok, PROMPTS[1:2], params, seed=5, backend=backend, keys=[3])
    assert both.token_ids[4:] == alone.token_ids and alone.prompt_idx == [0] * 4
    other = generate(model, tok, PROMPTS[1:2], params, seed=5, backend=backend, keys=[4])
    assert other.token_ids != alone.token_ids


def test_process_logits_matches_transformers():
    torch.manual_seed(0)
    logits = torch.randn(64, 50) * 3
    logits[:, :5] = logits[:, 5:10]  # ties at the cut-offs
    for p in [SampleParams(1, 1, 0.7, 0.8, 5), SampleParams(1, 1, 1.0, 0.5, 0), SampleParams(1, 1)]:
        got = fast.process_logits(logits, p).softmax(-1)
        torch.testing.assert_close(got, _hf_probs(logits, p))


def test_uniforms():
    rows = torch.arange(4096)
    u = fast.uniforms(123, rows // 64, rows % 64, 8)
    assert u.shape == (4096, 8) and (u > 0).all() and (u <= 1).all()
    assert abs(u.mean().item() - 0.5) < 0.01 and abs(u.var().item() - 1 / 12) < 0.003
    assert u.unique().numel() > 0.99 * u.numel()
    torch.testing.assert_close(fast.uniforms(123, rows[5:9] // 64, rows[5:9] % 64, 8), u[5:9])
    assert not torch.equal(fast.uniforms(124, rows // 64, rows % 64, 8), u)


def test_unsupported_model_is_refused(tok):
    assert fast.supports(tiny_llama(ModelConfig(16, 1, 2, 32, 64), tok)) is None

    class Other:
        config = type("C", (), {"model_type": "gpt2"})()

    assert "gpt2" in fast.supports(Other())


def test_weights_copy_from_and_graph_guard(model, tok):
    """The CUDA graph cache refreshes captured weight tensors in place: copy_from must take
    every tensor (checked on the CPU); graphs need the static path on CUDA."""
    stale = fast.Weights(model, 64, torch.bfloat16)
    fresh = fast.Weights(model, 64, torch.float32)
    stale.copy_from(fresh)
    for a, b in zip(stale.tensors(), fresh.tensors(), strict=True):
        assert (a is None and b is None) or torch.equal(a, b.to(a.dtype))
    with pytest.raises(ValueError, match="CUDA graphs"):
        fast.sample(model, [[1, 5]], SampleParams(1, 2), 0, 2, 0, graphs=True)
