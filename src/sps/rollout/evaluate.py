"""Large-k sampling of one shard: n / shards samples per test problem, as a table.

No grades: sampling is the expensive step and must not rerun when a grader changes, so the
`grade` job (sps.tasks.grade_samples) grades the shard afterwards."""

from __future__ import annotations

import time

import pandas as pd

from sps.config import SamplingConfig
from sps.rollout import generate
from sps.rollout.base import SampleParams
from sps.seeding import derive_seed

SAMPLE_COLUMNS = [
    "problem_id",
    "sample_idx",
    "completion",
    "n_tokens",
    "logprob",
    "finish_reason",
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
) -> pd.DataFrame:
    """SAMPLE_COLUMNS for the shard's n / shards samples of every problem: the backends
    return each prompt's samples together, which take the sample indices of shard_range."""
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
    ids = problems["id"].tolist()
    n_tok = sum(len(t) for t in ro.token_ids)
    log(
        f"shard {shard}: {len(ro)} samples, {n_tok} tokens, "
        f"{n_tok / (time.time() - start):.0f} tok/s"
    )
    return pd.DataFrame(
        {
            "problem_id": [ids[p] for p in ro.prompt_idx],
            "sample_idx": [idx[i % len(idx)] for i in range(len(ro))],
            "completion": ro.texts,
            "n_tokens": [len(t) for t in ro.token_ids],
            "logprob": ro.logprobs,
            "finish_reason": ro.finish,
        },
        columns=SAMPLE_COLUMNS,
    )
