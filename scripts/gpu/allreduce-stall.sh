#!/usr/bin/env bash
# One device call for issue 17's collective and checkpoint items, before and after in the same call:
#   scripts/gpu/allreduce-stall.sh OUTDIR
# 1. one-GPU NCCL all-reduce by size with the previous build (LITEVAE_BUNDLE=old, from
#    `scripts/gpu/publish.sh old <commit>`) and this one, and torch.distributed's NCCL all-reduce (the peer);
# 2. the training step with the checkpoint snapshot timed (the stall per checkpoint).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: allreduce-stall.sh OUTDIR}"; mkdir -p "$out"
sizes="${SIZES_MB:-0.0625,0.25,1,4,16,64,256}"
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  echo "=== all-reduce, previous build"
  LITEVAE_BUNDLE=old timeout 150 scripts/gpu/run.sh litevae-bench data-parallel --device cuda --ranks 1 --workloads allreduce --allreduce-mb "$sizes" --out "$out/allreduce-old.json"
  echo "=== all-reduce, this build"
  timeout 150 scripts/gpu/run.sh litevae-bench data-parallel --device cuda --ranks 1 --workloads allreduce --allreduce-mb "$sizes" --out "$out/allreduce-new.json"
  echo "=== all-reduce, torch.distributed (NCCL)"
  timeout 150 python3 bench/peers/torch_allreduce.py --world 1 --sizes-mb "$sizes" --out "$out/allreduce-torch.json"
  echo "=== train step + checkpoint stall"
  timeout 240 scripts/gpu/run.sh litevae-bench train-step --device cuda --resolution 256 --batch 16 --precision bf16 --channels-last on \
    --steps 10 --warmup 3 --profile-steps 0 --snapshots 5 --out "$out/train-step-stall.json"
  echo "=== done"
} 2>&1 | tee "$out/log.txt"
