"""Rollouts: `generate(model, tokenizer, prompts, params, seed, backend)` over two backends.

- `fast` (default): our own sampler (rollout/fast/): shared prefill, preallocated KV cache,
  compaction of stopped rows, CUDA graphs on GPU. Samples depend only on (seed, prompt index,
  sample index), not on the batch size.
- `hf`: transformers' `model.generate` (rollout/hf.py), the portable reference; its samples
  depend on the chunking (one torch seed per chunk).

Both draw from the same distribution (temperature, top-p, top-k as transformers) but from
different random streams, so their samples differ for the same seed.
"""

from __future__ import annotations

from sps.rollout.base import Rollouts, SampleParams

BACKENDS = ("hf", "fast")


def generate(
    model, tokenizer, prompts: list[str], params: SampleParams, seed: int, backend: str = "fast"
) -> Rollouts:
    """`params.n` samples per prompt with the named backend (see the module docstring)."""
    if backend == "fast":
        from sps.rollout.fast import generate as impl
    elif backend == "hf":
        from sps.rollout.hf import generate as impl
    else:
        raise ValueError(f"unknown sampling backend {backend!r}; expected one of {BACKENDS}")
    return impl(model, tokenizer, prompts, params, seed)


__all__ = ["BACKENDS", "Rollouts", "SampleParams", "generate"]
