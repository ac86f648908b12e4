#!/usr/bin/env bash
# Issue 14's before/after on this machine's CPUs, one run (same load): the build before the one-data-path change
# and this checkout's build, alternated:
#   1. train-step bench (LiteVAE-S + PatchGAN + LPIPS, fp32, 64², batch 4), old/new/old/new;
#   2. `litevae train` end to end on the bundled shards with the older commit's quickstart config (the same work
#      for both builds), 200 steps at 64², decode-workers 1 and 2: img/s and data wait from the last progress line;
#   3. this checkout's pipeline bench at 256², decode workers 1 and 2.
# Needs the older commit built in a worktree:  git worktree add --detach /tmp/old <commit> && (cd /tmp/old && dotnet build LiteVae.sln -c Release)
#   scripts/data-path-bench-cpu.sh /tmp/old OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
old="${1:?old worktree}"; out="${2:?output folder}"; mkdir -p "$out"
bin=bin/Release/net10.0/linux-x64
{
  date -u; lscpu | grep -E "Model name|^CPU\(s\)"; git -C "$old" log --oneline -1; git log --oneline -1
  for round in 1 2; do
    for build in old new; do
      root=.; [ "$build" = old ] && root="$old"
      echo "=== train-step $build round $round"
      (cd "$root" && "bench/LiteVae.Bench/$bin/litevae-bench" train-step --device cpu --resolution 64 --batch 4 --precision fp32 \
        --encoder S --steps 10 --warmup 2 --profile-steps 0 --out "$OLDPWD/$out/train-step-$build-$round.json") 2>&1 | grep -E "img/s|fp32" | tail -3
    done
  done
  for workers in 1 2; do
    for build in old new; do
      root=.; [ "$build" = old ] && root="$old"
      echo "=== train e2e $build decode-workers $workers"
      rm -rf "/tmp/e2e-$build-$workers"
      (cd "$root" && "src/Host/$bin/litevae" train --config "$old/configs/quickstart.conf" --run-dir "/tmp/e2e-$build-$workers" --device cpu \
        --max-steps 200 --set eval.images=0 --set checkpoint.every-steps=1000 --set trainer.log-every=50 --set data.decode-workers=$workers) \
        > "$out/train-e2e-$build-w$workers.txt" 2>&1
      tr '\r' '\n' < "$out/train-e2e-$build-w$workers.txt" | grep -E "step +200 */|img/s" | tail -1
    done
  done
  echo "=== pipeline (this build) workers 1,2"
  "bench/LiteVae.Bench/$bin/litevae-bench" pipeline --resolution 256 --batch 16 --steps 40 --workers 1,2 --out "$out/pipeline.md" 2>&1 | grep -E "^\|"
} 2>&1 | tee "$out/log.txt"
