#!/usr/bin/env bash
# Is a node's growing RSS a leak or the GC heap settling? Runs a coordinator+trainer node and a data node
# (CPU, quickstart at 32², checkpoints every 20 steps, nothing killed) for MINUTES, and records per node:
# RSS every 30 s, the runtime's own counters (GC heap size, committed bytes, gen-2 GCs; dotnet-counters) and
# two GC heap dumps (dotnet-gcdump: after WARMUP minutes and at the end), whose type tables show what grew.
#   scripts/memory-watch.sh OUTDIR [MINUTES=20] [WARMUP=5]
# Needs dotnet-counters and dotnet-gcdump (dotnet tool install --tool-path /tmp/tools dotnet-gcdump ...) on PATH
# or in /tmp/tools, and a built litevae (dotnet build src/Host -c Release). Extra node environment (e.g.
# DOTNET_GCHeapHardLimit=0x10000000) can be passed through the environment of this script. With
# KILL_TRAINER_EVERY_S=N the coordinator+trainer node is killed with SIGKILL and started again every N seconds
# (the data node lives on: what does a node keep from each peer that comes and goes?). NODE_SETS="k=v k2=v2" adds
# --set overrides to both nodes (e.g. litevae.node.malloc-trim-s=0). BASE_PORT=N moves the two
# ports (N, N+1), so two variants can run side by side. breakdown-data.csv splits the data node's RSS by kind of
# mapping every 30 s (scripts/rss-breakdown.py says how).
set -uo pipefail
cd "$(dirname "$0")/.."
out="$1"; minutes="${2:-20}"; warmup="${3:-5}"
export PATH="/tmp/tools:$PATH"
litevae=src/Host/bin/Release/net10.0/linux-x64/litevae
[ -x "$litevae" ] || { echo "build first: dotnet build src/Host -c Release"; exit 2; }
mkdir -p "$out"; run_dir=$(mktemp -d /tmp/litevae-memwatch-XXXX)
base="${BASE_PORT:-4953}"; seeds="[\"127.0.0.1:$base\",\"127.0.0.1:$((base + 1))\"]"
common=(--set "litevae.node.seed-nodes=$seeds" --set "litevae.run.run-dir=\"$run_dir\"")
for kv in ${NODE_SETS:-}; do common+=(--set "$kv"); done
experiment=(--config configs/quickstart.conf --set data.resolution=32 --set data.batch-size=2
  --set eval-data.resolution=32 --set eval-data.batch-size=4 --set eval.images=4 --set eval.grid-images=2
  --set trainer.max-steps=10000000 --set trainer.log-every=5 --set checkpoint.every-steps=20 --set checkpoint.keep-last=3)
start_trainer() {
  "$litevae" node --hocon hocon/coordinator.conf --set "litevae.node.port=$((base + 1))" "${common[@]}" "${experiment[@]}" >> "$out/trainer.log" 2>&1 &
  trainer=$!
}
start_trainer
# The data node has the lower port: in a cluster of two, keep-majority keeps the side with the lowest address, so
# a trainer that is slow to come back (a loaded machine) never makes the data node down itself.
"$litevae" node --hocon hocon/data-node.conf --set "litevae.node.port=$base" "${common[@]}" > "$out/data.log" 2>&1 &
data=$!
trap 'kill $trainer $data $counters_t $counters_d 2>/dev/null; wait 2>/dev/null' EXIT
sleep 5
counters=(--refresh-interval 30 --format csv --counters System.Runtime)
dotnet-counters collect -p $trainer "${counters[@]}" -o "$out/counters-trainer.csv" > /dev/null 2>&1 & counters_t=$!
dotnet-counters collect -p $data "${counters[@]}" -o "$out/counters-data.csv" > /dev/null 2>&1 & counters_d=$!
echo "time_s,trainer_rss_mib,data_rss_mib" > "$out/rss.csv"
# Where the data node's RSS lives (file/brk heap/arenas/GC/other anonymous, threads): scripts/rss-breakdown.py.
echo "time_s,$(python3 scripts/rss-breakdown.py $data --header 2>/dev/null | head -1)" > "$out/breakdown-data.csv"
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status" 2>/dev/null; }
start=$(date +%s); dumped=0; kills=0; last_kill=$start
while [ $(( $(date +%s) - start )) -lt $(( minutes * 60 )) ]; do
  if [ "${KILL_TRAINER_EVERY_S:-0}" -gt 0 ] && [ $(( $(date +%s) - last_kill )) -ge "$KILL_TRAINER_EVERY_S" ]; then
    kill -9 $trainer; wait $trainer 2>/dev/null; start_trainer; kills=$((kills + 1)); last_kill=$(date +%s)
  fi
  kill -0 $trainer 2>/dev/null && kill -0 $data 2>/dev/null || { echo "a node exited"; break; }
  echo "$(( $(date +%s) - start )),$(rss $trainer),$(rss $data)" >> "$out/rss.csv"
  echo "$(( $(date +%s) - start )),$(python3 scripts/rss-breakdown.py $data)" >> "$out/breakdown-data.csv"
  if [ $dumped -eq 0 ] && [ $(( $(date +%s) - start )) -ge $(( warmup * 60 )) ]; then
    dotnet-gcdump collect -p $trainer -o "$out/trainer-early.gcdump" > /dev/null 2>&1
    dotnet-gcdump collect -p $data -o "$out/data-early.gcdump" > /dev/null 2>&1
    dumped=1
  fi
  sleep 30
done
dotnet-gcdump collect -p $trainer -o "$out/trainer-late.gcdump" > /dev/null 2>&1
dotnet-gcdump collect -p $data -o "$out/data-late.gcdump" > /dev/null 2>&1
for role in trainer data; do
  for when in early late; do
    [ -f "$out/$role-$when.gcdump" ] && dotnet-gcdump report "$out/$role-$when.gcdump" > "$out/$role-$when-types.txt" 2>&1
  done
done
sleep 20   # a restarted coordinator needs a moment before it answers
"$litevae" status --cluster "127.0.0.1:$((base + 1))" --run-dir "$run_dir" > "$out/status.txt" 2>&1
echo "done: $out ($kills trainer kills; $(grep -oE 'step +[0-9]+' "$out/status.txt" | head -1))"
