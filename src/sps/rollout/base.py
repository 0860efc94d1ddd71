"""The rollout interface shared by training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SampleParams:
    n: int  # samples per prompt
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 disables top-k
    batch_size: int = 256  # sequences per generate call


@dataclass
class Rollouts:
    """Completions of `prompts[prompt_idx[i]]`, flattened prompt-major (prompt 0's n first)."""

    prompt_idx: list[int]
    token_ids: list[list[int]]  # completion tokens, EOS included when generated
    texts: list[str]  # decoded completion, without special tokens
    logprobs: list[float]  # sum of the sampling distribution's token log-probs
    finish: list[str]  # "stop" (EOS) or "length"
    prompt_ids: list[list[int]]  # per prompt, the tokens the model saw (BOS + prompt)

    def __len__(self) -> int:
        return len(self.token_ids)


def encode_prompts(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Token ids per prompt, BOS first; a chat-rendered prompt brings its own special tokens
    (SmolLM2's BOS is `<|im_start|>`, which its template already opens with)."""
    bos = tokenizer.bos_token_id
    rows = []
    for p in prompts:
        ids = tokenizer.encode(p, add_special_tokens=False)
        rows.append(ids if bos is None or ids[:1] == [bos] else [bos] + ids)
    return rows


def left_pad(rows: list[list[int]], pad: int, device: torch.device):
    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask
