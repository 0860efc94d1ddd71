"""A fast sampler of our own for Llama-architecture causal LMs (the default rollout backend).

It decodes with the model's own weights (embed_tokens; q/k/v and gate/up projections stacked
into one matmul each; the model's rotary table; RMSNorm; MLP; lm_head, tied or not) instead of
`model.generate`, on two paths that draw exactly the same samples:

- Prefix dedup (default off CUDA). Rows with the same prompt and the same tokens so far have
  the same next-token distribution, so the model runs once per distinct prefix (a "state")
  and every row draws its own token from its state's distribution with its own noise. After
  each draw the states are the distinct (state, token) pairs of the rows still running; their
  caches are gathered from their parents'. This is the "prefill each prompt once and share its
  cache across its samples" of the issue carried on past the prompt: a trained model's samples
  share long prefixes (the tiny countdown model: 3-4 rows per state at n = 64-256), and rows
  that stopped leave the batch at once.
- Static (default on CUDA). Fixed buffers in prompt-group layout (row u * m + j is sample j
  of group u, padded with stopped filler rows), the step index in a device tensor, and the
  decode step captured as one CUDA graph per (groups, rows per group) shape; every
  CHECK_EVERY steps the host reads the stop flags once and squeezes finished rows out,
  bucketing rows per group to powers of two so that few shapes (graphs) occur. Untested on a
  GPU (none was available when this was written); the same step runs uncaptured on the CPU
  in the tests.

Both paths:

- Prefill each distinct prompt once (left padded, pad keys masked, positions counted from the
  first real token as `generate` does) and keep its K/V in one [groups, kv_heads, W, head_dim]
  tensor per layer that all its samples read: no per-sample copy of the prompt cache.
- Generated tokens' K/V go to a preallocated [rows, kv_heads, C, head_dim] cache per layer,
  step t writing slot t - 1 (no concatenation). On the CPU, C grows by GEN_BLOCK slots so that
  the attended cache is one contiguous tensor (a strided slice of a larger buffer costs the
  CPU attention kernel a copy); on the static path it is fixed.
- Attention in two parts, combined exactly by their log-sum-exps l_p, l_g:
  out = out_g + sigmoid(l_p - l_g) * (out_p - out_g). The prompt part runs a group's rows
  against its prompt's keys as one matmul per (group, kv head); the generated part is per
  row, with aten's CPU flash attention (F.scaled_dot_product_attention's kernel, called
  directly for its log-sum-exp) or a plain fp32-softmax form on the static path. The
  G = heads / kv_heads query heads that share a kv head act as G query positions of it, so
  grouped-query attention needs no repeated K/V.
- Sampling by inversion with counter-based noise: sample i of prompt p draws its token t with
  u = hash(seed, p, i, t) in (0, 1] and takes the first token (in vocabulary order) whose
  cumulative probability reaches u * total. A sample is thus a function of (seed, prompt
  index, sample index) and the model only: not of the batch size, the other rows, the path or
  how many rows are still running. One uniform per row and step (Gumbel-max would need one
  per vocabulary entry), hashed for the whole chunk up front and with no generator state, so
  that the decode step is capturable as a CUDA graph. The hash is lowbias32 (an avalanching
  32-bit mixer) chained over two 32-bit lanes of the key; the top 24 bits make u.
- Temperature, top-k and top-p as transformers' warpers (same order, same tie and
  keep-at-least-one rules); log-probs are those of the processed distribution, like
  `rollout.hf` (its `output_scores`). top_k == 1 is greedy decoding (argmax, log-prob 0).
  Each row stops at EOS (included in its tokens) or after max_new_tokens.

Modules, in reading order: `noise` (counter-based uniforms, logits processing, drawing),
`weights` (the model's weights in the sampler's layout, prefill, the one-token forward),
`attention` (the two-part attention and its exact combination), `dedup` (the prefix-dedup
path), `static` (the static path and its CUDA graphs), `sampler` (`sample`, `generate`).
"""

from sps.rollout.fast.noise import draw, process_logits, uniforms
from sps.rollout.fast.sampler import Samples, generate, sample
from sps.rollout.fast.weights import Weights, supports

__all__ = [
    "Samples",
    "Weights",
    "draw",
    "generate",
    "process_logits",
    "sample",
    "supports",
    "uniforms",
]
