"""Large-k sampling of one shard: n / shards samples per test problem, graded, as a table."""

from __future__ import annotations

import time

import pandas as pd

from sps.config import GradingConfig, SamplingConfig
from sps.rollout import generate
from sps.rollout.base import SampleParams
from sps.seeding import derive_seed
from sps.tasks.data import grade_rows

SAMPLE_COLUMNS = [
    "problem_id",
    "sample_idx",
    "completion",
    "pred",
    "correct",
    "n_tokens",
    "logprob",
    "finish_reason",
    "grade",
]


def shard_range(cfg: SamplingConfig, shard: int) -> range:
    """Sample indices of `shard`: shards split each problem's n samples, not the problems."""
    if cfg.n % cfg.shards:
        raise ValueError(
            f"sampling.n ({cfg.n}) must be a multiple of sampling.shards ({cfg.shards})"
        )
    if not 0 <= shard < cfg.shards:
        raise ValueError(f"shard {shard} out of range 0..{cfg.shards - 1}")
    per = cfg.n // cfg.shards
    return range(shard * per, (shard + 1) * per)


def sample_shard(
    model,
    tokenizer,
    problems: pd.DataFrame,
    cfg: SamplingConfig,
    seed: int,
    shard: int,
    log=print,
    grading: GradingConfig | None = None,
) -> pd.DataFrame:
    """`grading`: the grading settings (schema defaults when None)."""
    grading = grading or GradingConfig()
    idx = shard_range(cfg, shard)
    params = SampleParams(
        n=len(idx),
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=cfg.top_k,
        batch_size=cfg.batch_size,
    )
    start = time.time()
    ro = generate(
        model,
        tokenizer,
        problems["prompt"].tolist(),
        params,
        derive_seed(seed, "sample", shard),
        backend=cfg.backend,
    )
    rows = list(problems.itertuples())
    graded = grade_rows([rows[p] for p in ro.prompt_idx], list(ro.texts), grading)
    n_tok = sum(len(t) for t in ro.token_ids)
    log(
        f"shard {shard}: {len(ro)} samples, {n_tok} tokens, "
        f"{n_tok / (time.time() - start):.0f} tok/s, accuracy "
        f"{sum(c for _, c, _ in graded) / len(graded):.3f}, "
        f"unparsed {sum(s == 'unparsed' for *_, s in graded)}, "
        f"timeout {sum(s == 'timeout' for *_, s in graded)}"
    )
    return pd.DataFrame(
        {
            "problem_id": [rows[p].id for p in ro.prompt_idx],
            "sample_idx": [idx[i % len(idx)] for i in range(len(ro))],
            "completion": ro.texts,
            "pred": [p for p, _, _ in graded],
            "correct": [c for _, c, _ in graded],
            "n_tokens": [len(t) for t in ro.token_ids],
            "logprob": ro.logprobs,
            "finish_reason": ro.finish,
            "grade": [s for *_, s in graded],  # ok | unparsed | timeout
        }
    )
