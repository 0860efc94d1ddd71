"""The memory-lean (chunked, checkpointed) token log-probs equal the naive full-logits ones."""

import pytest
import torch

from sps.config import ModelConfig
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.train.logprobs import pack, token_logprobs


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
