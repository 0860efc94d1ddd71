"""vLLM rollouts inside training (`rl.backend: vllm`), as in TRL's colocate mode: one vLLM
engine per training process, on its GPU, whose weights follow the policy in place.

- Start (at the first rollouts): `vllm.LLM` on the base model's directory
  (`model.name_or_path`), inside this process (`distributed_executor_backend=
  "external_launcher"`: no worker processes, so the engine's torch module is reachable, and
  under torchrun every rank gets its own engine), taking `rl.vllm_gpu_memory_utilization` of
  the GPU, in bf16 (what training's autocast computes in). The policy's weights are pushed at
  once: a resumed run's are not the base's.
- Sync: after each optimizer step the trainer pushes its weights (LoRA adapters merged in
  first) through the engine model's own `load_weights`, which takes transformers' names and
  copies each tensor into the engine's (fused, bf16) parameters on the GPU: no save, no
  reload from disk. The prefix cache is reset, since its K/V came from the old weights.
- Sleep (`rl.vllm_sleep`): after the rollouts the engine sleeps at level 1 (weights copied to
  CPU memory, KV cache freed), so the update has the GPU; it wakes its weights for the next
  push and its KV cache for the next rollouts. Level 2 would drop the weights and buffers such
  as the rotary table, which `load_weights` does not restore (vllm#29341).
- Rollouts: one request per prompt, `SamplingParams(n=group_size, seed=derive_seed(seed,
  key))` with the prompt's dataset index as key: the same per-prompt seeds that
  `rollout.generate(keys=...)` gives the hf backend, so a prompt's rollouts depend on
  (seed, step, prompt index) only. All requests go in one `generate` call.

Written for vLLM 0.10.2 to 0.25 (the `vllm` extra pins that range): `logprobs_mode` needs
0.10.2; the rest (`LLM.sleep`, `wake_up(tags=...)`, `reset_prefix_cache`, external_launcher
and the in-process path `llm_engine.model_executor.driver_worker.model_runner.model`) is what
TRL's colocate mode uses, in the TRL release read for this with vLLM 0.16 to 0.25.1. Never
run here: vllm cannot be installed where this was written (no GPU);
tests/test_vllm_training.py checks our side against a stand-in engine with these methods.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import torch

from sps.rollout.base import Rollouts, SampleParams, encode_prompts
from sps.rollout.vllm import sampling_params, to_rollouts
from sps.seeding import derive_seed

TAGS = ("weights", "kv_cache")  # what sleep frees and wake_up restores


def engine_weights(model) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of every weight of a transformers model, named as its checkpoint names
    it. A LoRA model (adapters merged into the base weights first) is unwrapped as TRL does:
    peft's prefixes and `.base_layer` come off the names, and the adapters are skipped."""
    for name, param in model.named_parameters():
        if "lora_" in name or "original_module" in name:
            continue
        name = name.removeprefix("base_model.model.").replace(".base_layer", "")
        yield name.replace("modules_to_save.default.", ""), param.detach()


class ColocatedEngine:
    """A vLLM engine beside the trainer: `load` new weights in place, `generate` keyed
    rollouts, asleep in between (see the module docstring)."""

    def __init__(self, llm, sleep: bool):
        self.llm, self.sleeps = llm, sleep
        self.awake = set(TAGS)  # a new engine is awake

    @classmethod
    def start(cls, model, memory: float, sleep: bool) -> ColocatedEngine:
        """An engine for `model` (a plain transformers model), holding its current weights."""
        if not model.name_or_path:  # vLLM builds the model from its directory's config
            raise ValueError("rl.backend vllm needs a model loaded from a directory")
        try:
            from vllm import LLM
        except ImportError as exc:
            raise ImportError(
                "rl.backend vllm needs vllm and a CUDA GPU: pip install 'sps[vllm]'"
            ) from exc
        # external_launcher joins torch.distributed from the environment (torchrun's); one
        # process alone gets a single-rank group on a free port
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
            os.environ.setdefault(key, value)
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        llm = LLM(
            model=model.name_or_path,
            dtype="bfloat16",
            gpu_memory_utilization=memory,
            enable_sleep_mode=sleep,
            distributed_executor_backend="external_launcher",
            seed=0,  # every request brings its own seed
            max_num_batched_tokens=4096,  # TRL: the V1 profiler misjudges memory at the default
            logprobs_mode="processed_logprobs",  # log-probs of what was sampled from
        )
        engine = cls(llm, sleep)
        engine.load(model)
        return engine

    def load(self, model) -> None:
        """Copy `model`'s weights into the engine in place (GPU to GPU)."""
        self._wake(["weights"])
        target = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        target.load_weights(engine_weights(model))
        self.llm.reset_prefix_cache()

    def generate(
        self, tokenizer, prompts: list[str], params: SampleParams, seed: int, keys: list[int]
    ) -> Rollouts:
        """`params.n` rollouts per prompt, prompt p seeded by derive_seed(seed, keys[p])."""
        from vllm.inputs import TokensPrompt

        if len(keys) != len(prompts):
            raise ValueError(f"{len(keys)} keys for {len(prompts)} prompts")
        prompt_ids = encode_prompts(tokenizer, prompts)
        requests = [TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids]
        per_prompt = [sampling_params(params, derive_seed(seed, key)) for key in keys]
        self._wake(list(TAGS))
        try:
            outputs = self.llm.generate(requests, sampling_params=per_prompt, use_tqdm=False)
        finally:
            self.sleep()
        return to_rollouts(outputs, prompt_ids)

    def sleep(self) -> None:
        """Level 1: weights to CPU memory, KV cache freed (no-op without sleep mode)."""
        if self.sleeps and self.awake:
            self.llm.sleep(level=1)
            self.awake.clear()

    def _wake(self, tags: list[str]) -> None:
        todo = [t for t in tags if t not in self.awake]
        if not todo:
            return
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # training's cached blocks, for the engine's own pool
        self.llm.wake_up(tags=todo)
        self.awake.update(todo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
