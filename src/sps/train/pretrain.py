"""Pretrain the built-in base model from scratch on generated countdown traces (SFT).

The traces mix every correct solution of a problem with wrong attempts, so the resulting
base policy is diverse and imperfect: the starting point where RL's squeezing shows.
"""

from __future__ import annotations

import math
import random
import time

import torch

from sps.config import ModelConfig, PretrainConfig
from sps.models.io import autocast
from sps.models.tiny import char_tokenizer, tiny_llama
from sps.tasks.countdown import Problem, make_trace


def encode_batch(tokenizer, prompts: list[str], completions: list[str], device: torch.device):
    """Right-padded ids, mask and labels; the loss sees only completion tokens and EOS."""
    rows, labels = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        p = [tokenizer.bos_token_id] + tokenizer.encode(prompt, add_special_tokens=False)
        c = tokenizer.encode(completion, add_special_tokens=False) + [tokenizer.eos_token_id]
        rows.append(p + c)
        labels.append([-100] * len(p) + c)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    lab = torch.tensor([r + [-100] * (width - len(r)) for r in labels], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return ids, mask, lab


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warmup, then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def pretrain(
    problems: list[Problem],
    model_cfg: ModelConfig,
    cfg: PretrainConfig,
    seed: int,
    device: torch.device,
    log_every: int = 50,
):
    """Train a fresh tiny Llama on traces of `problems`; returns (model, tokenizer)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = char_tokenizer()
    model = tiny_llama(model_cfg, tokenizer).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95)
    )
    model.train()
    start, tokens = time.time(), 0
    for step in range(cfg.steps):
        batch = [rng.choice(problems) for _ in range(cfg.batch_size)]
        completions = [make_trace(p, rng, cfg.wrong_fraction) for p in batch]
        ids, mask, labels = encode_batch(
            tokenizer, [p.prompt() for p in batch], completions, device
        )
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.warmup_steps, cfg.lr)
        with autocast(device):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int(mask.sum())
        if step % log_every == 0 or step == cfg.steps - 1:
            rate = tokens / (time.time() - start)
            print(
                f"pretrain step {step + 1}/{cfg.steps} loss {loss.item():.4f} tok/s {rate:.0f}",
                flush=True,
            )
    model.eval()
    return model, tokenizer
