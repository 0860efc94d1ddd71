"""The training loop shared by GRPO and SPS: sample a batch, then one RL or one IRL update.

GRPO is SPS with no IRL steps, so every method runs this same loop with the same budget:
`rl.steps` optimizer steps, `rl.prompts_per_step` prompts and `rl.group_size` rollouts each.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from sps.algos import group_fkl_loss, grpo_advantages, irl_skip, policy_loss, sequence_scores
from sps.config import IRLConfig, RLConfig, ScheduleConfig
from sps.rollout.base import Rollouts, SampleParams, derive_seed
from sps.rollout.hf import generate
from sps.train.groups import Group, make_groups, squeeze_stats
from sps.train.logprobs import pack, token_logprobs
from sps.train.schedule import phase_at

Grader = Callable[[int, str], float]  # (prompt index, completion text) -> reward


@dataclass
class Batch:
    rollouts: Rollouts
    groups: list[Group]
    ids: torch.Tensor
    attn: torch.Tensor
    target: torch.Tensor


class Trainer:
    def __init__(
        self,
        model,
        tokenizer,
        prompts: list[str],
        grader: Grader,
        rl: RLConfig,
        irl: IRLConfig,
        schedule: ScheduleConfig,
        seed: int,
    ):
        self.model, self.tok, self.prompts, self.grader = model, tokenizer, prompts, grader
        self.rl, self.irl, self.schedule, self.seed = rl, irl, schedule, seed
        self.device = next(model.parameters()).device
        # IRL steps get their own AdamW state: their gradients are on another scale than the
        # policy gradient's, and a shared second moment would shrink the RL steps after them.
        self.opts = {
            phase: torch.optim.AdamW(
                model.parameters(), lr=rl.lr, betas=(0.9, 0.99), weight_decay=0.0
            )
            for phase in ("rl", "irl")
        }
        # The reference model costs a full copy: load it only when the KL term is on.
        self.ref = copy.deepcopy(model).eval().requires_grad_(False) if rl.kl_coef > 0 else None

    def run(self, log: Callable[[str], None] = print) -> pd.DataFrame:
        torch.manual_seed(self.seed)
        rows = []
        for step in range(self.rl.steps):
            rows.append(self.step(step))
            log(_progress(rows[-1], self.rl.steps))
        return pd.DataFrame(rows)

    def step(self, step: int) -> dict:
        start = time.time()
        phase = phase_at(step, self.schedule)
        lr = self.rl.lr * min(1.0, (step + 1) / max(1, self.rl.warmup_steps))
        if phase == "irl":
            lr *= self.irl.lr_scale
        for group in self.opts[phase].param_groups:
            group["lr"] = lr
        batch = self.sample(step)
        stats = self.rl_update(batch) if phase == "rl" else self.irl_update(batch)
        n_tokens = sum(len(t) for t in batch.rollouts.token_ids)
        elapsed = time.time() - start
        return {
            "step": step,
            "phase": phase,
            **squeeze_stats(batch.groups),
            **stats,
            "lr": lr,
            "tokens_per_s": n_tokens / elapsed,
            "time_s": elapsed,
        }

    def sample(self, step: int) -> Batch:
        rng = random.Random(derive_seed(self.seed, "prompts", step))
        chosen = rng.sample(
            range(len(self.prompts)), min(self.rl.prompts_per_step, len(self.prompts))
        )
        params = SampleParams(
            n=self.rl.group_size,
            max_new_tokens=self.rl.max_new_tokens,
            temperature=self.rl.temperature,
            batch_size=self.rl.prompts_per_step * self.rl.group_size,
        )
        self.model.eval()
        ro = generate(
            self.model,
            self.tok,
            [self.prompts[i] for i in chosen],
            params,
            derive_seed(self.seed, "rollout", step),
        )
        rewards = [
            self.grader(chosen[p], text) for p, text in zip(ro.prompt_idx, ro.texts, strict=True)
        ]
        groups = make_groups(ro.prompt_idx, ro.token_ids, rewards)
        ids, attn, target = pack(
            [ro.prompt_ids[p] for p in ro.prompt_idx],
            ro.token_ids,
            self.tok.pad_token_id,
            self.device,
        )
        return Batch(ro, groups, ids, attn, target)

    def forward(self, batch: Batch):
        self.model.train()
        return token_logprobs(self.model, batch.ids, batch.attn, batch.target)

    def rl_update(self, batch: Batch) -> dict:
        """GRPO: group-normalised advantages, clipped ratio, optional KL (method.md)."""
        rewards = torch.tensor(np.stack([g.rewards for g in batch.groups]), dtype=torch.float32)
        adv_groups = grpo_advantages(rewards, self.rl.adv_scale, self.rl.adv_eps)
        adv = torch.zeros(len(batch.rollouts))
        for g, a in zip(batch.groups, adv_groups, strict=True):
            adv[g.rows] = a
        adv = adv.to(self.device)
        ref_logp = self.ref_logprobs(batch)
        old_logp = None
        for _ in range(self.rl.updates_per_batch):
            logp, ent, mask = self.forward(batch)
            if old_logp is None:  # the rollout policy: rho = 1 on the first update
                old_logp = logp.detach()
            loss, pstats = policy_loss(
                logp,
                old_logp,
                adv,
                mask,
                self.rl.clip_low,
                self.rl.clip_high,
                self.rl.loss_agg,
                ref_logp,
                self.rl.kl_coef,
                self.rl.max_new_tokens,
            )
            grad_norm = self.optimize(loss, "rl")
        scores = sequence_scores(logp.detach(), mask, self.irl.score)
        return {
            **self.common_stats(batch, ent, mask, scores),
            "loss": loss.item(),
            "grad_norm": grad_norm,
            "kl": pstats["kl"],
            **_nan_irl_stats(),
        }

    def irl_update(self, batch: Batch) -> dict:
        """SPS IRL step: forward KL from the max-ent demonstration distribution q to the
        policy's distribution p over the group's distinct completions (method.md)."""
        logp, ent, mask = self.forward(batch)
        scores = sequence_scores(logp, mask, self.irl.score)
        losses, w_all, skipped = [], [], 0
        for g in batch.groups:
            demo = torch.tensor(
                g.correct if self.irl.support == "correct" else [True] * len(g.first)
            )
            if irl_skip(demo):
                skipped += 1
                continue
            loss, st = group_fkl_loss(
                scores[g.first],
                demo,
                torch.tensor(g.counts, dtype=torch.float),
                self.irl.tau,
                self.irl.q,
            )
            losses.append(loss)
            w_all.append(st["w"])
        total = torch.stack(losses).mean() if losses else None
        grad_norm = self.optimize(total, "irl") if total is not None else 0.0
        w = torch.cat(w_all) if w_all else torch.zeros(0)
        return {
            **self.common_stats(batch, ent, mask, scores.detach()),
            "loss": total.item() if total is not None else float("nan"),
            "grad_norm": grad_norm,
            "kl": float("nan"),
            "undervalued_share": float((w > 0).float().mean()) if len(w) else float("nan"),
            "w_abs_mean": float(w.abs().mean()) if len(w) else float("nan"),
            "irl_skipped": skipped,
        }

    def optimize(self, loss: torch.Tensor, phase: str) -> float:
        opt = self.opts[phase]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.rl.grad_clip or math.inf
        )
        opt.step()
        return float(norm)

    @torch.no_grad()
    def ref_logprobs(self, batch: Batch):
        if self.ref is None:
            return None
        return token_logprobs(self.ref, batch.ids, batch.attn, batch.target, False)[0]

    def common_stats(self, batch: Batch, ent, mask, scores: torch.Tensor) -> dict:
        max_p = [
            float(torch.softmax(scores[g.first] / self.irl.tau, 0).max()) for g in batch.groups
        ]
        return {
            "entropy": float(ent[mask].mean()),
            "score_mean": float(scores.mean()),
            "max_p": float(np.mean(max_p)),
        }


def _nan_irl_stats() -> dict:
    return {
        "undervalued_share": float("nan"),
        "w_abs_mean": float("nan"),
        "irl_skipped": float("nan"),
    }


def _progress(row: dict, total: int) -> str:
    return (
        f"step {row['step'] + 1}/{total} {row['phase']:>3} reward {row['reward_mean']:.3f} "
        f"entropy {row['entropy']:.3f} distinct {row['distinct_ratio']:.3f} "
        f"loss {row['loss']:.4f} tok/s {row['tokens_per_s']:.0f}"
    )
