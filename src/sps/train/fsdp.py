"""Sharded data parallelism (`rl.parallel: fsdp`): FSDP2 over every training process.

Each decoder layer, then the whole model, is `fully_shard`ed over a one-dimensional device
mesh (nccl on CUDA, gloo on the CPU): every process keeps 1/world of each parameter, its
gradient and its AdamW states, and gathers a layer's full weights only while it computes.
On CUDA the gathered weights are bf16 (MixedPrecisionPolicy param_dtype) and gradients are
reduced in float32; the sharded weights and optimizer states stay float32.

Gradients. Our losses are normalised by global counts (all-reduced first, as under ddp), so
the gradient of the whole batch is the *sum* of the processes' gradients. FSDP2 divides by
the world size by default; the divide factor is set to 1 and the reduce-scatter to a plain
SUM, so it sums.

Lockstep. FSDP gathers and reduces inside every forward and backward, so every process must
run the same sequence of passes (the trainer sees to it: equal shares of the prompts, and
the IRL buffer's pass run on every process).

Whole weights. The samplers and the vLLM engine read whole tensors, and final/ is a plain
model: `frame` is a copy of the model with no parameter memory, taken before sharding;
`materialise` gives it real parameters and `gather` fills them from the shards, one tensor
at a time (an all-gather each, on every process). The vLLM push needs no whole copy:
`Streamed` gathers each tensor only as the engine reads it.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
from torch import nn


def ensure_group(device: torch.device) -> None:
    """The process group FSDP needs: torchrun's (distributed.init_from_env), or else a
    single-process one (world size 1 is sharding over one device: the GPU check runs it)."""
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks: modules of the classes transformers keeps whole when it
    splits a model across devices (`_no_split_modules`, e.g. LlamaDecoderLayer)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft
    names = set(getattr(base, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(
            f"rl.parallel fsdp: no decoder layers found in {type(base).__name__} "
            f"(_no_split_modules: {sorted(names)})"
        )
    return layers


def shard(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` sharded in place: each decoder layer, then the rest (embeddings, final norm
    and LM head, tied or not, in the root's group). The root's weights stay gathered from
    its forward to the end of the backward (FSDP2's default), so the chunked LM head
    (sps.train.logprobs) can be applied after the forward; a model that has no backward
    (the frozen reference) must `reshard()` them itself."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    policy = MixedPrecisionPolicy()  # the CPU: compute in the parameters' own dtype
    if device.type == "cuda":
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)  # a sum over processes, not a mean
            # as a plain SUM: gloo has no PREMUL_SUM, which FSDP would use for fp32 and bf16
            module.set_force_sum_reduction_for_comms(True)
    return model


def frame(model: nn.Module) -> nn.Module:
    """A deep copy of `model` whose parameters are on the meta device (no memory), ties
    kept; buffers (the rotary tables) are real copies. Taken before sharding."""
    memo = {
        id(p): nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=False)
        for p in model.parameters()
    }
    return copy.deepcopy(model, memo)


def materialise(
    frame: nn.Module, device: torch.device | str, dtype: torch.dtype | None = None
) -> nn.Module:
    """A copy of `frame` with uninitialised parameters on `device` (in `dtype`, default the
    frame's), ties kept, in eval mode and without gradients: fill it with `gather`."""
    model = copy.deepcopy(frame)
    made: dict[int, nn.Parameter] = {}
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is None:
                continue
            if id(p) not in made:
                empty = torch.empty_like(p, device=device, dtype=dtype or p.dtype)
                made[id(p)] = nn.Parameter(empty, requires_grad=False)
            module._parameters[name] = made[id(p)]
        for name, b in module._buffers.items():
            if b is not None:
                module._buffers[name] = b.to(device)
    return model.eval()


@torch.no_grad()
def gather(sharded: nn.Module, into: nn.Module | None) -> None:
    """Copy every parameter of `sharded`, whole, into the parameter of the same name of
    `into` (converting device and dtype), one tensor at a time. Each is an all-gather, so
    every process calls this, `into` None on those that only take part."""
    from torch.distributed.tensor import DTensor

    target = dict(into.named_parameters()) if into is not None else {}
    for name, p in sharded.named_parameters():
        whole = p.full_tensor() if isinstance(p, DTensor) else p
        if into is None:
            continue
        if name not in target:
            raise KeyError(f"gathering the sharded model: {name} has no place in the copy")
        target[name].copy_(whole)
        del whole  # the transient: one whole tensor at a time


class Streamed:
    """What the vLLM engine's weight push reads of a model (`name_or_path`, and
    `named_parameters` in order), with each parameter gathered whole only when it is read
    and dropped after: one whole tensor at a time instead of a whole copy. Every process
    must read them all, in order (each read is an all-gather)."""

    def __init__(self, sharded: nn.Module):
        self.sharded, self.name_or_path = sharded, sharded.name_or_path

    def named_parameters(self):
        from torch.distributed.tensor import DTensor

        for name, p in self.sharded.named_parameters():
            yield name, p.full_tensor() if isinstance(p, DTensor) else p
