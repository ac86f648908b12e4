#!/usr/bin/env bash
# Runs a bundled command on a machine with PyTorch (CUDA) installed: unpacks .device/litevae-gpu.tar.xz
# once, points the dynamic loader at PyTorch's libtorch, and executes `litevae ...` or `litevae-bench ...`.
#   scripts/gpu/run.sh litevae doctor
#   scripts/gpu/run.sh litevae-bench model-inference --device cuda --resolution 256 --batch 64
# LITEVAE_BUNDLE=old runs the bundle of another build instead (.device/litevae-gpu-old.tar.xz, from
# `scripts/gpu/publish.sh old <commit>`), for same-call before/after comparisons.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
name="${LITEVAE_BUNDLE:-}"
home="$root/.device${name:+/$name}"
bundle="$home/bundle"
mkdir -p "$home"
if [ ! -x "$bundle/litevae" ]; then
  # Another build's archive holds only the files that differ from this checkout's bundle (publish.sh).
  [ -z "$name" ] || tar -C "$home" -xJf "$root/.device/litevae-gpu.tar.xz"
  tar -C "$home" -xJf "$root/.device/litevae-gpu${name:+-$name}.tar.xz"
fi
torch_lib="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export DOTNET_gcServer=0
tool="$1"; shift
exec "$bundle/$tool" "$@"
