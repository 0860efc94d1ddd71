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
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sps.algos import group_fkl_loss, irl_skip, policy_loss, sequence_scores
from sps.config import BaselineConfig, IRLConfig, RLConfig, ScheduleConfig
from sps.rollout import generate
from sps.rollout.base import Rollouts, SampleParams, derive_seed
from sps.train.advantage import ESTIMATORS, group_advantages
from sps.train.buffer import DemoBuffer
from sps.train.checkpoint import checkpoints, load_checkpoint, save_checkpoint
from sps.train.groups import Group, make_groups, squeeze_stats
from sps.train.logprobs import pack, token_logprobs
from sps.train.schedule import next_phase

Grader = Callable[[int, str], float]  # (prompt index, completion text) -> reward


class NonFiniteError(FloatingPointError):
    """A loss or gradient became inf or nan; the message names the step and phase."""


@dataclass
class Batch:
    rollouts: Rollouts
    groups: list[Group]
    prompts: list[int]  # dataset index of each of the batch's prompts
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
        estimator: str = "grpo",
        baselines: BaselineConfig | None = None,
    ):
        self.model, self.tok, self.prompts, self.grader = model, tokenizer, prompts, grader
        self.rl, self.irl, self.schedule, self.seed = rl, irl, schedule, seed
        self.estimator = estimator
        self.baselines = baselines or BaselineConfig([], 0.01, 0.1, 0.25, 4)
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
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
        self._step = 0
        self.history: list[dict] = []
        self.buffer = DemoBuffer(irl.buffer_size) if irl.demos == "buffer" else None

    def run(
        self,
        log: Callable[[str], None] = print,
        after_step: Callable[[int], None] | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> pd.DataFrame:
        """All `rl.steps` steps, resuming from the newest checkpoint in `checkpoint_dir`.

        `after_step(k)` runs after k completed steps (evaluation snapshots). A checkpoint is
        written every `rl.checkpoint_every` steps; a non-finite loss or gradient stops the run
        with an error naming the step and phase, after saving the state for inspection.
        """
        torch.manual_seed(self.seed)
        self.history = self.resume(checkpoint_dir, log)  # restores the torch RNG too
        every = self.rl.checkpoint_every
        for step in range(len(self.history), self.rl.steps):
            try:
                self.history.append(self.step(step))
            except NonFiniteError:
                if checkpoint_dir:
                    self.save(Path(checkpoint_dir) / "nonfinite", step, keep=1)
                    log(f"saved the state before the failing step to {checkpoint_dir}/nonfinite")
                raise
            log(_progress(self.history[-1], self.rl.steps))
            done = step + 1
            if after_step is not None:
                after_step(done)
            if checkpoint_dir and every and done % every == 0 and done < self.rl.steps:
                self.save(checkpoint_dir, done, self.rl.keep_checkpoints)
        return pd.DataFrame(self.history)

    def save(self, root: str | Path, done: int, keep: int) -> None:
        extra = {"buffer": self.buffer.state_dict()} if self.buffer else {}
        save_checkpoint(root, done, self.model, self.opts, self.history, keep, extra)

    def resume(self, checkpoint_dir: str | Path | None, log: Callable[[str], None]) -> list:
        """Restore the newest checkpoint, if any; returns the metrics rows of its steps."""
        found = checkpoints(checkpoint_dir) if checkpoint_dir else []
        if not found:
            return []
        done, rows, extra = load_checkpoint(found[-1], self.model, self.opts)
        if self.buffer is not None:
            self.buffer.load_state_dict(extra["buffer"])
        log(f"resumed from {found[-1]} after {done} steps")
        return rows

    def step(self, step: int) -> dict:
        self._step = step
        start = time.time()
        phase = next_phase(self.schedule, self.history)
        lr = self.rl.lr * min(1.0, (step + 1) / max(1, self.rl.warmup_steps))
        if phase == "irl":
            lr *= self.irl.lr_scale
        for group in self.opts[phase].param_groups:
            group["lr"] = lr
        batch = self.sample(step)
        stats = self.rl_update(batch) if phase == "rl" else self.irl_update(batch)
        self.remember(batch)
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
            backend=self.rl.backend,
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
        return Batch(ro, groups, chosen, ids, attn, target)

    def forward(self, batch: Batch, entropy_grad: bool = False):
        self.model.train()
        return token_logprobs(
            self.model,
            batch.ids,
            batch.attn,
            batch.target,
            entropy_grad=entropy_grad,
            chunk=self.rl.logprob_chunk,
        )

    def advantages(self, batch: Batch, old_logp: torch.Tensor, mask: torch.Tensor):
        """Per-rollout advantages [N] of this run's estimator (GRPO or a baseline)."""
        rewards = torch.tensor(np.stack([g.rewards for g in batch.groups]), dtype=torch.float32)
        likelihood = sequence_scores(old_logp, mask, "sum").cpu()
        rows = [g.rows for g in batch.groups]
        adv_groups = group_advantages(
            self.estimator, rewards, likelihood[torch.tensor(rows)], self.rl, self.baselines
        )
        adv = torch.zeros(len(batch.rollouts))
        for r, a in zip(rows, adv_groups, strict=True):
            adv[r] = a.float()
        return adv.to(self.device)

    def rl_update(self, batch: Batch) -> dict:
        """GRPO family: the estimator's advantages, clipped ratio, optional KL (method.md);
        the entropy bonus adds -alpha * mean token entropy to the loss."""
        bonus = self.baselines.entropy_coef if self.estimator == "entropy-bonus" else 0.0
        ref_logp = self.ref_logprobs(batch)
        old_logp = adv = None
        for _ in range(self.rl.updates_per_batch):
            logp, ent, mask = self.forward(batch, entropy_grad=bonus > 0)
            if old_logp is None:  # the rollout policy: rho = 1 on the first update
                old_logp = logp.detach()
                adv = self.advantages(batch, old_logp, mask)
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
            if bonus:
                loss = loss - bonus * ent[mask].mean()
            grad_norm = self.optimize(loss, "rl")
        ent = ent.detach()
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
        extra = self.buffer_scores(batch)
        losses, w_all, skipped = [], [], 0
        for gi, g in enumerate(batch.groups):
            demo = g.correct if self.irl.support == "correct" else [True] * len(g.first)
            s_extra = extra.get(gi, scores.new_zeros(0))
            # buffered demonstrations join both U and D, each with multiplicity 1
            demo = torch.tensor(demo + [True] * len(s_extra))
            if irl_skip(demo):
                skipped += 1
                continue
            loss, st = group_fkl_loss(
                torch.cat([scores[g.first], s_extra]),
                demo,
                torch.tensor(g.counts + [1] * len(s_extra), dtype=torch.float),
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

    def buffer_scores(self, batch: Batch) -> dict[int, torch.Tensor]:
        """Scores s(y) of the buffered correct completions not in this batch, per group."""
        if self.buffer is None:
            return {}
        ro, seqs, owners = batch.rollouts, [], []
        for gi, g in enumerate(batch.groups):
            have = {tuple(ro.token_ids[r]) for r in g.first}
            for seq in self.buffer.get(batch.prompts[g.prompt]):
                if tuple(seq) not in have:
                    seqs.append(seq)
                    owners.append(gi)
        if not seqs:
            return {}
        prompt_ids = [ro.prompt_ids[batch.groups[o].prompt] for o in owners]
        ids, attn, target = pack(prompt_ids, seqs, self.tok.pad_token_id, self.device)
        lp, _, m = token_logprobs(
            self.model, ids, attn, target, with_entropy=False, chunk=self.rl.logprob_chunk
        )
        s = sequence_scores(lp, m, self.irl.score)
        owner = torch.tensor(owners)
        return {gi: s[owner == gi] for gi in set(owners)}

    def remember(self, batch: Batch) -> None:
        """Add this step's distinct correct completions to the demonstration buffer."""
        if self.buffer is None:
            return
        for g in batch.groups:
            for row, ok in zip(g.first, g.correct, strict=True):
                if ok:
                    self.buffer.add(batch.prompts[g.prompt], batch.rollouts.token_ids[row])

    def optimize(self, loss: torch.Tensor, phase: str) -> float:
        opt = self.opts[phase]
        opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            raise NonFiniteError(f"non-finite {phase} loss ({loss.item()}) at step {self._step}")
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.rl.grad_clip or math.inf
        )
        if not torch.isfinite(norm):  # checked before the update, so the weights stay clean
            raise NonFiniteError(f"non-finite {phase} gradient norm at step {self._step}")
        opt.step()
        return float(norm)

    @torch.no_grad()
    def ref_logprobs(self, batch: Batch):
        if self.ref is None:
            return None
        chunk = self.rl.logprob_chunk
        return token_logprobs(self.ref, batch.ids, batch.attn, batch.target, False, chunk=chunk)[0]

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
