#!/usr/bin/env bash
# The CUDA path in one go, in under 8 minutes on one GPU: run it from the repository root on a
# machine with a CUDA GPU, torch built with CUDA and transformers. snakemake and the GGUF are
# not needed; peft is not needed; vllm is optional (its checks are skipped where it does not
# import).
#
#   bash scripts/gpu_check.sh            # on a GPU machine
#   SMOKE=1 bash scripts/gpu_check.sh    # the same steps, tiny sizes, on a CPU (to test it)
#   BUDGET=900 bash scripts/gpu_check.sh # seconds for the whole check (default 450)
#
# 1. the built-in task end to end through the `sps` commands the workflow runs: data, a short
#    pretrain, GRPO and SPS steps (one process), SPS under rl.parallel fsdp (world size 1)
#    with sharded checkpoints and a resume from them, SPS with vLLM rollouts in training
#    (rl.backend vllm, under ddp and fsdp; where vllm imports), large-k sampling, Pass@k;
# 2. large-k sampling of a SmolLM2-135M-shaped model (random bf16 weights): our sampler
#    against model.generate, tokens/s;
# 3. training steps at batch 64 x 384 tokens of the SmolLM2-135M and Qwen2-0.5B shapes, the
#    naive float32 logits against the memory-lean path; then a whole training step (both
#    AdamW optimizers) of the Qwen2.5-Math-1.5B shape at 32 x 1024 tokens, as one process
#    and under fsdp: tokens/s and peak GPU memory.
#
# A failing step does not stop the others. Each has its own time limit, and the whole check a
# budget: a step is cut to what is left of it, and skipped when too little is. At the end one
# table (per step: pass, FAIL or skip, seconds, tokens/s, peak GPU memory), also written to
# $OUT/table.md beside one log per step ($OUT defaults to gpu_check/).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-gpu_check}
mkdir -p "$OUT"
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then DEVICE=cpu; PRE=60; STEPS=3; N=8; else DEVICE=cuda; PRE=400; STEPS=10; N=256; fi
if [ "$SMOKE" = 1 ]; then BUDGET=${BUDGET:-3000}; else BUDGET=${BUDGET:-450}; fi
status=0
: >"$OUT/steps.tsv"

record() {  # record NAME RESULT SECONDS: one row of the table
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$OUT/steps.tsv"
}

step() {  # step NAME LIMIT_S COMMAND...: run, tee its log, sample GPU memory, remember a failure
  local name=$1 limit=$2; shift 2
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 20 ]; then
    echo "=== $name: skipped, the ${BUDGET} s budget is spent"
    record "$name" "skip (budget)" 0
    status=1
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name"
  local start=$SECONDS monitor=""
  if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 \
      >"$OUT/$name.mem" 2>/dev/null &
    monitor=$!
  fi
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ -n "$monitor" ]; then kill "$monitor" 2>/dev/null; wait "$monitor" 2>/dev/null; fi
  local took=$((SECONDS - start)) result=pass
  echo "=== $name: exit $rc in $took s"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then result="FAIL (timeout $limit s)"; fi
  if [ "$rc" != 0 ] && [ "$result" = pass ]; then result="FAIL (exit $rc)"; fi
  [ "$rc" = 0 ] || status=1
  record "$name" "$result" "$took"
}

merge() {  # merge CONFIG PATCH: the JSON config with PATCH's sections merged in, key by key
  python -c 'import json, sys
cfg, patch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for key, value in patch.items():
    cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
print(json.dumps(cfg))' "$1" "$2"
}

resumes() {  # resumes RUN_DIR TRAIN_ARGS...: a finished run's outputs deleted, `sps train` again
  local run=$1; shift
  rm -rf "$run/final" "$run/metrics.parquet"
  python -m sps.cli train "$@" --out-dir "$run" 2>&1 | tee "$run.resume.log"
  [ "${PIPESTATUS[0]}" = 0 ] && grep -q "resumed from" "$run.resume.log"
}
export -f resumes

python - <<'PY' | tee "$OUT/device.log"
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
HAS_VLLM=0
python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("vllm") is None)' && HAS_VLLM=1

# 1. the built-in task, end to end
D=$OUT/countdown
CFG="{\"seed\": 0, \"device\": \"$DEVICE\", \"task\": {\"n_sft\": 600, \"n_train\": 64, \"n_test\": 32},
 \"model\": {\"hidden_size\": 64, \"num_layers\": 2, \"num_heads\": 2, \"intermediate_size\": 128},
 \"pretrain\": {\"steps\": $PRE, \"warmup_steps\": 20},
 \"rl\": {\"steps\": $STEPS, \"prompts_per_step\": 8, \"group_size\": 16, \"eval_steps\": [],
          \"checkpoint_every\": 0},
 \"irl\": {}, \"sampling\": {\"n\": $N, \"shards\": 1, \"batch_size\": 4096}}"
SPS=$(merge "$CFG" '{"schedule": {"kind": "fixed", "period": 1}}')
TRAIN=(--base "$D/base" --data "$D/data/train.parquet")
step 1a_data 120 python -m sps.cli prepare-data --cfg "$CFG" --bench countdown --out-dir "$D/data"
step 1b_pretrain 240 python -m sps.cli pretrain --cfg "$CFG" --data "$D/data/sft.parquet" --out "$D/base"
step 1c_train_grpo 180 python -m sps.cli train --cfg "$(merge "$CFG" '{"schedule": {"kind": "none"}}')" \
  "${TRAIN[@]}" --out-dir "$D/runs/grpo"
step 1c_train_sps-p1 180 python -m sps.cli train --cfg "$SPS" "${TRAIN[@]}" --out-dir "$D/runs/sps-p1"
FSDP=$(merge "$SPS" '{"rl": {"parallel": "fsdp", "checkpoint_every": 2, "micro_batch_size": 32,
  "gradient_checkpointing": true, "logprob_chunk": 16}}')
step 1d_train_fsdp 180 python -m sps.cli train --cfg "$FSDP" "${TRAIN[@]}" --out-dir "$D/runs/fsdp"
step 1e_resume_fsdp 120 bash -c 'resumes "$@"' _ "$D/runs/fsdp" --cfg "$FSDP" "${TRAIN[@]}"
for parallel in ddp fsdp; do
  name=1f_train_vllm_$parallel
  if [ "$HAS_VLLM" = 1 ]; then
    step "$name" 240 python -m sps.cli train "${TRAIN[@]}" --out-dir "$D/runs/vllm-$parallel" \
      --cfg "$(merge "$SPS" "{\"rl\": {\"backend\": \"vllm\", \"parallel\": \"$parallel\"}}")"
  else
    echo "=== $name: skipped, vllm does not import"
    record "$name" "skip (no vllm)" 0
  fi
done
step 1g_sample 180 python -m sps.cli sample --cfg "$CFG" --model "$D/runs/sps-p1/final" \
  --data "$D/data/test.parquet" --shard 0 --out "$D/samples.parquet"
step 1h_grade 60 python -m sps.cli grade --cfg "$CFG" --data "$D/data/test.parquet" \
  --samples "$D/samples.parquet" --out "$D/grades.parquet"
step 1i_passk 60 python -m sps.cli passk --grades "$D/grades.parquet" --data "$D/data/test.parquet" \
  --out "$D/passk.parquet"

# 2. large-k sampling of the SmolLM2-135M shape: our sampler against model.generate
if [ "$SMOKE" = 1 ]; then
  step 2_sampling 300 python -m sps.benchmarks.sampling --repeats 1 --n 8 --problems 4 --pretrain-steps 20
else
  step 2_sampling 300 python -m sps.benchmarks.sampling --cuda-shape --repeats 2
fi

# 3. training steps: naive against memory-lean; then a whole step of the 1.5B shape
MEM="python -m sps.benchmarks.train_memory"
if [ "$SMOKE" = 1 ]; then
  TINY=(--shape tiny --batch 4 --length 24 --device cpu)
  step 3_train_memory 300 $MEM "${TINY[@]}"
  step 3d_train_step_fsdp 300 $MEM "${TINY[@]}" --optimizer --parallel fsdp
else
  step 3a_train_smollm2 300 $MEM --shape smollm2
  step 3b_train_qwen05b 300 $MEM --shape qwen2-0.5b
  BIG=(--shape qwen2.5-1.5b --batch 32 --length 1024 --micro 16 --chunk 256 --optimizer)
  step 3c_train_qwen15b 300 $MEM "${BIG[@]}"
  step 3d_train_qwen15b_fsdp 300 $MEM "${BIG[@]}" --parallel fsdp
fi

python - "$OUT" <<'PY' | tee "$OUT/table.md"
"""One row per step (per variant for the training benchmarks): result, seconds, tokens/s and
peak GPU memory. Memory is the allocator's peak (torch.cuda.max_memory_allocated) where the
benchmark prints it, else the device's (nvidia-smi memory.used: the CUDA context and cached
blocks included)."""
import re
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])


def device_peak(name):
    mem = out / f"{name}.mem"
    values = [float(v) for v in mem.read_text().split()] if mem.is_file() else []
    return f"{max(values) / 1024:.1f} GiB (device)" if values else "n/a"


def rate(name, log):
    if name.startswith("1") and ("_train_" in name or "_resume_" in name):  # "tok/s N" a step
        found = [float(v) for v in re.findall(r"\btok/s (\d+)", log)]
        return f"{statistics.median(found):,.0f} (median step)" if found else "-"
    if name.endswith("_sample"):  # sps sample: "N tok/s"
        found = re.findall(r"(\d+) tok/s", log)
        return f"{float(found[-1]):,.0f}" if found else "-"
    if name == "2_sampling":  # fast sampler's best and the baseline's
        found = dict(re.findall(r"^\s*(\w+): best\s+(\d+) tok/s", log, re.M))
        return ", ".join(f"{k} {float(v):,.0f}" for k, v in found.items()) or "-"
    return "-"


rows = []
for line in (out / "steps.tsv").read_text().splitlines():
    name, result, seconds = line.split("\t")
    log_file = out / f"{name}.log"
    log = log_file.read_text(errors="replace") if log_file.is_file() else ""
    bench = re.findall(r"^(naive|lean)\b[^:]*: (.*)$", log, re.M)
    if name.startswith("3") and bench:  # the training benchmarks: one row per variant
        for variant, text in bench:
            peak = re.search(r"peak memory ([^,]+)", text)
            tokens = re.search(r"([\d,]+) tokens/s", text)
            cells = [f"{name} {variant}", result if "OOM" not in text else "OOM", seconds]
            cells += [tokens[1] if tokens else "-", peak[1] if peak else "-"]
            rows.append(cells)
        continue
    rows.append([name, result, seconds, rate(name, log), device_peak(name)])
print("| step | result | s | tokens/s | peak GPU memory |")
print("|---|---|---|---|---|")
for cells in rows:
    print("| " + " | ".join(cells) + " |")
PY

echo "=== gpu_check: $([ $status = 0 ] && echo all steps passed || echo SOME STEPS FAILED OR DID NOT RUN); table in $OUT/table.md, logs in $OUT/"
exit $status
