"""LoRA adapters (peft) for training, and the plain merged model for everything that reads
a model directory (sampling, evaluation snapshots, final/).

peft is an optional extra (`pip install sps[lora]`): it is imported only here, and this
module only when `rl.lora_rank` > 0.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def wrap(model, rank: int, alpha: float, dropout: float, targets: list[str]):
    """The model with LoRA adapters on `targets`; only the adapters are trainable."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # the optional extra is missing
        raise ImportError("rl.lora_rank > 0 needs peft: pip install 'sps[lora]'") from exc
    cfg = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def is_lora(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "merge_and_unload")


def adapter_module(model) -> torch.nn.Module:
    """A module whose parameters are exactly the trainable (adapter) ones, the same tensors:
    checkpoints save and restore it in place instead of the whole frozen base."""
    holder = torch.nn.Module()
    holder.params = torch.nn.ParameterDict(
        {name.replace(".", "__"): p for name, p in model.named_parameters() if p.requires_grad}
    )
    return holder


def merged_copy(model):
    """A plain transformers model with the adapters merged in (the original is untouched)."""
    return copy.deepcopy(model).merge_and_unload()


@contextmanager
def merged(model) -> Iterator[torch.nn.Module]:
    """The underlying transformers model with the adapters merged into its weights, for the
    samplers (which read the weights directly). The base weights are restored bit-exactly
    afterwards: unmerging alone would leave rounding drift that builds up over steps."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    saved = [m.get_base_layer().weight.detach().clone() for m in layers]
    model.merge_adapter()
    try:
        yield model.get_base_model()
    finally:
        model.unmerge_adapter()
        with torch.no_grad():
            for m, w in zip(layers, saved, strict=True):
                m.get_base_layer().weight.copy_(w)
