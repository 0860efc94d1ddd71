"""Tokens/s of `model.generate` (the hf backend) against our fast sampler, in one process.

Same model, prompts, settings and seed for both; one warm-up call each, then `--repeats`
timed calls per backend, interleaved (hf, fast, hf, fast, ...) so that a change of machine
load hits both; the best and the mean are printed. Tokens are the generated completion tokens
(EOS included, padding not).

CPU default: the built-in model (results/models/base, or a briefly pretrained one when it is
absent) at the config's evaluation settings (`sampling` section: n = 256 per problem, batch
size 1024, max_new_tokens 64, temperature 1, top-p 1, top-k 0) on 16 test problems:

    python -m sps.benchmarks.sampling                       # torch's default threads
    python -m sps.benchmarks.sampling --threads 1           # as the pipeline's sample jobs
    python -m sps.benchmarks.sampling --n 64 --problems 64  # exactly one `sps sample` shard
    python -m sps.benchmarks.sampling --no-dedup            # fast sampler without prefix dedup

CUDA (`--cuda-shape`): the SmolLM2-135M shape (hidden 576, 30 layers, 9 heads, 3 kv heads,
intermediate 1536, vocab 49152, tied embeddings) with random bf16 weights, batch 1024 (16
prompts x 64 samples), 128-token random prompts, 256 new tokens; the baseline is plain
`model.generate` (do_sample, no output_scores: the hf backend's scores for 256 steps x 1024
rows x 49152 would take 51 GB):

    python -m sps.benchmarks.sampling --cuda-shape --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from sps.config import ModelConfig, PretrainConfig, SamplingConfig, TaskConfig, section, validate
from sps.rollout import generate
from sps.rollout.base import SampleParams, encode_prompts
from sps.rollout.hf import sample_padded


class IdTokenizer:
    """A stand-in tokenizer for random-weight models: a prompt is its token ids, spaced."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


def builtin_model(path: Path, device: torch.device, pretrain_steps: int):
    """The pipeline's base model when it exists, else a freshly pretrained one (so that its
    completions stop at EOS like a trained model's) on generated countdown problems."""
    from sps.models.io import load_model
    from sps.tasks import countdown
    from sps.train.pretrain import pretrain

    if (path / "config.json").is_file():
        print(f"model: {path}")
        return load_model(path, device)
    cfg = validate({})
    task = section(TaskConfig, cfg["task"])
    problems = countdown.generate(
        0, task.n_sft, task.count, task.max_number, task.max_target, task.min_solutions
    )
    print(f"model: {path} absent; pretraining a tiny model for {pretrain_steps} steps")
    pre = section(PretrainConfig, {**cfg["pretrain"], "steps": pretrain_steps})
    with torch.enable_grad():  # main() turns gradients off for the timed sampling
        model, tok = pretrain(problems, section(ModelConfig, cfg["model"]), pre, 0, device)
    return model, tok


def builtin_prompts(data: Path, count: int) -> list[str]:
    from sps.tasks import countdown
    from sps.tasks.data import load_problems

    if data.is_file():
        return load_problems(data)["prompt"].tolist()[:count]
    cfg = validate({})["task"]
    problems = countdown.generate(
        1, count, cfg["count"], cfg["max_number"], cfg["max_target"], cfg["min_solutions"]
    )
    return [p.prompt() for p in problems]


def cuda_shape_model(device: torch.device):
    from transformers import LlamaConfig, LlamaForCausalLM

    from sps.benchmarks.train_memory import SHAPES

    config = LlamaConfig(
        **SHAPES["smollm2"],
        max_position_embeddings=8192,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(device=device, dtype=torch.bfloat16)
    return model.eval(), IdTokenizer()


def plain_generate(model, tok, prompts: list[str], params: SampleParams, seed: int) -> int:
    """`model.generate` sampling as the hf backend does it, minus output_scores; returns
    the number of generated tokens (through EOS)."""
    device = next(model.parameters()).device
    rows = [r for r in encode_prompts(tok, prompts) for _ in range(params.n)]
    total = 0
    for start in range(0, len(rows), params.batch_size):
        torch.manual_seed(seed + start)
        chunk = rows[start : start + params.batch_size]
        ids, out = sample_padded(model, tok, chunk, params, device)
        new = out[:, ids.shape[1] :]
        is_eos = new == tok.eos_token_id
        stopped = is_eos.any(1)
        length = torch.where(stopped, is_eos.int().argmax(1) + 1, new.shape[1])
        total += int(length.sum())
    return total


def time_backend(model, tok, prompts, params, backend: str, seed: int, dedup: bool = True):
    """(seconds, generated tokens) of one call."""
    from sps.rollout import fast

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    if backend == "generate":
        n_tok = plain_generate(model, tok, prompts, params, seed)
    elif backend == "fast" and not dedup:
        s = fast.sample(
            model,
            encode_prompts(tok, prompts),
            params,
            seed,
            tok.eos_token_id,
            tok.pad_token_id,
            static=True,
        )
        n_tok = sum(s.lengths)
    else:
        ro = generate(model, tok, prompts, params, seed, backend=backend)
        n_tok = sum(len(t) for t in ro.token_ids)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, n_tok


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cuda-shape", action="store_true", help="the SmolLM2-135M shape on CUDA")
    ap.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda with --cuda-shape")
    ap.add_argument("--model", type=Path, default=Path("results/models/base"))
    ap.add_argument("--data", type=Path, default=Path("results/data/countdown/test.parquet"))
    ap.add_argument("--problems", type=int, default=16, help="test problems (CPU mode)")
    ap.add_argument("--n", type=int, default=None, help="samples per problem (default: config)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: config / 1024")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: config / 256")
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per backend")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument(
        "--baseline",
        choices=["hf", "generate"],
        help="hf: the hf backend (default on CPU); generate: plain model.generate (CUDA)",
    )
    ap.add_argument("--no-dedup", action="store_true", help="fast: the static path only")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    s = section(SamplingConfig, validate({})["sampling"])
    device = torch.device(args.device or ("cuda" if args.cuda_shape else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    if args.cuda_shape:
        model, tok = cuda_shape_model(device)
        gen = torch.Generator().manual_seed(0)
        n_prompts, n = 16, args.n or 64
        prompts = [
            " ".join(map(str, torch.randint(3, 49152, (127,), generator=gen).tolist()))
            for _ in range(n_prompts)
        ]  # 127 ids + BOS = 128 prompt tokens
        params = SampleParams(
            n=n, max_new_tokens=args.max_new_tokens or 256, batch_size=args.batch_size or 1024
        )
    else:
        model, tok = builtin_model(args.model, device, args.pretrain_steps)
        model.eval()
        prompts = builtin_prompts(args.data, args.problems)
        params = SampleParams(
            n=args.n or s.n,
            max_new_tokens=args.max_new_tokens or s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            batch_size=args.batch_size or s.batch_size,
        )
    base = args.baseline or ("generate" if args.cuda_shape else "hf")
    backends = [base, "fast"]
    print(
        f"device {device} ({torch.get_num_threads()} threads), {len(prompts)} prompts x "
        f"n={params.n}, batch_size {params.batch_size}, max_new_tokens "
        f"{params.max_new_tokens}, temperature {params.temperature}, top_p {params.top_p}, "
        f"top_k {params.top_k}; baseline {base}, fast {'static' if args.no_dedup else 'default'}"
    )
    dedup = not args.no_dedup
    # Warm-up (kernels, allocator): one chunk each; on CUDA the fast sampler's warm-up is a
    # full call, which captures the CUDA graphs that the timed calls then replay.
    one = SampleParams(**{**params.__dict__, "n": min(params.n, params.batch_size)})
    time_backend(model, tok, prompts[:1], one, base, seed=1)
    if device.type == "cuda":
        time_backend(model, tok, prompts, params, "fast", seed=1, dedup=dedup)
    else:
        time_backend(model, tok, prompts[:1], one, "fast", seed=1, dedup=dedup)
    runs: dict[str, list[tuple[float, int]]] = {b: [] for b in backends}
    for rep in range(args.repeats):
        for backend in backends:
            runs[backend].append(
                time_backend(model, tok, prompts, params, backend, seed=rep, dedup=dedup)
            )
    best = {}
    for backend, rs in runs.items():
        rates = [n / t for t, n in rs]
        best[backend] = max(rates)
        print(
            f"{backend:>8}: best {max(rates):9.0f} tok/s, mean {statistics.mean(rates):9.0f}"
            f" tok/s over {len(rs)} runs ({', '.join(f'{n} tok in {t:.2f} s' for t, n in rs)})"
        )
    print(f"ratio fast/{base} (best): {best['fast'] / best[base]:.2f}x")


if __name__ == "__main__":
    main()
