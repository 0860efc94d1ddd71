"""Loading and saving HF model directories, and picking the device."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.utils import logging as hf_logging

hf_logging.disable_progress_bar()  # job logs are read by people: one line per step, no bars


def pick_device(name: str = "auto") -> torch.device:
    """`auto` takes CUDA when present, else the CPU; `cuda` without a GPU is an error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config device is 'cuda' but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op context on the CPU (fp32 there)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def load_tokenizer(path: str | Path, trust_remote_code: bool = False):
    """The tokenizer of a saved model directory, left-padding (batched sampling)."""
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(path: str | Path, device: torch.device, trust_remote_code: bool = False):
    """(model, tokenizer) from a saved HF directory; weights must be safetensors."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model directory (no config.json)")
    tokenizer = load_tokenizer(path, trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=torch.float32
    )
    return model.to(device), tokenizer


def save_model_atomic(model: PreTrainedModel, tokenizer, out: str | Path) -> None:
    """save_pretrained into `out.tmp`, then rename: a killed job never leaves a half model."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
