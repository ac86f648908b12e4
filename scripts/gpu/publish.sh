#!/usr/bin/env bash
# Builds a self-contained bundle of `litevae` and `litevae-bench` that uses the libtorch of an installed
# PyTorch at run time (no CUDA NuGet package needed), packed as .device/litevae-gpu.tar.xz.
# On the GPU machine:  scripts/gpu/run.sh <command...>   (unpacks once, sets LD_LIBRARY_PATH).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.device/bundle
rm -rf "$out" && mkdir -p "$out"
for project in src/Host bench/LiteVae.Bench; do
  dotnet publish "$project" -c Release -r linux-x64 --self-contained true \
    -p:LiteVaeTorch=external -p:InvariantGlobalization=true -p:DebugType=none \
    -o "$out" -v quiet -nologo
done
tar -C .device -cJf .device/litevae-gpu.tar.xz bundle
ls -lh .device/litevae-gpu.tar.xz
