"""Data-parallel training over torch.distributed (one process per GPU, launched by torchrun).

Every rank runs the same loop on its share of each step's prompts. What a single process
would compute over the whole batch is recovered exactly: losses are normalised by global
counts (all-reduced first), gradients are summed over ranks before clipping and the optimizer
step, and the per-group data that the metrics read is gathered in rank order, which is the
single process's order because ranks own contiguous blocks of the prompts. Only rank 0
writes files. With one process every operation here is the identity.

`rl.parallel: fsdp` shards the model over the same processes (sps.train.fsdp); FSDP then
reduces the gradients itself, and everything else here is used as under ddp.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist


class Dist:
    """This process's place in the job: `rank` of `world` (1 when not distributed)."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def share(self, n: int) -> tuple[int, int]:
        """[lo, hi) of this rank's contiguous block of n items (the first n % world ranks
        get one more), so concatenating the blocks in rank order gives back 0..n-1."""
        base, extra = divmod(n, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (self.rank < extra)

    def sum(self, value: float | int) -> float:
        """The sum of a number over ranks (float64, so integer counts stay exact)."""
        if not self.active:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._device())
        dist.all_reduce(t)
        return float(t.item())

    def gather(self, items: list) -> list:
        """The concatenation of every rank's list, in rank order (picklable items)."""
        if not self.active:
            return list(items)
        parts: list = [None] * self.world
        dist.all_gather_object(parts, list(items))
        return [x for part in parts for x in part]

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank (picklable): one choice made once, e.g. the checkpoint
        to resume from."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum the accumulated gradients over ranks, as one flat buffer per dtype.

        A rank with no rows (or a parameter its rows never touched) sends zeros, so every
        rank takes part in the same collective."""
        if not self.active:
            return
        params = list(params)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for p in params:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
        for grads in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def _device(self) -> torch.device:
        # nccl reduces CUDA tensors only; gloo takes CPU ones
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_type: str) -> Dist:
    """Join the process group torchrun describes (nccl on CUDA, gloo on CPU); pins this
    process to its local GPU. Returns a single-process Dist outside torchrun."""
    if not under_torchrun():
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device) -> torch.device:
    """This process's device: under torchrun on CUDA, the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and under_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def relaunch(nproc: int, argv: list[str]) -> int:
    """Run `python -m sps.cli *argv` as `nproc` processes under torchrun on this node; its
    exit status. --standalone picks a free rendezvous port, so jobs can share a machine."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(nproc), "-m", "sps.cli", *argv]
    return subprocess.call(cmd)
