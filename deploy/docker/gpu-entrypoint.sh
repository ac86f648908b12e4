#!/bin/sh
# What scripts/gpu/run.sh does on a GPU host, as a container entrypoint: point the dynamic loader at the installed
# PyTorch's libtorch, then run `litevae` with the container's arguments.
set -eu
torch_lib="$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# One GC heap: the trainer's work is on the GPU; server GC would reserve a heap per core.
export DOTNET_gcServer=0
exec /app/litevae "$@"
