#!/usr/bin/env bash
# Training shards for a real GPU run: the 34 training photographs of samples/ (never the 10 held out for
# evaluation) at a 768 px short side instead of the bundled 512/448 px crops, one sample per photo, so random
# rescaled crops at 128² and 256² see far more distinct image content than the bundled 68 samples.
# The originals come from Debian's wallpaper packages (samples/ATTRIBUTION.md lists each file, its package,
# author and licence); needs root for apt (or the packages installed), python3-pil and the .NET SDK.
#   scripts/data/make-photo-shards.sh [OUTDIR]        (default .device/photos)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-.device/photos}"
PKGS="mate-backgrounds plasma-workspace-wallpapers lxqt-themes lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 palapeli-data python3-pil"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then apt-get install -y --no-install-recommends $missing; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import os, re, sys
from PIL import Image, ImageOps
work = sys.argv[1]
rows = [l.split("|") for l in open("samples/ATTRIBUTION.md") if l.startswith("| ") and "`" in l]
n = 0
for r in rows:
    name, split, src = r[1].strip(), r[2].strip(), r[3].strip().strip("`")
    if split != "train":
        continue
    im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    s = 768 / min(im.size)
    if s < 1:
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS, reducing_gap=3.0)
    im.save(os.path.join(work, f"{name}.jpg"), quality=90)
    n += 1
print(f"{n} training photos at a 768 px short side (held-out photos left out)")
PY
rm -rf "$out" && mkdir -p "$out"
dotnet run --project src/Host -c Release -- shards pack --input "$work" --output "$out" --prefix photos --max-count 12 --seed 0 --full-decode
dotnet run --project src/Host -c Release -- shards check "$out"
du -sh "$out"
