#!/usr/bin/env bash
# The CUDA path in one go (under 10 minutes on one GPU): run from the repository root on a
# machine with a CUDA GPU, torch and transformers (snakemake and the GGUF are not needed).
#
#   bash scripts/gpu_check.sh            # on a GPU machine
#   SMOKE=1 bash scripts/gpu_check.sh    # the same steps, tiny sizes, on a CPU (to test it)
#
# 1. the built-in task end to end through the `sps` commands the workflow runs: data, a short
#    pretrain, a few GRPO and SPS steps, large-k sampling and Pass@k;
# 2. large-k sampling of a SmolLM2-135M-shaped model (random bf16 weights: the GGUF is not
#    needed), our sampler against model.generate, tokens/s;
# 3. a few training steps of the SmolLM2-135M shape and the Qwen2-0.5B shape at batch 64 x 384
#    tokens: logits taken whole in float32 (the naive way) against the memory-lean log-probs
#    (chunked head, activation checkpointing, micro-batches); tokens/s and peak GPU memory.
# Everything it prints is also in $OUT (default gpu_check/), one log per step.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then DEVICE=cpu; PRE=60; STEPS=3; N=8; else DEVICE=cuda; PRE=400; STEPS=10; N=256; fi
status=0

step() {  # step NAME TIMEOUT_S COMMAND...: run, tee its log, remember a failure, go on
  local name=$1 limit=$2; shift 2
  echo "=== $name"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc in $((SECONDS - start)) s"
  [ "$rc" = 0 ] || status=1
}

python - <<'PY' | tee "$OUT/device.log"
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY

# 1. the built-in task, end to end
D=$OUT/countdown
CFG="{\"seed\": 0, \"device\": \"$DEVICE\", \"task\": {\"n_sft\": 600, \"n_train\": 64, \"n_test\": 32},
 \"model\": {\"hidden_size\": 64, \"num_layers\": 2, \"num_heads\": 2, \"intermediate_size\": 128},
 \"pretrain\": {\"steps\": $PRE, \"warmup_steps\": 20},
 \"rl\": {\"steps\": $STEPS, \"prompts_per_step\": 8, \"group_size\": 16, \"eval_steps\": [],
          \"checkpoint_every\": 0},
 \"irl\": {}, \"sampling\": {\"n\": $N, \"shards\": 1, \"batch_size\": 4096}}"
step 1a_data 120 python -m sps.cli prepare-data --cfg "$CFG" --bench countdown --out-dir "$D/data"
step 1b_pretrain 240 python -m sps.cli pretrain --cfg "$CFG" --data "$D/data/sft.parquet" --out "$D/base"
for run in grpo:none sps-p1:fixed; do
  name=${run%%:*} kind=${run##*:}
  step "1c_train_$name" 180 python -m sps.cli train \
    --cfg "${CFG%\}}, \"schedule\": {\"kind\": \"$kind\", \"period\": 1}}" \
    --base "$D/base" --data "$D/data/train.parquet" --out-dir "$D/runs/$name"
done
step 1d_sample 180 python -m sps.cli sample --cfg "$CFG" --model "$D/runs/sps-p1/final" \
  --data "$D/data/test.parquet" --shard 0 --out "$D/samples.parquet"
step 1e_passk 60 python -m sps.cli passk --samples "$D/samples.parquet" --out "$D/passk.parquet"

# 2. large-k sampling of the SmolLM2-135M shape: our sampler against model.generate
if [ "$SMOKE" = 1 ]; then
  step 2_sampling 300 python -m sps.benchmarks.sampling --repeats 1 --n 8 --problems 4 --pretrain-steps 20
else
  step 2_sampling 300 python -m sps.benchmarks.sampling --cuda-shape --repeats 2
fi

# 3. training steps: SmolLM2-135M shape, then Qwen2-0.5B shape naive vs memory-lean
if [ "$SMOKE" = 1 ]; then
  step 3_train_memory 300 python -m sps.benchmarks.train_memory --shape tiny --batch 4 --length 24 --device cpu
else
  step 3a_train_smollm2 300 python -m sps.benchmarks.train_memory --shape smollm2
  step 3b_train_qwen05b 300 python -m sps.benchmarks.train_memory --shape qwen2-0.5b
fi

echo "=== gpu_check: $([ $status = 0 ] && echo all steps passed || echo SOME STEPS FAILED); logs in $OUT/"
exit $status
