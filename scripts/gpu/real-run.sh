#!/usr/bin/env bash
# A real LiteVAE-B training run on one GPU (issue 15): phase A at 128² (configs/phase-a.conf) on the bundled
# training shards plus the larger photo shards (scripts/data/make-photo-shards.sh → .device/photos), then
# phase B at 256² with the UNetGAN-S discriminator (configs/phase-b.conf, initialised from phase A's weights).
# Held-out PSNR/SSIM/MS-SSIM of the 10 photos never trained on (samples/shards/eval-000000.tar, short side
# resized to 256, centre crop) at every checkpoint. LPIPS is off in both phases: its VGG weights are not
# available here (Known limits). Results (eval reports, grids, tb curves, progress log) go to OUTDIR;
# checkpoints stay in .device/runs (too large to bring back).
#   scripts/gpu/real-run.sh OUTDIR a [A_STEPS]      phase A (default 2500 steps)
#   scripts/gpu/real-run.sh OUTDIR b [B_STEPS]      phase B from .device/runs/phase-a (default 1000 steps)
#   scripts/gpu/real-run.sh OUTDIR ab [A_STEPS] [B_STEPS]   both in one call (a device machine keeps no files
#                                                    between calls, and phase A's checkpoint is too large to carry)
# LIMIT_S=N stops a phase after N seconds with SIGINT (final checkpoint and its evaluation, then the results are
# copied), for a device call with a fixed time limit; with `ab`, LIMIT_A_S and LIMIT_B_S do it per phase.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:?output folder}"; phase="${2:?a or b}"; mkdir -p "$out"
runs=.device/runs
common=(--set loss.perceptual=none
        --set 'data.source=["samples/shards/train-{000000..000003}.tar", ".device/photos/photos-{000000..000002}.tar"]'
        --set 'eval-data.source="samples/shards/eval-000000.tar"' --set eval-data.resolution=256 --set eval-data.batch-size=10
        --set eval.images=10 --set eval.grid-images=5 --set trainer.log-every=100 --set checkpoint.keep-last=2)
keep() { local run="$1" name="$2"; mkdir -p "$out/$name"; cp -r "$run/eval" "$run/tb" "$run/config.conf" "$out/$name/" 2>/dev/null; [ -d "$run/audit" ] && cp "$run/audit/skipped.tsv" "$out/$name/" 2>/dev/null; true; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  phase_a() {
      rm -rf "$runs/phase-a"
      timeout -s INT -k 90 "$1" scripts/gpu/run.sh litevae train --config configs/phase-a.conf --run-dir "$runs/phase-a" --device cuda --max-steps "$2" \
        --set checkpoint.every-steps=500 "${common[@]}"
      echo "=== exit $?"; keep "$runs/phase-a" phase-a
  }
  phase_b() {
      rm -rf "$runs/phase-b"
      timeout -s INT -k 90 "$1" scripts/gpu/run.sh litevae train --config configs/phase-b.conf --init-from "$runs/phase-a" --run-dir "$runs/phase-b" --device cuda \
        --max-steps "$2" --set data.batch-size=16 --set checkpoint.every-steps=250 "${common[@]}"
      echo "=== exit $?"; keep "$runs/phase-b" phase-b
  }
  case "$phase" in
    a) phase_a "${LIMIT_S:-1000000}" "${3:-2500}" ;;
    b) phase_b "${LIMIT_S:-1000000}" "${3:-1000}" ;;
    ab) phase_a "${LIMIT_A_S:-1000000}" "${3:-2500}"; phase_b "${LIMIT_B_S:-1000000}" "${4:-1000}" ;;
  esac
} 2>&1 | tee -a "$out/log-$phase.txt"
