#!/usr/bin/env bash
# Issue 14's before/after measurements, in one device call (same card, same load):
#   1. train-step bench of the build before the data-path change and of this one, alternated twice
#      (LiteVAE-B + PatchGAN + LPIPS, batch 16 at 256², fp32 and bf16, channels-last);
#   2. pipeline bench on the bundled photos at 256², decode workers 1, 2, 4, 8 (real actors and pipeline,
#      trainer stand-in taking batches as fast as they come);
#   3. `litevae train` end to end, old build vs this one, a small model on CUDA so the data path is the
#      bottleneck (img/s and data wait of the progress lines).
# Needs .device/litevae-gpu.tar.xz and .device/litevae-gpu-old.tar.xz (scripts/gpu/publish.sh, publish.sh old <commit>).
#   scripts/gpu/data-path-bench.sh OUTDIR [steps] [pipeline] [e2e]   (all three when none is named;
#   one device call may run 10 minutes, so run `steps` in one call and `pipeline e2e` in the next)
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:?output folder}"; shift; mkdir -p "$out"
parts="${*:-steps pipeline e2e}"
want() { [[ " $parts " == *" $1 "* ]]; }
run() { local limit="$1"; shift; echo "=== $* (limit ${limit}s)"; timeout "$limit" "$@"; echo "=== exit $?"; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  nproc
  want steps && for round in 1 2; do
    for build in old new; do
      b=""; [ "$build" = old ] && b=old
      LITEVAE_BUNDLE=$b run 200 scripts/gpu/run.sh litevae-bench train-step --device cuda --resolution 256 --batch 16 \
        --precision fp32,bf16 --channels-last on --steps 30 --warmup 5 --profile-steps 0 --out "$out/train-step-$build-$round.json"
    done
  done
  want pipeline && run 200 scripts/gpu/run.sh litevae-bench pipeline --resolution 256 --batch 16 --steps 60 --workers 1,2,4,8 --out "$out/pipeline.md"
  want e2e || exit 0
  # Both builds train the older commit's quickstart config (this checkout accepts every key it has), so
  # the two runs do the same work.
  common=(--config .device/old-configs/quickstart.conf --device cuda --max-steps 300 --set data.resolution=128 --set data.batch-size=32 --set data.decode-workers=8
          --set eval.images=0 --set trainer.log-every=50 --set checkpoint.every-steps=1000)
  LITEVAE_BUNDLE=old run 150 scripts/gpu/run.sh litevae train --run-dir /tmp/e2e-old "${common[@]}" \
    > "$out/train-e2e-old.txt" 2>&1
  run 150 scripts/gpu/run.sh litevae train --run-dir /tmp/e2e-new "${common[@]}" > "$out/train-e2e-new.txt" 2>&1
} 2>&1 | tee -a "$out/log.txt"
