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
    model, tokenizer, prompts: list[str], params: SampleParams, seed: int, backend: str = "fast"
) -> Rollouts:
    """`params.n` samples per prompt with the named backend (see the module docstring)."""
    backend = resolve_backend(backend)
    if backend == "fast":
        from sps.rollout.fast import generate as impl
    elif backend == "hf":
        from sps.rollout.hf import generate as impl
    elif backend == "vllm":
        from sps.rollout.vllm import generate as impl
    else:
        raise ValueError(f"unknown sampling backend {backend!r}; expected one of {BACKENDS}")
    return impl(model, tokenizer, prompts, params, seed)


__all__ = ["BACKENDS", "Rollouts", "SampleParams", "generate", "resolve_backend"]
