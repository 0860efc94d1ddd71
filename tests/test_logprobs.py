"""The memory-lean (chunked, checkpointed) token log-probs equal the naive full-logits ones."""

import pytest
import torch

from sps.config import ModelConfig
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.train.logprobs import (
    PREFIX_MIN,
    _hidden,
    _repeatable,
    can_share,
    pack,
    shared_prefix,
    token_logprobs,
)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_chunked_logprobs_equal_naive(chunk):
    torch.manual_seed(0)
    tok = char_tokenizer()
    model = tiny_llama(ModelConfig(32, 2, 2, 64, 96), tok).double()
    prompts = [[1, 20, 21, 22], [1, 30], [1, 40, 41]]
    completions = [[50, 51, 52, 2], [60, 61, 62, 63, 64, 65, 2], [70]]
    ids, attn, target = pack(prompts, completions, tok.pad_token_id, torch.device("cpu"))

    def run(c):
        model.zero_grad()
        logp, ent, mask = token_logprobs(model, ids, attn, target, entropy_grad=True, chunk=c)
        (logp[mask].sum() + ent[mask].sum()).backward()
        grads = [p.grad.clone() for p in model.parameters()]
        return logp.detach(), ent.detach(), mask, grads

    naive, lean = run(0), run(chunk)
    assert torch.equal(naive[2], lean[2])
    torch.testing.assert_close(lean[0][naive[2]], naive[0][naive[2]])
    torch.testing.assert_close(lean[1][naive[2]], naive[1][naive[2]])
    for a, b in zip(naive[3], lean[3], strict=True):
        torch.testing.assert_close(a, b)


def _shared_prefix_batch(tok, prefix_len: int):
    """Rows that start with the same `prefix_len` prompt tokens, then differ in prompt and
    completion lengths (right padding), as a few-shot prompt's rows do."""
    prefix = [1] + [20 + i % 40 for i in range(prefix_len - 1)]
    prompts = [prefix + [30, 31], prefix + [40], prefix + [50, 51, 52]]
    completions = [[60, 61, 62, 2], [63, 64, 65, 66, 67, 68, 2], [69]]
    return pack(prompts, completions, tok.pad_token_id, torch.device("cpu"))


@pytest.mark.parametrize("prefix_len", [PREFIX_MIN - 4, PREFIX_MIN + 9])
@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_lean_path_with_a_shared_prefix_equals_naive(chunk, prefix_len):
    torch.manual_seed(1)
    tok = char_tokenizer()
    model = tiny_llama(ModelConfig(32, 2, 2, 64, 96), tok).double()
    ids, attn, target = _shared_prefix_batch(tok, prefix_len)
    assert shared_prefix(ids, attn, target) == prefix_len  # the first differing token is a prompt's

    def run(c, share=True):
        model.zero_grad()
        logp, ent, mask = token_logprobs(
            model, ids, attn, target, entropy_grad=True, chunk=c, share_prefix=share
        )
        (logp[mask].sum() + ent[mask].sum()).backward()
        return logp.detach(), ent.detach(), mask, [p.grad.clone() for p in model.parameters()]

    naive = run(0)
    for lean in (run(chunk), run(chunk, share=False)):
        assert torch.equal(naive[2], lean[2])
        torch.testing.assert_close(lean[0][naive[2]], naive[0][naive[2]])
        torch.testing.assert_close(lean[1][naive[2]], naive[1][naive[2]])
        assert not lean[0][~naive[2]].any() and not lean[1][~naive[2]].any()
        for a, b in zip(naive[3], lean[3], strict=True):
            torch.testing.assert_close(a, b)


def test_shared_prefix_stops_before_the_first_scored_token():
    prompts = [[1, 5, 6, 7], [1, 5, 6, 7], [1, 5, 6]]  # the third completion starts at 3
    completions = [[8, 2], [9, 2], [7, 8, 2]]
    ids, attn, target = pack(prompts, completions, 0, torch.device("cpu"))
    assert shared_prefix(ids, attn, target) == 2  # position 2 scores token 3, the third's first
    ids, attn, target = pack([[1, 5], [3, 5]], [[8], [8]], 0, torch.device("cpu"))
    assert shared_prefix(ids, attn, target) == 0  # they differ at once
    ids, attn, target = pack([[1, 5, 6], [1, 5, 6]], [[8], [9]], 0, torch.device("cpu"))
    assert shared_prefix(ids, attn, target) == 2  # identical prompts: all but the last token
    # left padding (not what pack builds): identical pads are no prefix, the pass has no mask
    ids = torch.tensor([[0, 0, 1, 5, 6, 8], [0, 0, 1, 5, 6, 9]])
    attn = (ids != 0).long()
    target = torch.zeros_like(ids, dtype=torch.bool)
    target[:, 5] = True
    assert shared_prefix(ids, attn, target) == 0


def test_lean_path_without_scored_positions_still_backpropagates():
    tok = char_tokenizer()
    model = tiny_llama(ModelConfig(32, 2, 2, 64, 96), tok)
    ids, attn, target = pack([[1, 20, 21]], [[]], tok.pad_token_id, torch.device("cpu"))
    logp, _, mask = token_logprobs(model, ids, attn, target, chunk=4)
    assert not mask.any() and logp.shape == (1, 2)
    logp.sum().backward()  # a zero gradient, not an error


def test_length_dependent_rope_is_never_shared():
    """Dynamic-NTK or longrope scaling rotates by the whole length: a prefix run alone would
    get other keys, so such models run whole."""
    torch.manual_seed(2)
    tok = char_tokenizer()
    model = tiny_llama(ModelConfig(32, 2, 2, 64, 96), tok).double()
    model.config.rope_parameters = {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4}
    assert not can_share(model)
    model.config.rope_parameters = {"rope_type": "default", "rope_theta": 1e4}
    assert can_share(model)
    model.config.rope_scaling = {"type": "longrope"}  # the older key and spelling
    assert not can_share(model)


def test_only_a_plain_kv_cache_is_repeated():
    from transformers.cache_utils import DynamicCache

    assert not _repeatable(None) and not _repeatable(((torch.zeros(1),),))
    assert not _repeatable(DynamicCache())  # no layers


def test_a_llama_cache_is_shared():
    """The shared path is taken, not silently skipped, for the Llama architecture (the tiny
    model's and SmolLM2's): the decoder returns hidden states for the suffix only."""
    tok = char_tokenizer()
    model = tiny_llama(ModelConfig(32, 2, 2, 64, 96), tok)
    ids, attn, target = _shared_prefix_batch(tok, PREFIX_MIN + 2)
    hidden, prefix = _hidden(model, ids, attn, PREFIX_MIN + 2)
    assert prefix == PREFIX_MIN + 2 and hidden.shape[1] == ids.shape[1] - prefix
