#!/usr/bin/env bash
# The GPU benchmark suite in one go (each benchmark time-boxed so one hang cannot eat the session):
#   scripts/gpu/bench-suite.sh [OUTDIR] [names...]     (default: every benchmark below)
# Results land in bench/results/ and are copied to OUTDIR. Needs .device/litevae-gpu.tar.xz (publish.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-bench/results}"; shift || true
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(doctor model-inference train-step disc-step eval-metrics data-decode pipeline)
mkdir -p "$out" bench/results
run() { local limit="$1"; shift; echo "=== $* (limit ${limit}s)"; timeout "$limit" scripts/gpu/run.sh "$@"; echo "=== exit $?"; }
for n in "${names[@]}"; do
  case "$n" in
    doctor)          run 60  litevae doctor ;;
    model-inference) run 150 litevae-bench model-inference --device cuda --resolution 256 --batch 64 ;;
    train-step)      run 300 litevae-bench train-step --device cuda --resolution 256 --batch 16 ;;
    disc-step)       run 120 litevae-bench disc-step --device cuda --batch 16 --size 256 ;;
    eval-metrics)    run 120 litevae-bench eval-metrics --device cuda ;;
    data-decode)     run 150 litevae-bench data-decode --threads 1,4,16 --seconds 2 --rounds 2 --python python3 ;;
    pipeline)        run 120 litevae-bench pipeline --workers 1,2,4,8 ;;
    *)               run 300 litevae-bench "$n" --device cuda ;;
  esac
done 2>&1 | tee "$out/suite-log.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 || true
# One archive: the device tool brings back only a few files per call.
tar -C bench/results -czf "$out/bench-results.tgz" . 2>/dev/null || true
rm -f "$out"/*.md "$out"/*.json 2>/dev/null || true
