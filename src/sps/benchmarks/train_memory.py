"""Peak GPU memory and tokens/s of one policy-gradient training step, naive against lean.

A Qwen2-0.5B-shaped model (hidden 896, 24 layers, 14 heads, 2 kv heads, intermediate 4864,
vocabulary 151936, tied embeddings) with random float32 weights under bf16 autocast, as the
trainer runs it on CUDA. One step = forward and backward of the clipped policy loss
(token-mean, on-policy) over `--batch` rows of `--length` tokens, the last `--completion` of
them scored; the optimizer is left out (its state is the same for both).

- naive: the whole batch at once, loss from `model(...).logits` cast to float32
  (batch x length x vocabulary floats: 14 GB at the defaults before the softmax);
  a CUDA out-of-memory error is reported as OOM.
- lean: what the trainer does with `rl.logprob_chunk`, `rl.gradient_checkpointing` and
  `rl.micro_batch_size`: micro-batches with gradient accumulation, decoder layers
  recomputed in the backward pass, the LM head applied `--chunk` positions at a time.

`--optimizer` adds the trainer's two AdamW optimizers (rl and irl, float32 states), both
stepped once in the warm-up as after a run's first IRL step, so the peak is a whole training
step's: weights, gradients, both optimizer states and activations. `--parallel fsdp` runs
the lean step the way `rl.parallel: fsdp` does (sps.train.fsdp, on this one device: bf16
compute, float32 weights, gradients and states), to check that path at a real shape.

    python -m sps.benchmarks.train_memory                 # CUDA, the defaults above
    python -m sps.benchmarks.train_memory --micro 16 --chunk 64
    python -m sps.benchmarks.train_memory --shape qwen2.5-1.5b --optimizer --parallel fsdp
    python -m sps.benchmarks.train_memory --shape tiny --batch 4 --length 24   # CPU smoke run

Without CUDA the peak memory is reported as n/a; only the tiny shape is meant for that.
"""

from __future__ import annotations

import argparse
import gc
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from sps.algos import policy_loss
from sps.models.io import autocast
from sps.train.logprobs import enable_gradient_checkpointing, token_logprobs
from sps.train.microbatch import row_parts, share

SHAPES = {
    "qwen2.5-1.5b": dict(  # Qwen2.5-Math-1.5B's (config/paper.yaml), 1.54e9 parameters
        hidden_size=1536,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        intermediate_size=8960,
        vocab_size=151936,
    ),
    "qwen2-0.5b": dict(
        hidden_size=896,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        intermediate_size=4864,
        vocab_size=151936,
    ),
    "smollm2": dict(  # SmolLM2-135M's dimensions (a Llama there; the shape is what counts)
        hidden_size=576,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        intermediate_size=1536,
        vocab_size=49152,
    ),
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=512,
    ),
}


def build(shape: str, device: torch.device) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    cfg = Qwen2Config(**SHAPES[shape], tie_word_embeddings=True, max_position_embeddings=4096)
    with torch.device(device):  # initialised in place: a CPU init of 1.5B takes minutes
        return Qwen2ForCausalLM(cfg).train()


def batch(model, rows: int, length: int, completion: int, device: torch.device):
    """Random token rows, every one full length; targets are the last `completion` tokens."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (rows, length), generator=gen).to(device)
    attn = torch.ones_like(ids)
    target = torch.zeros_like(ids, dtype=torch.bool)
    target[:, length - completion :] = True
    adv = torch.randn(rows, generator=gen).to(device)
    return ids, attn, target, adv


def naive_step(model, ids, attn, target, adv, _args) -> None:
    with autocast(ids.device):
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    logp = logits.log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    loss, _ = policy_loss(logp, logp.detach(), adv, target[:, 1:])
    loss.backward()


def lean_step(model, ids, attn, target, adv, args) -> None:
    n_tok = float(target[:, 1:].sum())
    for rows in row_parts(len(ids), args.micro):
        logp, _, mask = token_logprobs(
            model, ids[rows], attn[rows], target[rows], with_entropy=False, chunk=args.chunk
        )
        loss, _ = policy_loss(logp, logp.detach(), adv[rows], mask)
        (loss * share("token-mean", float(mask.sum()), len(logp), n_tok, len(ids))).backward()


def measure(step, model, data, args, opts: list | None = None) -> str:
    """One warm-up step (every optimizer steps once, so all have their states), then one
    timed step (the first optimizer steps); its peak memory and tokens/s, or OOM."""
    cuda, opts = data[0].device.type == "cuda", opts or []
    resident = ""
    try:
        step(model, *data, args)
        for opt in opts:
            opt.step()
        model.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            resident = f" (resident: {torch.cuda.memory_allocated() / 2**30:.2f} GiB)"
        start = time.perf_counter()
        step(model, *data, args)
        for opt in opts[:1]:
            opt.step()
        if cuda:
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    except torch.cuda.OutOfMemoryError:
        return "OOM"
    finally:
        model.zero_grad(set_to_none=True)
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "n/a"
    return f"peak memory {peak}, {data[0].numel() / elapsed:,.0f} tokens/s{resident}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="qwen2-0.5b")
    ap.add_argument("--batch", type=int, default=64, help="rows per training step")
    ap.add_argument("--length", type=int, default=384, help="tokens per row")
    ap.add_argument("--completion", type=int, default=0, help="scored tokens (0: half)")
    ap.add_argument("--micro", type=int, default=8, help="lean: rows per micro-batch")
    ap.add_argument("--chunk", type=int, default=128, help="lean: positions per LM-head chunk")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--optimizer", action="store_true", help="with the two AdamW optimizers")
    ap.add_argument("--parallel", choices=["none", "fsdp"], default="none", help="fsdp: lean only")
    args = ap.parse_args(argv)
    name = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = torch.device("cpu" if name == "auto" else name)
    model = build(args.shape, device)
    completion = args.completion or args.length // 2
    data = batch(model, args.batch, args.length, completion, device)
    n = sum(p.numel() for p in model.parameters())
    opt = "two AdamW" if args.optimizer else "no optimizer"
    print(
        f"{args.shape} ({n:,} parameters) on {device}: batch {args.batch} x "
        f"{args.length} tokens, parallel {args.parallel}, {opt}"
    )
    if args.parallel == "none":
        opts = optimizers(model, args.optimizer)
        naive = measure(naive_step, model, data, args, opts)
        print(f"naive (full float32 logits, whole batch): {naive}")
    enable_gradient_checkpointing(model)
    if args.parallel == "fsdp":
        from sps.train import fsdp

        fsdp.ensure_group(device)
        fsdp.shard(model, device)
    label = f"lean (micro-batch {args.micro}, checkpointing, head chunk {args.chunk})"
    print(f"{label}: {measure(lean_step, model, data, args, optimizers(model, args.optimizer))}")
    if args.parallel == "fsdp":
        from sps.train.distributed import shutdown

        shutdown()


def optimizers(model, wanted: bool) -> list:
    """The trainer's two AdamW optimizers (rl, irl) over the weights, or none."""
    params = list(model.parameters())
    return [torch.optim.AdamW(params, lr=1e-6, betas=(0.9, 0.99)) for _ in range(2 * wanted)]


if __name__ == "__main__":
    main()
