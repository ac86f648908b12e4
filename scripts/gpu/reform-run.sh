#!/usr/bin/env bash
# A data-parallel group of real `litevae node` processes, one per GPU, trained through the actors; one rank
# is killed with SIGKILL mid-run and the group must re-form with the survivors and go on from the last
# checkpoint. On a GPU machine:
#   scripts/gpu/reform-run.sh OUTDIR [GPUS=4] [SECONDS_BEFORE_KILL=60] [SECONDS_AFTER=45]
# Nodes: coordinator+trainer on GPU 0, a data node (CPU), trainer nodes on GPUs 1..N-1. The experiment is
# phase B (LiteVAE-B + UNetGAN-S, bf16, 256²) on the bundled sample shards with a global batch that divides
# by both N and N-1. Logs, status snapshots and a summary land in OUTDIR (packed as reform-logs.tgz).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="$1"; gpus="${2:-4}"; before="${3:-60}"; after="${4:-45}"
mkdir -p "$out/reform"; logs="$out/reform"
run_dir=/tmp/litevae-reform; rm -rf "$run_dir"
batch=$(( gpus * (gpus - 1) * 4 ))          # 48 for 4 GPUs: 12 per rank, then 16 per rank with 3
base=4853
seeds="[\"127.0.0.1:$base\"]"
common=(--set "litevae.node.seed-nodes=$seeds" --set "litevae.run.run-dir=\"$run_dir\""
  --set akka.cluster.split-brain-resolver.stable-after=3s --set akka.cluster.failure-detector.acceptable-heartbeat-pause=3s
  --set "litevae.distributed.trainers=$gpus" --set litevae.distributed.min-trainers=1 --set litevae.distributed.settle-s=5
  --set litevae.distributed.check-weights-every=20 --set litevae.trainer.min-backoff-s=1)
experiment=(--config configs/phase-b.conf
  --set 'data.source="samples/shards/train-{000000..000001}.tar"' --set "data.batch-size=$batch" --set data.decode-workers=16
  --set 'eval-data.source="samples/shards/eval-000000.tar"' --set eval.images=8 --set eval.grid-images=4
  --set trainer.max-steps=100000 --set trainer.log-every=10 --set trainer.device=cuda
  --set checkpoint.every-steps=25 --set checkpoint.keep-last=3)
# LITEVAE: the launcher (default: the GPU bundle); EXTRA: more --set pairs for the experiment (a CPU dry run).
read -r -a launcher <<< "${LITEVAE:-scripts/gpu/run.sh litevae}"
read -r -a extra <<< "${EXTRA:-}"
experiment+=("${extra[@]}")
pids=()
node() {   # name gpu hocon port [extra args...]
  local name="$1" gpu="$2" hocon="$3" port="$4"; shift 4
  CUDA_VISIBLE_DEVICES="$gpu" setsid "${launcher[@]}" node --hocon "hocon/$hocon" --set "litevae.node.port=$port" \
    "${common[@]}" "$@" > "$logs/$name.log" 2>&1 &
  pids+=($!); echo "$(el): $name pid $! on GPU '${gpu}' port $port"
}
status() { "${launcher[@]}" status --cluster "127.0.0.1:$base" --run-dir "$run_dir" 2>&1; }
step_of() { status | grep -oE 'step +[0-9]+ /' | grep -oE '[0-9]+' | head -1; }
t0=$(date +%s); el() { echo "$(( $(date +%s) - t0 ))s"; }
finish() {   # every node down, the logs packed (also when the run gives up early)
  sleep 5; for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null; done
  ls "$run_dir/checkpoints" > "$logs/checkpoints.txt" 2>&1
  tar -C "$out" -czf "$out/reform-logs.tgz" reform && rm -rf "$logs"
}
trap finish EXIT
wait_for() {   # pattern seconds: polls the coordinator's log; gives up (with the log's tail) if the node died
  local until=$(( $(date +%s) + $2 ))
  while ! grep -qE "$1" "$logs/coordinator.log"; do
    if ! kill -0 "${pids[0]}" 2>/dev/null || [ "$(date +%s)" -gt "$until" ]; then
      echo "$(el): no '$1' (coordinator alive: $(kill -0 "${pids[0]}" 2>/dev/null && echo yes || echo no))"; tail -20 "$logs/coordinator.log"; return 1
    fi
    sleep 1
  done
  echo "$(el): $(grep -oE "$1" "$logs/coordinator.log" | head -1)"
}

node coordinator 0 coordinator.conf "$base" "${experiment[@]}"
sleep 3
for g in $(seq 1 $((gpus - 1))); do node "trainer-$g" "$g" trainer-node.conf $((base + 10 + g)); done
node data "" data-node.conf $((base + 1)) --set litevae.data.decode-workers=16
wait_for 'generation 1 joined: [0-9]+ ranks' 150 || exit 1
sleep "$before"
status > "$logs/status-before-kill.txt"; s1=$(step_of); echo "$(el): step $s1 before the kill"
victim="${pids[$((gpus - 1))]}"   # the last trainer node
kill -9 -- "-$victim" 2>/dev/null || kill -9 "$victim"; echo "$(el): killed trainer-$((gpus - 1)) (pid $victim)"
wait_for 'generation 2 joined: [0-9]+ ranks' 150
grep -o 'data-parallel group generation 2: .*' "$logs/coordinator.log" | head -1
s2=$(step_of); sleep "$after"; status > "$logs/status-after.txt"; s3=$(step_of)
echo "$(el): step $s2 at re-form, $s3 after ${after}s more"
"${launcher[@]}" stop --cluster "127.0.0.1:$base" --run-dir "$run_dir" 2>&1 | tail -3
grep -hE "weights differ|joined|generation|finishing|resume from" "$logs"/*.log | head -40
