#!/usr/bin/env bash
# Runs a bundled command on a machine with PyTorch (CUDA) installed: unpacks .device/litevae-gpu.tar.xz
# once, points the dynamic loader at PyTorch's libtorch, and executes `litevae ...` or `litevae-bench ...`.
#   scripts/gpu/run.sh litevae doctor
#   scripts/gpu/run.sh litevae-bench model-inference --device cuda --resolution 256 --batch 64
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bundle="$root/.device/bundle"
[ -x "$bundle/litevae" ] || tar -C "$root/.device" -xJf "$root/.device/litevae-gpu.tar.xz"
torch_lib="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export DOTNET_gcServer=0
tool="$1"; shift
exec "$bundle/$tool" "$@"
