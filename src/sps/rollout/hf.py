"""Sampling with transformers' `model.generate` (the portable backend)."""

from __future__ import annotations

from typing import Any

import torch

from sps.models.io import autocast
from sps.rollout.base import Rollouts, SampleParams, encode_prompts, left_pad
from sps.seeding import derive_seed


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], params: SampleParams, seed: int) -> Rollouts:
    """`params.n` samples per prompt. Each chunk of the flat prompt-major list is seeded from
    (seed, chunk index), so a call's output depends only on its arguments."""
    device = next(model.parameters()).device
    prompt_ids = encode_prompts(tokenizer, prompts)
    flat = [i for i in range(len(prompts)) for _ in range(params.n)]
    out = Rollouts([], [], [], [], [], prompt_ids)
    for chunk, start in enumerate(range(0, len(flat), params.batch_size)):
        idx = flat[start : start + params.batch_size]
        torch.manual_seed(derive_seed(seed, "chunk", chunk))
        _generate_chunk(model, tokenizer, [prompt_ids[i] for i in idx], params, device, out)
        out.prompt_idx.extend(idx)
    return out


def sample_padded(
    model,
    tokenizer,
    rows: list[list[int]],
    params: SampleParams,
    device: torch.device,
    **extra: Any,
) -> tuple[torch.Tensor, Any]:
    """Left-pad rows and sample them with `model.generate` at params; (padded ids, output)."""
    ids, mask = left_pad(rows, tokenizer.pad_token_id, device)
    with autocast(device):
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            max_new_tokens=params.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **extra,
        )
    return ids, out


def _generate_chunk(model, tokenizer, rows, params: SampleParams, device, out: Rollouts) -> None:
    ids, gen = sample_padded(
        model, tokenizer, rows, params, device, return_dict_in_generate=True, output_scores=True
    )
    new = gen.sequences[:, ids.shape[1] :]
    # scores are the processed logits the sampler drew from (temperature, top-p, top-k applied)
    logp = torch.stack(gen.scores, dim=1).float().log_softmax(-1)
    tok_logp = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
    eos = tokenizer.eos_token_id
    for row, lp in zip(new.tolist(), tok_logp, strict=True):
        length = row.index(eos) + 1 if eos in row else len(row)
        out.token_ids.append(row[:length])
        out.texts.append(tokenizer.decode(row[:length], skip_special_tokens=True))
        out.logprobs.append(float(lp[:length].sum()))
        out.finish.append("stop" if eos in row else "length")
