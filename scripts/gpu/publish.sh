#!/usr/bin/env bash
# Builds a self-contained bundle of `litevae` and `litevae-bench` that uses the libtorch of an installed
# PyTorch at run time (no CUDA NuGet package needed), packed as .device/litevae-gpu.tar.xz.
# On the GPU machine:  scripts/gpu/run.sh <command...>   (unpacks once, sets LD_LIBRARY_PATH).
#   scripts/gpu/publish.sh                 this checkout
#   scripts/gpu/publish.sh old <commit>    another commit (a temporary worktree), as .device/litevae-gpu-old.tar.xz
#                                          (only the files that differ from this checkout's bundle: publish it first)
#                                          and its configs in .device/old-configs: run it with LITEVAE_BUNDLE=old
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
name="${1:-}"
src="$root"
if [ -n "$name" ]; then
  commit="${2:?publish.sh $name needs a commit}"
  src="$(mktemp -d)/src"
  git worktree add --detach "$src" "$commit" >/dev/null
  trap 'git -C "$root" worktree remove --force "$src"' EXIT
  rm -rf ".device/$name-configs" && mkdir -p .device && cp -r "$src/configs" ".device/$name-configs"
fi
stage="$(mktemp -d)"
out="$stage/bundle"
for project in src/Host bench/LiteVae.Bench; do
  dotnet publish "$src/$project" -c Release -r linux-x64 --self-contained true \
    -p:LiteVaeTorch=external -p:InvariantGlobalization=true -p:DebugType=none \
    -o "$out" -v quiet -nologo
done
archive=".device/litevae-gpu${name:+-$name}.tar.xz"
if [ -n "$name" ]; then
  # Two full bundles exceed what one device call may carry (64 MiB); the runtime and most libraries are the
  # same bytes, so another build's archive holds only the files that differ from this checkout's bundle
  # (run.sh unpacks this checkout's bundle under it first).
  [ -f .device/litevae-gpu.tar.xz ] || { echo "publish.sh $name: run scripts/gpu/publish.sh first (the delta is taken against it)" >&2; exit 2; }
  base="$(mktemp -d)" && tar -C "$base" -xJf .device/litevae-gpu.tar.xz
  (cd "$out" && find . -type f) | while read -r f; do cmp -s "$out/$f" "$base/bundle/$f" && rm "$out/$f"; done
  rm -rf "$base"
fi
mkdir -p .device && tar -C "$stage" -cJf "$archive" bundle && rm -rf "$stage"
ls -lh "$archive"
