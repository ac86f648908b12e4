#!/usr/bin/env bash
# Rebuilds samples/shards (the bundled photographs) from Debian's wallpaper packages.
# Needs root for apt (or the packages already installed), Debian's python3-pil and the .NET SDK.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="mate-backgrounds plasma-workspace-wallpapers lxqt-themes lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 palapeli-data python3-pil"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then apt-get install -y --no-install-recommends $missing; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 samples/make-samples.py "$work"
rm -f samples/shards/train-*.tar samples/shards/eval-*.tar
litevae() { dotnet run --project src/Host -c Release -- "$@"; }
# 68 training samples in 4 shards of 17; the 10 evaluation photos in one shard.
litevae shards pack --input "$work/train" --output samples/shards --prefix train --max-count 17 --max-size 0.99 --seed 0 --full-decode
litevae shards pack --input "$work/eval" --output samples/shards --prefix eval --no-shuffle --full-decode
litevae shards check samples/shards
du -sh samples/shards
