"""Rollouts: `generate(model, tokenizer, prompts, params, seed, backend)` over three backends.

- `fast` (default): our own sampler (rollout/fast/): shared prefill, preallocated KV cache,
  compaction of stopped rows, CUDA graphs on GPU. Samples depend only on (seed, prompt index,
  sample index), not on the batch size.
- `hf`: transformers' `model.generate` (rollout/hf.py), the portable reference; its samples
  depend on the chunking (one torch seed per chunk).
- `vllm` (rollout/vllm.py): vLLM's engine on CUDA, imported only when chosen; `model` is then
  the saved model directory, not a loaded model.

All draw from the same distribution (temperature, top-p, top-k as transformers) but from
different random streams, so their samples differ for the same seed. `auto` resolves to vllm
where it imports and CUDA is present, else to fast.
"""

from __future__ import annotations

import importlib.util

from sps.rollout.base import Rollouts, SampleParams

BACKENDS = ("hf", "fast", "vllm", "auto")


def resolve_backend(backend: str) -> str:
    """The backend `auto` stands for here; any other name is returned as is."""
    if backend != "auto":
        return backend
    import torch

    has_vllm = importlib.util.find_spec("vllm") is not None
    return "vllm" if has_vllm and torch.cuda.is_available() else "fast"


def generate(
    model,
    tokenizer,
    prompts: list[str],
    params: SampleParams,
    seed: int,
    backend: str = "fast",
    keys: list[int] | None = None,
) -> Rollouts:
    """`params.n` samples per prompt with the named backend (see the module docstring).

    `keys` (one int per prompt, e.g. its dataset index) make each prompt's samples a function
    of (seed, key) alone, whatever else is in the call: the fast sampler keys its noise with
    them in one batched call; the other backends then draw one call per prompt, seeded by
    (seed, key)."""
    backend = resolve_backend(backend)
    if keys is not None and backend != "fast":
        return _per_prompt(model, tokenizer, prompts, params, seed, backend, keys)
    if backend == "fast":
        from sps.rollout.fast import generate as impl
    elif backend == "hf":
        from sps.rollout.hf import generate as impl
    elif backend == "vllm":
        from sps.rollout.vllm import generate as impl
    else:
        raise ValueError(f"unknown sampling backend {backend!r}; expected one of {BACKENDS}")
    if keys is not None:
        return impl(model, tokenizer, prompts, params, seed, keys=keys)
    return impl(model, tokenizer, prompts, params, seed)


def _per_prompt(model, tokenizer, prompts, params, seed, backend, keys) -> Rollouts:
    from sps.seeding import derive_seed

    out = Rollouts([], [], [], [], [], [])
    for k, (prompt, key) in enumerate(zip(prompts, keys, strict=True)):
        ro = generate(model, tokenizer, [prompt], params, derive_seed(seed, key), backend)
        out.prompt_idx.extend([k] * len(ro))
        out.token_ids.extend(ro.token_ids)
        out.texts.extend(ro.texts)
        out.logprobs.extend(ro.logprobs)
        out.finish.extend(ro.finish)
        out.prompt_ids.extend(ro.prompt_ids)
    return out


__all__ = ["BACKENDS", "Rollouts", "SampleParams", "generate", "resolve_backend"]
