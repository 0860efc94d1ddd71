"""The sampler's entry points: `sample` splits the prompt-major rows into chunks and runs
each on the static or the prefix-dedup path (identical samples), and `generate` wraps it
in the `rollout.hf.generate` contract (texts, summed log-probs, finish reasons).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sps.rollout.base import Rollouts, SampleParams, encode_prompts
from sps.rollout.fast.dedup import GEN_BLOCK, _run_dedup
from sps.rollout.fast.static import _run_static, _static_setup
from sps.rollout.fast.weights import Weights, _groups


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
    keys: list[int] | None = None,
) -> Samples:
    """`params.n` samples of every prompt, in chunks of `params.batch_size` rows of the
    prompt-major list. `static` picks the fixed-shape path (default on CUDA) over the
    prefix-dedup path (default elsewhere); `graphs` captures the static step as CUDA graphs
    (default on CUDA). `keys` name the prompts in the noise (default: their positions), so
    a prompt's samples can be made independent of the other prompts in the call."""
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    static = cuda if static is None else static
    graphs = (cuda and static) if graphs is None else graphs
    if graphs and not (static and cuda):
        raise ValueError("CUDA graphs need the static path on a CUDA device")
    if min(map(len, prompt_ids)) == 0:
        raise ValueError("empty prompt (and the tokenizer has no BOS token)")
    max_new, n = params.max_new_tokens, params.n
    keys = list(range(len(prompt_ids))) if keys is None else list(keys)
    if len(keys) != len(prompt_ids):
        raise ValueError(f"{len(keys)} keys for {len(prompt_ids)} prompts")
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
            _run_static(w, bt, gr, groups, prompt_ids, params, seed, eos, pad, out, scratch, keys)
    else:
        for groups in chunks:
            _run_dedup(w, groups, prompt_ids, params, seed, eos, pad, out, keys)
    return _finish(flat, out[0][:-1], out[1][:-1], eos)


def _finish(flat: list[int], tokens: torch.Tensor, logprobs: torch.Tensor, eos: int) -> Samples:
    max_new = tokens.shape[1]
    is_eos = tokens == eos
    stopped = is_eos.any(1)
    lengths = torch.where(stopped, is_eos.int().argmax(1) + 1, max_new)
    keep = torch.arange(max_new, device=tokens.device)[None] < lengths[:, None]
    return Samples(flat, tokens.cpu(), (logprobs * keep).cpu(), lengths.tolist(), stopped.tolist())


def generate(
    model,
    tokenizer,
    prompts: list[str],
    params: SampleParams,
    seed: int,
    keys: list[int] | None = None,
) -> Rollouts:
    """Same contract as `rollout.hf.generate`; sample i of prompt p depends only on
    (seed, keys[p] (default p), i) and the model, not on batch_size."""
    prompt_ids = encode_prompts(tokenizer, prompts)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    s = sample(model, prompt_ids, params, seed, eos, pad, keys=keys)
    out = Rollouts(list(s.prompt_idx), [], [], [], [], prompt_ids)
    sums = s.token_logprobs.sum(1).tolist()
    for row, length, stop, lp in zip(s.tokens.tolist(), s.lengths, s.stopped, sums, strict=True):
        out.token_ids.append(row[:length])
        out.texts.append(tokenizer.decode(row[:length], skip_special_tokens=True))
        out.logprobs.append(lp)
        out.finish.append("stop" if stop else "length")
    return out
