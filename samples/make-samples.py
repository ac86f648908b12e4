#!/usr/bin/python3
"""Cuts the bundled sample photos out of Debian wallpaper packages (run by make-samples.sh).

Writes downscaled JPEG crops to <out>/train and <out>/eval and samples/ATTRIBUTION.md.
Train photos give two views each (the whole frame, and a closer crop); eval photos are held out
(never trained on) and give one view. Needs Debian's python3-pil (/usr/bin/python3).
"""
import os, random, sys
from PIL import Image, ImageOps

OUT = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
B = "/usr/share/backgrounds"
W = "/usr/share/wallpapers"
GPL = "GPL-2.0-or-later"
MATE = ("mate-backgrounds", GPL)
LOMIRI16 = "lomiri-wallpapers-16.04"
LOMIRI20 = "lomiri-wallpapers-20.04"
LXQT = ("lxqt-themes", "CC-BY-SA-3.0")
PLASMA = "plasma-workspace-wallpapers"
PALAPELI = "palapeli-data"

# name, source file, package, author, licence (from the package's debian/copyright or metadata)
PHOTOS = [
    ("bridge-klootwijk", f"{B}/Bridge_by_Sander_Klootwijk.jpg", LOMIRI16, "Sander Klootwijk", "CC-BY-SA-4.0"),
    ("dragonfly-bolly", f"{B}/Dragonfly_by_Bolly.jpg", LOMIRI16, "\"Bolly\"", "CC-BY-SA-4.0"),
    ("kleiber-baubkus", f"{B}/Kleiber_by_Lukas_Baubkus.jpg", LOMIRI20, "Lukas Baubkus", "CC-BY-SA-3.0"),
    ("fig-freespace", f"{B}/Picture_0B_by_freespace.jpg", LOMIRI16, "Trevor \"Freespace\"", "CC-BY-4.0"),
    ("brushes-freespace", f"{B}/Picture_1A_by_freespace.jpg", LOMIRI16, "Trevor \"Freespace\"", "CC-BY-4.0"),
    ("wine-mede", f"{B}/Wine_by_Jakkub_Mede.jpg", LOMIRI16, "Jakub Mede", "CC-BY-4.0"),
    ("aitzgorri-berasategi", f"{B}/aitzgorri_by_Aitzol_Berasategi.jpg", LOMIRI16, "Aitzol Berasategi", "CC-BY-4.0"),
    ("free-nerlich", f"{B}/free_by_Peter_Nerlich.jpg", LOMIRI16, "Peter Nerlich", "CC-BY-SA-4.0"),
    ("friends-berasategi", f"{B}/friends_by_Aitzol_Berasategi.jpg", LOMIRI16, "Aitzol Berasategi", "CC-BY-4.0"),
    ("greentock-nerlich", f"{B}/greentock_by_Peter_Nerlich.jpg", LOMIRI16, "Peter Nerlich", "CC-BY-SA-4.0"),
    ("life-berasategi", f"{B}/life_by_Aitzol_Berasategi.jpg", LOMIRI16, "Aitzol Berasategi", "CC-BY-4.0"),
    ("picosdeeuropa-berasategi", f"{B}/picosdeeuropa_by_Aitzol_Berasategi.jpg", LOMIRI16, "Aitzol Berasategi", "CC-BY-4.0"),
    ("seeding-engelhardt", f"{B}/seeding_by_Clements_Engelhardt.jpg", LOMIRI16, "Clemens Engelhardt", "CC0-1.0"),
    ("sunset-berasategi", f"{B}/sunset_by_Aitzol_Berasategi.jpg", LOMIRI16, "Aitzol Berasategi", "CC-BY-4.0"),
    ("aqua-barbin", f"{B}/mate/nature/Aqua.jpg", *MATE[:1], "Charles Barbin", GPL),
    ("blinds-poettering", f"{B}/mate/nature/Blinds.jpg", *MATE[:1], "Lennart Poettering, Andrea Cimitan", GPL),
    ("dune-cogoni", f"{B}/mate/nature/Dune.jpg", *MATE[:1], "Marco Cogoni, Hylke Bons", GPL),
    ("freshflower-ansorg", f"{B}/mate/nature/FreshFlower.jpg", *MATE[:1], "Jens Ansorg", GPL),
    ("garden-barbin", f"{B}/mate/nature/Garden.jpg", *MATE[:1], "Charles Barbin", GPL),
    ("greenmeadow-schellhase", f"{B}/mate/nature/GreenMeadow.jpg", *MATE[:1], "Timothy Schellhase, Lapo Calamandrei", GPL),
    ("ladybird-barbin", f"{B}/mate/nature/LadyBird.jpg", *MATE[:1], "Charles Barbin", GPL),
    ("raindrops-blackcombwhistler07", f"{B}/mate/nature/RainDrops.jpg", *MATE[:1], "\"blackcombwhistler07\"", GPL),
    ("storm-nazarov", f"{B}/mate/nature/Storm.jpg", *MATE[:1], "Sergey Nazarov", GPL),
    ("twowings-barbin", f"{B}/mate/nature/TwoWings.jpg", *MATE[:1], "Charles Barbin, Hylke Bons", GPL),
    ("wood-fortintam", f"{B}/mate/nature/Wood.jpg", *MATE[:1], "Jean-François Fortin Tam", GPL),
    ("yellowflower-barbin", f"{B}/mate/nature/YellowFlower.jpg", *MATE[:1], "Charles Barbin", GPL),
    ("butterfly-wimer", "/usr/share/lxqt/wallpapers/Butterfly-Kenneth-Wimer.jpg", *LXQT[:1], "Kenneth Wimer", LXQT[1]),
    ("after-the-rain-stefonarch", "/usr/share/lxqt/wallpapers/after-the-rain.jpg", *LXQT[:1], "stefonarch (LXQt)", LXQT[1]),
    ("fog-stefonarch", "/usr/share/lxqt/wallpapers/fog.jpg", *LXQT[:1], "stefonarch (LXQt)", LXQT[1]),
    ("hills-stefonarch", "/usr/share/lxqt/wallpapers/this-is-not-windows.jpg", *LXQT[:1], "stefonarch (LXQt)", LXQT[1]),
    ("cincinnati-bridge-jensen", "/usr/share/palapeli/collection/cincinnati-bridge.jpg", PALAPELI, "Derek Jensen (Wikimedia Commons)", "Public domain"),
    ("citrus-usda", "/usr/share/palapeli/collection/citrus-fruits.jpg", PALAPELI, "US Department of Agriculture (Wikimedia Commons)", "Public domain"),
    ("honey-bee-severns", "/usr/share/palapeli/collection/european-honey-bee.jpg", PALAPELI, "John Severns (Wikimedia Commons)", "Public domain"),
    ("bythewater-wiklo", f"{W}/BytheWater/contents/images/2560x1600.jpg", PLASMA, "Maciej Wiklo", "LGPL-3.0"),
    ("coldripple-saukonpaa", f"{W}/ColdRipple/contents/images/2560x1600.jpg", PLASMA, "Risto Saukonpää", "LGPL-3.0"),
    ("colorfulcups-popov", f"{W}/ColorfulCups/contents/images/2560x1600.jpg", PLASMA, "Dmitri Popov", "LGPL-3.0"),
    ("darkesthour-saukonpaa", f"{W}/DarkestHour/contents/images/2560x1600.jpg", PLASMA, "Risto Saukonpää", "LGPL-3.0"),
    ("eveningglow-hex", f"{W}/EveningGlow/contents/images/2560x1600.jpg", PLASMA, "Ian Hex", "LGPL-3.0"),
    ("fallenleaf-klapetek", f"{W}/FallenLeaf/contents/images/2560x1600.jpg", PLASMA, "Martin Klapetek", "LGPL-3.0"),
    ("grey-sagi", f"{W}/Grey/contents/images/2560x1600.jpg", PLASMA, "Sigi Sagi", "LGPL-3.0"),
    ("kite-saukonpaa", f"{W}/Kite/contents/images/2560x1600.jpg", PLASMA, "Risto Saukonpää", "LGPL-3.0"),
    ("onestandsout-saukonpaa", f"{W}/OneStandsOut/contents/images/2560x1600.jpg", PLASMA, "Risto Saukonpää", "LGPL-3.0"),
    ("path-saukonpaa", f"{W}/Path/contents/images/2560x1600.jpg", PLASMA, "Risto Saukonpää", "LGPL-3.0"),
    ("summer-1am-saukonpaa", f"{W}/summer_1am/contents/images/2560x1600.jpg", PLASMA, "Risto Saukonpää", "LGPL-3.0"),
]
# Held out for evaluation: never trained on.
EVAL = {"storm-nazarov", "picosdeeuropa-berasategi", "citrus-usda", "eveningglow-hex", "path-saukonpaa",
        "friends-berasategi", "yellowflower-barbin", "bridge-klootwijk", "cincinnati-bridge-jensen", "fallenleaf-klapetek"}

def resize_short(im, short):
    w, h = im.size
    s = short / min(w, h)
    if s >= 1:
        return im
    return im.resize((round(w * s), round(h * s)), Image.LANCZOS, reducing_gap=3.0)

def whole_view(im, short):
    w, h = im.size  # crop the long side to at most 3:2, centred, then shrink
    if max(w, h) > 1.5 * min(w, h):
        if w > h:
            nw = int(1.5 * h); im = im.crop(((w - nw) // 2, 0, (w - nw) // 2 + nw, h))
        else:
            nh = int(1.5 * w); im = im.crop((0, (h - nh) // 2, w, (h - nh) // 2 + nh))
    return resize_short(im, short)

def close_view(im, short, rng):
    w, h = im.size  # a 4:3 window of about half the short side, anywhere, then shrink
    ch = int(min(w, h) * rng.uniform(0.45, 0.6)); cw = min(w, int(ch * 4 / 3))
    if w < h: cw, ch = ch, min(h, int(ch * 4 / 3))
    x = rng.randint(0, w - cw); y = rng.randint(0, h - ch)
    return resize_short(im.crop((x, y, x + cw, y + ch)), short)

def save(im, path):
    im.save(path, quality=85, optimize=True)
    assert os.path.getsize(path) < 1 << 20, path

os.makedirs(os.path.join(OUT, "train"), exist_ok=True)
os.makedirs(os.path.join(OUT, "eval"), exist_ok=True)
for name, src, *_ in PHOTOS:
    im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    rng = random.Random(name)
    if name in EVAL:
        save(whole_view(im, 448), os.path.join(OUT, "eval", f"{name}.jpg"))
    else:
        save(whole_view(im, 512), os.path.join(OUT, "train", f"{name}-whole.jpg"))
        save(close_view(im, 448, rng), os.path.join(OUT, "train", f"{name}-close.jpg"))

with open(os.path.join(HERE, "ATTRIBUTION.md"), "w") as f:
    f.write("# Sample photographs: sources and licences\n\n"
            "The images in `samples/shards/` are downscaled crops of photographs shipped in Debian 12\n"
            "(bookworm) packages. They were made by `samples/make-samples.sh`; the originals are not in this\n"
            "repository. Each training photo gives two samples (`<name>-whole`: the frame cropped to at most\n"
            "3:2 and shrunk to a 512 px short side; `<name>-close`: a 4:3 window of about half the short side,\n"
            "shrunk to 448 px). Evaluation photos (`eval-*.tar`) are held out and never used for training;\n"
            "each gives one sample (`<name>`, whole frame, 448 px short side). All are re-encoded as JPEG\n"
            "(quality 85). Licence identifiers are SPDX; full texts are in each package's\n"
            "`/usr/share/doc/<package>/copyright` (and `/usr/share/common-licenses/`). Changes made: cropped,\n"
            "scaled, re-encoded.\n\n"
            "| sample name | split | original file | Debian package | author | licence |\n"
            "|---|---|---|---|---|---|\n")
    for name, src, pkg, author, lic in PHOTOS:
        f.write(f"| {name} | {'eval' if name in EVAL else 'train'} | `{src}` | {pkg} | {author} | {lic} |\n")
    f.write("\nNotes: `plasma-workspace-wallpapers` photos carry LGPL-3.0 in their own metadata.json (the\n"
            "package's debian/copyright lists the package as GPL-2.0-or-later). The palapeli photos are\n"
            "public-domain images from Wikimedia Commons as recorded in their .desktop files. The LXQt\n"
            "wallpapers are CC-BY-SA-3.0 per /usr/share/lxqt/wallpapers/License.\n")
print(f"{len(PHOTOS)} photos, {len(EVAL)} held out for evaluation")
