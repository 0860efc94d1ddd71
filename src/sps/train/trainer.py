"""The training loop shared by GRPO and SPS: sample a batch, then one RL or one IRL update.

GRPO is SPS with no IRL steps, so every method runs this same loop with the same budget:
`rl.steps` optimizer steps, `rl.prompts_per_step` prompts and `rl.group_size` rollouts each.
Under data parallelism (`rl.parallel`: ddp replicates the model, fsdp shards it) every
process runs it on its block of each step's prompts (sps.train.distributed, sps.train.fsdp).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sps.algos import group_fkl_loss, irl_skip, policy_loss, sequence_scores
from sps.config import BaselineConfig, IRLConfig, RLConfig, ScheduleConfig
from sps.rollout import generate
from sps.rollout.base import Rollouts, SampleParams
from sps.seeding import derive_seed
from sps.train import fsdp
from sps.train.advantage import ESTIMATORS, group_advantages
from sps.train.buffer import DemoBuffer
from sps.train.checkpoint import (
    Checkpoint,
    CorruptCheckpoint,
    Sharded,
    checkpoints,
    newest_intact,
    read_checkpoint,
    read_sharded,
    save_checkpoint,
    save_sharded,
)
from sps.train.distributed import Dist
from sps.train.groups import Group, make_groups, squeeze_stats
from sps.train.logprobs import enable_gradient_checkpointing, pack, token_logprobs
from sps.train.microbatch import group_parts, row_parts, share, trim
from sps.train.schedule import next_phase
from sps.train.tracking import clock, eta_seconds

Grader = Callable[[int, str], float]  # (prompt index, completion text) -> reward


class NonFiniteError(FloatingPointError):
    """A loss or gradient became inf or nan; the message names the step and phase."""


@dataclass
class Batch:
    """This process's share of a step's rollouts (all of them in a single process)."""

    rollouts: Rollouts
    groups: list[Group]
    prompts: list[int]  # dataset index of each of the batch's prompts
    ids: torch.Tensor
    attn: torch.Tensor
    target: torch.Tensor


@dataclass
class _Pass:
    """What one pass over the micro-batches leaves for the metrics (this process's part)."""

    loss: float = 0.0
    ent_sum: float = 0.0
    kl_sum: float = 0.0
    scores: list[torch.Tensor] = field(default_factory=list)
    w: list[torch.Tensor] = field(default_factory=list)


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
        dist: Dist | None = None,
    ):
        self.tok, self.prompts, self.grader = tokenizer, prompts, grader
        self.rl, self.irl, self.schedule, self.seed = rl, irl, schedule, seed
        self.estimator = estimator
        self.baselines = baselines or BaselineConfig([], 0.01, 0.1, 0.25, 4)
        self.dist = dist or Dist()
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; expected one of {ESTIMATORS}")
        n_prompts = min(rl.prompts_per_step, len(prompts))
        if self.dist.world > n_prompts:
            raise ValueError(f"{self.dist.world} processes but only {rl.prompts_per_step} prompts")
        self.sharded = rl.parallel == "fsdp"
        if self.sharded and n_prompts % self.dist.world:
            raise ValueError(
                f"rl.parallel fsdp: the {n_prompts} prompts of a step do not split evenly over "
                f"{self.dist.world} processes; make rl.prompts_per_step a multiple of them "
                "(FSDP runs every pass on all processes at once, so each needs as many)"
            )
        self.device = next(model.parameters()).device
        self.model = self._prepare(model)
        # The reference model costs a full copy: load it only when the KL term is on. With
        # LoRA the base with its adapters switched off is the reference, at no cost.
        self.ref = None
        if rl.kl_coef > 0 and not self.lora:
            self.ref = copy.deepcopy(self.model).eval().requires_grad_(False)
        self._full = None  # fsdp: the whole policy's plain copy for the samplers (_whole)
        if self.sharded:
            self._shard()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # IRL steps get their own AdamW state: their gradients are on another scale than the
        # policy gradient's, and a shared second moment would shrink the RL steps after them.
        self.opts = {
            phase: torch.optim.AdamW(self.params, lr=rl.lr, betas=(0.9, 0.99), weight_decay=0.0)
            for phase in ("rl", "irl")
        }
        self._step = 0
        self.history: list[dict] = []
        self.buffer = DemoBuffer(irl.buffer_size) if irl.demos == "buffer" else None

    def _prepare(self, model):
        """Gradient checkpointing and LoRA adapters, as configured."""
        if self.rl.gradient_checkpointing:
            enable_gradient_checkpointing(model)
        self.lora = self.rl.lora_rank > 0
        if not self.lora:
            return model
        from sps.models import lora  # peft is an optional extra

        rl = self.rl
        return lora.wrap(
            model, rl.lora_rank, rl.lora_alpha, rl.lora_dropout, rl.lora_target_modules
        )

    def _shard(self) -> None:
        """rl.parallel fsdp: shard the policy (and the reference model) over the processes,
        keeping a frame of the policy (no memory) for its whole copies (sps.train.fsdp)."""
        fsdp.ensure_group(self.device)
        world = torch.distributed.get_world_size()
        if world != self.dist.world:
            raise ValueError(f"rl.parallel fsdp: {world} processes, but {self.dist.world} in Dist")
        self._frame = fsdp.frame(self.model)
        fsdp.shard(self.model, self.device)
        if self.ref is not None:
            fsdp.shard(self.ref, self.device)

    def export_model(self):
        """The policy as a plain transformers model (LoRA adapters merged into a copy), on
        the main process; None on the others. Under fsdp every process must call it: the
        weights are gathered into a copy on the main process's CPU, in their own dtype."""
        if self.sharded:
            model = fsdp.materialise(self._frame, "cpu") if self.dist.main else None
            fsdp.gather(self.model, model)
            return model.merge_and_unload() if model is not None and self.lora else model
        if not self.dist.main:
            return None
        if not self.lora:
            return self.model
        from sps.models import lora

        return lora.merged_copy(self.model)

    def _trained(self) -> dict[str, torch.Tensor]:
        """The trained parameters by name (all, or LoRA's adapters): what a sharded
        checkpoint holds of the model."""
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def _state_module(self) -> torch.nn.Module:
        # with LoRA only the adapters change: checkpoints hold them, not the frozen base
        if not self.lora:
            return self.model
        from sps.models import lora

        return lora.adapter_module(self.model)

    def run(
        self,
        log: Callable[[str], None] = print,
        after_step: Callable[[int], None] | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> pd.DataFrame:
        """All `rl.steps` steps, resuming from the newest intact checkpoint in `checkpoint_dir`
        (which the caller has bound to this run: sps.train.fingerprint.bind).

        `after_step(k)` runs after k completed steps (evaluation snapshots). A checkpoint is
        written every `rl.checkpoint_every` steps; a non-finite loss or gradient stops the run
        with an error naming the step and phase, after saving the state for inspection.
        Under data parallelism every rank runs this and gets the same rows; only rank 0 logs
        and writes.
        """
        torch.manual_seed(self.seed)
        log = log if self.dist.main else _quiet
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
            log(_progress(self.history, self.rl.steps))
            done = step + 1
            if after_step is not None:
                after_step(done)
            if checkpoint_dir and every and done % every == 0 and done < self.rl.steps:
                self.save(checkpoint_dir, done, self.rl.keep_checkpoints)
        return pd.DataFrame(self.history)

    def save(self, root: str | Path, done: int, keep: int) -> None:
        """Checkpoint (rank 0 writes; the others wait so that none reads a half one). Under
        fsdp every process writes its shards (sps.train.checkpoint.save_sharded)."""
        extra = {"buffer": self.buffer.state_dict()} if self.buffer else {}
        if self.sharded:
            trained = self._trained()
            save_sharded(root, done, trained, self.opts, self.history, keep, extra, self.dist)
            return
        if self.dist.main:
            module = self._state_module()
            save_checkpoint(root, done, module, self.opts, self.history, keep, extra)
        self.dist.barrier()

    def resume(self, checkpoint_dir: str | Path | None, log: Callable[[str], None]) -> list:
        """Restore the newest checkpoint that loads, if any; returns the metrics rows of its
        steps. One that does not load is logged, naming its bad file, and the next older one
        tried; with none intact the run starts fresh. Which run the checkpoints belong to is
        the caller's to settle first (sps.train.fingerprint.bind). Under fsdp rank 0 makes
        the choice for every process, which then loads its own shards."""
        if not checkpoint_dir:
            return []
        found = None
        if self.dist.main or not self.sharded:
            found = newest_intact(checkpoint_dir, self._read_checkpoint, log)
        if self.sharded:
            found = self.dist.broadcast(found)
        if found is None:
            if checkpoints(checkpoint_dir):
                log(f"no checkpoint in {checkpoint_dir} loads: starting fresh")
            return []
        path, (ckpt, buffer) = found
        ckpt.apply(self._trained() if self.sharded else self._state_module(), self.opts)
        self.buffer = buffer
        log(f"resumed from {path} after {ckpt.step} steps")
        return ckpt.rows

    def _read_checkpoint(self, path: Path) -> tuple[Checkpoint | Sharded, DemoBuffer | None]:
        """A checkpoint and its demonstration buffer, read and checked; nothing applied yet."""
        if self.sharded:
            ckpt = read_sharded(path, self._trained(), self.opts)
        else:
            ckpt = read_checkpoint(path, self._state_module(), self.opts)
        if self.buffer is None:
            return ckpt, None
        buffer = DemoBuffer(self.irl.buffer_size)
        try:
            buffer.load_state_dict(ckpt.extra["buffer"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            bad = f"{path / 'state.json'}: bad demonstration buffer: {exc!r}"
            raise CorruptCheckpoint(bad) from None
        return ckpt, buffer

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
        n_tokens = self.dist.sum(sum(len(t) for t in batch.rollouts.token_ids))
        elapsed = time.time() - start
        return {
            "step": step,
            "phase": phase,
            **squeeze_stats(self.dist.gather(batch.groups)),
            **stats,
            "lr": lr,
            "tokens_per_s": n_tokens / elapsed,
            "time_s": elapsed,
        }

    def sample(self, step: int) -> Batch:
        """This process's block of the step's prompts, `rl.group_size` rollouts each."""
        rng = random.Random(derive_seed(self.seed, "prompts", step))
        chosen = rng.sample(
            range(len(self.prompts)), min(self.rl.prompts_per_step, len(self.prompts))
        )
        lo, hi = self.dist.share(len(chosen))
        chosen = chosen[lo:hi]
        ro = self.rollouts(step, chosen)
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

    @torch.no_grad()
    def rollouts(self, step: int, chosen: list[int]) -> Rollouts:
        """The chosen prompts' rollouts, keyed by dataset index: a prompt's rollouts depend
        on (seed, step, index) only, not on which process draws them or on the others in the
        batch (the fast sampler keys its noise in one batched call; see rollout.generate)."""
        params = SampleParams(
            n=self.rl.group_size,
            max_new_tokens=self.rl.max_new_tokens,
            temperature=self.rl.temperature,
            batch_size=self.rl.prompts_per_step * self.rl.group_size,
        )
        self.model.eval()
        seed = derive_seed(self.seed, "rollout", step)
        prompts = [self.prompts[i] for i in chosen]
        start = time.time()
        if self.rl.backend == "vllm":  # the engine holds its own copy of the weights
            ro = self.engine.generate(self.tok, prompts, params, seed, keys=chosen)
        else:
            with self._sampling_model() as model:
                ro = generate(model, self.tok, prompts, params, seed, self.rl.backend, keys=chosen)
        # this process's sampling throughput, for the live trackers (not a metrics column)
        elapsed = max(time.time() - start, 1e-9)
        self.sampling_tokens_per_s = sum(map(len, ro.token_ids)) / elapsed
        return ro

    def _sampling_model(self):
        # the samplers read the weights directly (under fsdp a whole copy, gathered now), so
        # LoRA adapters are merged in meanwhile
        model = self._whole() if self.sharded else self.model
        if not self.lora:
            return contextlib.nullcontext(model)
        from sps.models import lora

        return lora.merged(model)

    def _whole(self):
        """fsdp: the plain copy of the whole policy that the samplers and the vLLM engine
        read, refilled from the shards (every process; all-gathers). bf16 on CUDA, what the
        samplers compute in: 2 bytes per parameter on every GPU. Kept between steps (the fast
        sampler's CUDA graphs hold its tensors), dropped after each push with vllm."""
        if self._full is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" else None
            self._full = fsdp.materialise(self._frame, self.device, dtype)
        fsdp.gather(self.model, self._full)
        return self._full

    @functools.cached_property
    def engine(self):
        """rl.backend vllm: the vLLM engine colocated on this process's GPU (rollout/colocate.py),
        started at the first rollouts with the policy's weights as they are then."""
        from sps.rollout.colocate import ColocatedEngine

        rl = self.rl
        with self._engine_model() as model:
            engine = ColocatedEngine.start(model, rl.vllm_gpu_memory_utilization, rl.vllm_sleep)
        self._full = None  # fsdp with LoRA: the engine holds the weights now
        return engine

    def _sync_engine(self) -> None:
        # after an optimizer step: the new weights go into the engine in place (LoRA merged)
        if self.rl.backend == "vllm" and "engine" in self.__dict__:
            with self._engine_model() as model:
                self.engine.load(model)
            self._full = None

    def _engine_model(self):
        # what the engine reads: under fsdp without LoRA the shards, each tensor gathered as
        # it is read (no whole copy); else what the samplers read (LoRA merged)
        if self.sharded and not self.lora:
            return contextlib.nullcontext(fsdp.Streamed(self.model))
        return self._sampling_model()

    def forward(self, batch: Batch, entropy_grad: bool = False, rows: slice = slice(None)):
        """(logp, entropy, mask) of the batch's `rows`, trimmed to their widest row."""
        self.model.train()
        args = trim(batch.ids, batch.attn, batch.target, rows)
        return self.logprobs(self.model, *args, entropy_grad=entropy_grad)

    def logprobs(self, model, ids, attn, target, with_entropy: bool = True, **kw):
        """`token_logprobs` on rl.logprob_chunk's path; a shared prompt prefix runs once
        where the KV cache works in training (not under FSDP or gradient checkpointing)."""
        share = not (self.sharded or self.rl.gradient_checkpointing)
        chunk = self.rl.logprob_chunk
        return token_logprobs(
            model, ids, attn, target, with_entropy, chunk=chunk, share_prefix=share, **kw
        )

    def advantages(self, batch: Batch, parts: list[slice]) -> torch.Tensor:
        """Per-rollout advantages [N] of this run's estimator (GRPO or a baseline)."""
        rewards = torch.tensor(np.stack([g.rewards for g in batch.groups]), dtype=torch.float32)
        scores = torch.zeros(len(batch.rollouts))
        if self.estimator == "unlikeliness":  # the only one that reads the rollout policy
            with torch.no_grad():  # ranked by s(y) = irl.score (per-token mean by default)
                for rows in parts:
                    logp, _, mask = self.forward(batch, rows=rows)
                    scores[rows] = sequence_scores(logp, mask, self.irl.score).float().cpu()
        rows = [g.rows for g in batch.groups]
        adv_groups = group_advantages(
            self.estimator, rewards, scores[torch.tensor(rows)], self.rl, self.baselines
        )
        adv = torch.zeros(len(batch.rollouts))
        for r, a in zip(rows, adv_groups, strict=True):
            adv[r] = a.float()
        return adv.to(self.device)

    def rl_update(self, batch: Batch) -> dict:
        """GRPO family: the estimator's advantages, clipped ratio, optional KL (method.md);
        the entropy bonus adds -alpha * mean token entropy to the loss. Gradients are
        accumulated over micro-batches, each normalised by the whole batch's counts."""
        bonus = self.baselines.entropy_coef if self.estimator == "entropy-bonus" else 0.0
        parts = row_parts(len(batch.rollouts), self.rl.micro_batch_size)
        adv = self.advantages(batch, parts)
        n_tok = self.dist.sum(int(batch.target.sum()))
        n_seq = self.dist.sum(len(batch.rollouts))
        old: dict[int, torch.Tensor] = {}
        ref: dict[int, torch.Tensor | None] = {}
        for _ in range(self.rl.updates_per_batch):
            self.opts["rl"].zero_grad(set_to_none=True)
            acc = _Pass()
            for k, rows in enumerate(parts):
                logp, ent, mask = self.forward(batch, entropy_grad=bonus > 0, rows=rows)
                old.setdefault(k, logp.detach())  # the rollout policy: rho = 1 on update 1
                if k not in ref:
                    ref[k] = self.ref_logprobs(batch, rows)
                loss, pstats = policy_loss(
                    logp,
                    old[k],
                    adv[rows],
                    mask,
                    self.rl.clip_low,
                    self.rl.clip_high,
                    self.rl.loss_agg,
                    ref[k],
                    self.rl.kl_coef,
                    self.rl.max_new_tokens,
                )
                tokens = int(mask.sum())
                loss = loss * share(self.rl.loss_agg, tokens, len(logp), n_tok, n_seq)
                if bonus:
                    loss = loss - bonus * ent[mask].sum() / max(n_tok, 1.0)
                loss.backward()
                acc.loss += loss.item()
                acc.kl_sum += pstats["kl"] * tokens
                acc.ent_sum += float(ent.detach()[mask].sum())
                acc.scores.append(sequence_scores(logp.detach(), mask, self.irl.score))
            grad_norm = self.optimize(torch.tensor(self.dist.sum(acc.loss)), "rl")
        return {
            **self.common_stats(batch, acc, n_tok),
            "loss": self.dist.sum(acc.loss),
            "grad_norm": grad_norm,
            "kl": self.dist.sum(acc.kl_sum) / max(n_tok, 1.0),
            **_nan_irl_stats(),
        }

    def irl_update(self, batch: Batch) -> dict:
        """SPS IRL step: forward KL from the max-ent demonstration distribution q to the
        policy's distribution p over the group's distinct completions (method.md). The loss
        is a mean over groups; micro-batches hold whole groups."""
        extra = self.buffer_candidates(batch)
        demos = {gi: self._demo(g, len(extra.get(gi, []))) for gi, g in enumerate(batch.groups)}
        skipped = sum(irl_skip(d) for d in demos.values())
        n_groups = self.dist.sum(len(demos) - skipped)
        self.opts["irl"].zero_grad(set_to_none=True)
        acc = _Pass()
        parts = group_parts([g.rows for g in batch.groups], self.rl.micro_batch_size)
        for rows, members in parts:
            logp, ent, mask = self.forward(batch, rows=rows)
            scores = sequence_scores(logp, mask, self.irl.score)
            s_extra = self.buffer_scores(batch, {gi: extra[gi] for gi in members if gi in extra})
            losses = []
            for gi in members:
                if irl_skip(demos[gi]):
                    continue
                g = batch.groups[gi]
                s_buf = s_extra.get(gi, scores.new_zeros(0))
                loss, st = group_fkl_loss(
                    torch.cat([scores[[r - rows.start for r in g.first]], s_buf]),
                    demos[gi],
                    torch.tensor(g.counts + [1] * len(s_buf), dtype=torch.float),
                    self.irl.tau,
                    self.irl.q,
                )
                losses.append(loss)
                acc.w.append(st["w"].cpu())
            part = torch.stack(losses).sum() / n_groups if losses else None
            if part is not None:
                acc.loss += part.item()
            if self.sharded:  # the same passes on every process (sps.train.fsdp, "Lockstep")
                part = self._lockstep(batch, scores, s_extra, part)
            if part is not None:
                part.backward()
            acc.ent_sum += float(ent[mask].sum())
            acc.scores.append(scores.detach())
        total = self.dist.sum(acc.loss)
        grad_norm = self.optimize(torch.tensor(total), "irl") if n_groups else 0.0
        w = torch.cat(self.dist.gather(acc.w)) if n_groups else torch.zeros(0)
        return {
            **self.common_stats(batch, acc, self.dist.sum(int(batch.target.sum()))),
            "loss": total if n_groups else float("nan"),
            "grad_norm": grad_norm,
            "kl": float("nan"),
            "undervalued_share": float((w > 0).float().mean()) if len(w) else float("nan"),
            "w_abs_mean": float(w.abs().mean()) if len(w) else float("nan"),
            "irl_skipped": int(self.dist.sum(skipped)),
        }

    def _lockstep(self, batch: Batch, scores, s_extra: dict, part):
        """fsdp: an IRL micro-batch's loss that makes every process run the same passes: the
        buffer's forward pass (on one row of the batch where this process has no buffered
        completions here), and a backward through both passes even where all its groups were
        skipped. They enter with weight 0, so the gradient is the same as without them."""
        if s_extra:
            extra = torch.cat(list(s_extra.values()))
        else:
            rows = trim(batch.ids, batch.attn, batch.target, slice(0, 1))
            extra = self.logprobs(self.model, *rows, with_entropy=False)[0]
        tie = (scores.sum() + extra.sum()) * 0
        return tie if part is None else part + tie

    def _demo(self, g: Group, n_buffered: int) -> torch.Tensor:
        """D within U: correct (or all) distinct completions, then the buffered ones, which
        join both U and D with multiplicity 1."""
        demo = g.correct if self.irl.support == "correct" else [True] * len(g.first)
        return torch.tensor(demo + [True] * n_buffered)

    def buffer_candidates(self, batch: Batch) -> dict[int, list[list[int]]]:
        """Per group, the buffered correct completions of its prompt not in this batch."""
        if self.buffer is None:
            return {}
        ro, found = batch.rollouts, {}
        for gi, g in enumerate(batch.groups):
            have = {tuple(ro.token_ids[r]) for r in g.first}
            seqs = [s for s in self.buffer.get(batch.prompts[g.prompt]) if tuple(s) not in have]
            if seqs:
                found[gi] = seqs
        return found

    def buffer_scores(
        self, batch: Batch, candidates: dict[int, list[list[int]]] | None = None
    ) -> dict[int, torch.Tensor]:
        """Scores s(y) of buffered completions (default: all candidates), per group."""
        if candidates is None:
            candidates = self.buffer_candidates(batch)
        owners = [gi for gi, seqs in candidates.items() for _ in seqs]
        if not owners:
            return {}
        seqs = [s for gi in candidates for s in candidates[gi]]
        prompt_ids = [batch.rollouts.prompt_ids[batch.groups[o].prompt] for o in owners]
        ids, attn, target = pack(prompt_ids, seqs, self.tok.pad_token_id, self.device)
        lp, _, m = self.logprobs(self.model, ids, attn, target, with_entropy=False)
        s = sequence_scores(lp, m, self.irl.score)
        owner = torch.tensor(owners)
        return {gi: s[owner == gi] for gi in candidates}

    def remember(self, batch: Batch) -> None:
        """Add this step's distinct correct completions (every process's, in the single
        process's order) to the demonstration buffer, which every process keeps whole."""
        if self.buffer is None:
            return
        found = [
            (batch.prompts[g.prompt], batch.rollouts.token_ids[row])
            for g in batch.groups
            for row, ok in zip(g.first, g.correct, strict=True)
            if ok
        ]
        for prompt, tokens in self.dist.gather(found):
            self.buffer.add(prompt, tokens)

    def optimize(self, loss: torch.Tensor, phase: str) -> float:
        """Step on the accumulated gradients; `loss` is the whole batch's (all processes)."""
        opt = self.opts[phase]
        if not torch.isfinite(loss):
            raise NonFiniteError(f"non-finite {phase} loss ({loss.item()}) at step {self._step}")
        if not self.sharded:  # FSDP has reduced them in the backward passes
            self.dist.reduce_grads(self.params)  # before clipping: the norm is the global one
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.rl.grad_clip or math.inf)
        if hasattr(norm, "full_tensor"):  # fsdp: a DTensor of the global norm
            norm = norm.full_tensor()
        if not torch.isfinite(norm):  # checked before the update, so the weights stay clean
            raise NonFiniteError(f"non-finite {phase} gradient norm at step {self._step}")
        opt.step()
        self._sync_engine()
        return float(norm)

    @torch.no_grad()
    def ref_logprobs(self, batch: Batch, rows: slice = slice(None)):
        """Token log-probs of the rows under the reference policy (None without KL)."""
        if self.rl.kl_coef <= 0:
            return None
        args = trim(batch.ids, batch.attn, batch.target, rows)
        if self.ref is not None:
            logp = self.logprobs(self.ref, *args, False)[0]
            if self.sharded:  # no backward will free the root's gathered weights
                self.ref.reshard()
            return logp
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return self.logprobs(self.model, *args, False)[0]

    def common_stats(self, batch: Batch, acc: _Pass, n_tok: float) -> dict:
        """Entropy, mean score and max p(y) over every process's rows and groups."""
        scores = torch.cat(acc.scores) if acc.scores else torch.zeros(0)
        max_p = [
            float(torch.softmax(scores[g.first] / self.irl.tau, 0).max()) for g in batch.groups
        ]
        all_scores = self.dist.gather(scores.tolist())
        return {
            "entropy": self.dist.sum(acc.ent_sum) / max(n_tok, 1.0),
            "score_mean": float(np.mean(all_scores)),
            "max_p": float(np.mean(self.dist.gather(max_p))),
        }


def _quiet(_: str) -> None:
    pass


def _nan_irl_stats() -> dict:
    return {
        "undervalued_share": float("nan"),
        "w_abs_mean": float("nan"),
        "irl_skipped": float("nan"),
    }


def _progress(history: list[dict], total: int) -> str:
    """The log line of the newest step; elapsed is the training time so far (the steps'
    time_s, over resumes too), the ETA the steps left at the recent steps' pace."""
    row, times = history[-1], [r["time_s"] for r in history]
    return (
        f"step {row['step'] + 1}/{total} {row['phase']:>3} reward {row['reward_mean']:.3f} "
        f"entropy {row['entropy']:.3f} distinct {row['distinct_ratio']:.3f} "
        f"loss {row['loss']:.4f} tok/s {row['tokens_per_s']:.0f} "
        f"elapsed {clock(sum(times))} eta {clock(eta_seconds(times, total))}"
    )
