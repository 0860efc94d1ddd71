"""Sampling with vLLM, where it is installed (CUDA machines): n samples per prompt in one
`SamplingParams(n=..., seed=...)` request, from the saved HF model directory. (Training's
rollouts use an engine that follows the policy's weights in place: rollout/colocate.py.)

vllm is imported here only, so the package works without it. The prompts are given as token
ids (the same BOS handling as the other backends), and the log-probs asked for are the
processed ones (after temperature, top-p, top-k), like the other backends' `logprob` column.
"""

from __future__ import annotations

import os
from functools import cache

from sps.rollout.base import Rollouts, SampleParams, encode_prompts


@cache
def _engine(model_dir: str, tensor_parallel_size: int):
    from vllm import LLM

    options = {"model": model_dir, "tensor_parallel_size": tensor_parallel_size, "seed": 0}
    try:  # vllm >= 0.10.2: log-probs of the distribution actually sampled from
        return LLM(**options, logprobs_mode="processed_logprobs")
    except TypeError:
        return LLM(**options)


def sampling_params(params: SampleParams, seed: int):
    from vllm import SamplingParams as VllmParams

    return VllmParams(
        n=params.n,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k if params.top_k > 0 else -1,  # vllm's "no top-k" is -1
        max_tokens=params.max_new_tokens,
        seed=seed,
        logprobs=0,  # the sampled token's log-prob only
    )


def generate(model_dir, tokenizer, prompts: list[str], params: SampleParams, seed: int) -> Rollouts:
    """`params.n` samples per prompt; `model_dir` is the saved HF directory (a path)."""
    if not isinstance(model_dir, str | os.PathLike):
        raise TypeError("the vllm backend samples from a model directory, not a loaded model")
    from vllm.inputs import TokensPrompt

    tp = int(os.environ.get("SPS_VLLM_TP", "1"))
    prompt_ids = encode_prompts(tokenizer, prompts)
    requests = [TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids]
    outputs = _engine(str(model_dir), tp).generate(requests, sampling_params(params, seed))
    return to_rollouts(outputs, prompt_ids)


def to_rollouts(outputs, prompt_ids: list[list[int]]) -> Rollouts:
    """vLLM's request outputs (one per prompt, in order) as Rollouts, prompt-major."""
    out = Rollouts([], [], [], [], [], prompt_ids)
    for i, request in enumerate(outputs):
        for completion in request.outputs:
            out.prompt_idx.append(i)
            out.token_ids.append(list(completion.token_ids))
            out.texts.append(completion.text)
            out.logprobs.append(float(completion.cumulative_logprob or 0.0))
            out.finish.append("stop" if completion.finish_reason == "stop" else "length")
    return out
