#!/usr/bin/env python
"""Render the demo corpus's pictograms (xmodal/data/demo/pictograms/) from the held-out npm sets.

The demo must show text -> picture search on a drawing style the bundled model never trained
on, so every picture comes from a held-out set (Bootstrap Icons and Fluent Emoji Flat; a few
Heroicons are the image queries). The names were chosen up front as everyday things, not picked
by how well the model does on them. Needs the npm cache of scripts/train_pictogram.sh and
``resvg-py`` (the ``train`` extra); the PNGs are committed, so users never run this.

    python scripts/build_demo_pictograms.py --npm CACHE/npm/x
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_pictogram_data import find_package, package_meta, render_svg

CORPUS = {
    "bi": [
        "umbrella",
        "house",
        "camera",
        "bicycle",
        "heart",
        "star",
        "cloud-rain",
        "trash",
        "envelope",
        "telephone",
        "music-note",
        "airplane",
        "bell",
        "book",
        "calendar",
        "car-front",
        "clock",
        "gear",
        "key",
        "lock",
        "lightbulb",
        "map",
        "printer",
        "scissors",
        "cart",
        "sun",
        "moon",
        "tree",
        "truck",
        "wifi",
        "cup-hot",
        "globe",
        "flag",
        "trophy",
        "gift",
        "headphones",
        "battery",
        "basket",
        "bug",
        "fire",
    ],
    "fluent-emoji-flat": [
        "umbrella-with-rain-drops",
        "bicycle",
        "red-apple",
        "pizza",
        "cat-face",
        "dog-face",
        "rocket",
        "snowman",
        "sun",
        "books",
        "hot-beverage",
        "guitar",
    ],
}
QUERIES = {"heroicons": ["home", "camera", "envelope", "bell", "trash"]}
SIZE = 96


def icon_body(icons: dict, name: str) -> tuple[str, tuple[float, float, float, float]]:
    data = icons["icons"].get(name)
    if data is None:  # an alias: same body, maybe transformed; the demo only uses plain names
        data = icons["icons"][icons["aliases"][name]["parent"]]
    w = float(data.get("width", icons.get("width", 16)))
    h = float(data.get("height", icons.get("height", 16)))
    return data["body"], (float(data.get("left", 0)), float(data.get("top", 0)), w, h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npm", type=Path, required=True, help="folder of unpacked npm packages")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "xmodal/data/demo/pictograms")
    args = ap.parse_args(argv)
    sources = []
    for group, sets in (("corpus", CORPUS), ("queries", QUERIES)):
        (args.out / group).mkdir(parents=True, exist_ok=True)
        for set_name, names in sets.items():
            pkg = find_package(args.npm, f"iconify-json-{set_name}")
            icons = json.loads((pkg / "icons.json").read_text(encoding="utf-8"))
            for name in names:
                body, box = icon_body(icons, name)
                rgba = render_svg(body, box, SIZE).copy()
                # a dark blue line colour on white: what a screenshot or a printed icon looks like
                if set_name != "fluent-emoji-flat":
                    rgba[..., :3] = np.array([30, 50, 110], dtype=np.uint8)
                img = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
                img.paste(Image.fromarray(rgba, "RGBA"), mask=Image.fromarray(rgba[..., 3]))
                img.save(args.out / group / f"{set_name}-{name}.png", optimize=True)
            sources.append({**package_meta(pkg), "set": set_name, "use": group, "names": names})
    (args.out / "SOURCES.json").write_text(json.dumps(sources, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {sum(len(n) for s in (CORPUS, QUERIES) for n in s.values())} pictures to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
