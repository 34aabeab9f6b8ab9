#!/usr/bin/env python
"""Build the pictogram training and held-out sets from npm packages (outside git).

Reads extracted npm tarballs (``npm pack NAME`` then ``tar xzf``) under ``--npm DIR`` and
writes, under ``--out DIR``:

* ``train.npz`` / ``train.json``: RGBA images (N, S, S, 4) uint8 and, per image,
  ``{"set", "name", "captions": [...]}``. Only the packages listed in TRAIN_SETS and the emoji
  packages are read.
* ``heldout-<set>.npz`` / ``.json``: the same for each evaluation-only set, plus ``"group"``:
  the icon's name with style/skin-tone variants removed; the query of that group is its words.
* ``SOURCES.json``: every package read, with version and licence.

Monochrome icons are rendered black on transparent (the colour is an augmentation at training
time); SVGs are rasterised with resvg (``resvg-py``). Deterministic: same packages, same output.

    python scripts/build_pictogram_data.py --npm /work/cache/npm/x --out /work/cache/picto
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ICON_TRAIN_SETS = (
    "mdi", "tabler", "lucide", "carbon", "material-symbols", "fluent", "ic", "ri", "mingcute",
    "noto", "twemoji",
)  # fmt: skip
EMOJI_IMAGE_SETS = ("google", "twitter")
HELDOUT_SETS = ("fluent-emoji-flat", "bi", "heroicons")
EMOJI_ICON_SETS = {"noto", "twemoji", "fluent-emoji-flat"}

STYLE_TOKENS = {
    "fill", "filled", "line", "outline", "outlined", "regular", "rounded", "round", "sharp",
    "twotone", "two", "tone", "solid", "baseline", "duotone", "alt",
}  # fmt: skip
SIZE_TOKEN = re.compile(r"^(10|12|16|20|24|28|32|48)$")
SKIN_SUFFIXES = ("-medium-light", "-medium-dark", "-light", "-medium", "-dark")


def find_package(npm: Path, name: str) -> Path:
    """``name`` is the npm name without scope, e.g. ``iconify-json-mdi`` or ``emojilib``."""
    hits = sorted(p for p in npm.iterdir() if re.fullmatch(re.escape(name) + r"-\d[\w.\-]*", p.name))
    if not hits:
        sys.exit(f"package {name} not found under {npm}; run npm pack first")
    return hits[-1] / "package"


def package_meta(pkg: Path) -> dict[str, str]:
    meta = json.loads((pkg / "package.json").read_text(encoding="utf-8"))
    out = {"package": meta["name"], "version": meta["version"], "licence": str(meta.get("license", ""))}
    info = pkg / "info.json"
    if info.is_file():
        lic = json.loads(info.read_text(encoding="utf-8")).get("license", {})
        out["licence"] = lic.get("spdx") or lic.get("title") or out["licence"]
        out["author"] = json.loads(info.read_text(encoding="utf-8")).get("author", {}).get("name", "")
    return out


def words(slug: str) -> str:
    return " ".join(slug.replace("_", " ").replace("-", " ").split())


def clean_icon_name(name: str, set_name: str) -> str:
    """``home-outline-rounded`` -> ``home``; ``access-time-20-filled`` -> ``access time``."""
    toks = name.split("-")
    if set_name == "ic" and toks and toks[0] in STYLE_TOKENS:
        toks = toks[1:]
    while len(toks) > 1 and (toks[-1] in STYLE_TOKENS or (set_name == "fluent" and SIZE_TOKEN.match(toks[-1]))):
        toks = toks[:-1]
    return " ".join(toks)


def render_svg(body: str, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    import resvg_py

    left, top, w, h = box
    scale = max(w, h)
    # centre non-square icons in a square canvas
    vx, vy = left - (scale - w) / 2, top - (scale - h) / 2
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{size}" height="{size}" viewBox="{vx} {vy} {scale} {scale}" color="#000000">{body}</svg>'
    )
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size)
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA"), dtype=np.uint8)


def load_png(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("RGBA").resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8)


class EmojiText:
    """Names and tags for emoji from emojibase-data (CLDR) and emojilib."""

    def __init__(self, npm: Path) -> None:
        base = json.loads((find_package(npm, "emojibase-data") / "en" / "data.json").read_text("utf-8"))
        lib = json.loads((find_package(npm, "emojilib") / "dist" / "emoji-en-US.json").read_text("utf-8"))
        self.by_hex: dict[str, dict] = {}
        self.by_slug: dict[str, dict] = {}
        for e in base:
            # a skin-tone variant is also its base emoji: "waving hand: dark skin tone" is a waving hand
            skins = [{**s, "tags": e.get("tags", []), "base": e["label"]} for s in e.get("skins", [])]
            for x in [e, *skins]:
                rec = {"label": x["label"], "tags": x.get("tags", []), "keywords": lib.get(x["emoji"], [])}
                if "base" in x:
                    rec["base"] = x["base"]
                self.by_hex[norm_hex(x["hexcode"])] = rec
                self.by_slug[slugify(x["label"])] = rec

    def captions(self, rec: dict | None, fallback: str) -> list[str]:
        caps = [fallback]
        if rec:
            caps = [rec["label"].replace(":", ""), *([rec["base"]] if "base" in rec else []), fallback]
            kw = [words(k) for k in rec["keywords"]]
            if kw:
                caps.append(kw[0])
                if len(kw) > 1:
                    caps.append(" ".join(kw[1:7]))
            if rec["tags"]:
                caps.append(" ".join(rec["tags"][:6]))
        return dedupe(caps)


def norm_hex(h: str) -> str:
    return "-".join(p for p in h.upper().split("-") if p != "FE0F")


def slugify(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def dedupe(caps: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for c in caps:
        c = " ".join(c.split()).strip()
        if c and c.lower() not in seen:
            seen.add(c.lower())
            out.append(c)
    return out


def iconify_items(pkg: Path, set_name: str, size: int, emoji: EmojiText) -> tuple[list[np.ndarray], list[dict]]:
    data = json.loads((pkg / "icons.json").read_text(encoding="utf-8"))
    dw, dh = data.get("width", 16), data.get("height", 16)
    aliases: dict[str, list[str]] = {}
    for alias, spec in data.get("aliases", {}).items():
        if set(spec) == {"parent"}:
            aliases.setdefault(spec["parent"], []).append(alias)
    names = sorted(n for n, v in data["icons"].items() if not v.get("hidden"))
    if set_name == "fluent":  # one size per icon name and style: keep the 24px (or the largest)
        names = _one_size_per_fluent_icon(names)
    images, items = [], []
    for name in names:
        icon = data["icons"][name]
        box = (icon.get("left", 0), icon.get("top", 0), icon.get("width", dw), icon.get("height", dh))
        try:
            images.append(render_svg(icon["body"], box, size))
        except ValueError as exc:
            print(f"  skip {set_name}:{name}: {exc}", file=sys.stderr)
            continue
        if set_name in EMOJI_ICON_SETS:
            caps = emoji.captions(emoji.by_slug.get(name), words(name))
        else:
            caps = dedupe([clean_icon_name(name, set_name), *(words(a) for a in aliases.get(name, []))])
        items.append({"set": set_name, "name": name, "captions": caps[:5]})
    return images, items


def _one_size_per_fluent_icon(names: list[str]) -> list[str]:
    best: dict[str, tuple[int, str]] = {}
    for n in names:
        toks = n.split("-")
        size = next((int(t) for t in toks if SIZE_TOKEN.match(t)), 0)
        key = "-".join(t for t in toks if not SIZE_TOKEN.match(t))
        pref = -abs(size - 24)
        if key not in best or pref > best[key][0]:
            best[key] = (pref, n)
    return sorted(n for _, n in best.values())


def emoji_image_items(npm: Path, vendor: str, size: int, emoji: EmojiText) -> tuple[list[np.ndarray], list[dict]]:
    pkg = find_package(npm, f"emoji-datasource-{vendor}")
    table = json.loads((pkg / "emoji.json").read_text(encoding="utf-8"))
    images, items = [], []
    for e in sorted(table, key=lambda x: x["unified"]):
        # the emoji itself, then its skin-tone variants (drawn by the same vendor)
        for v in [e, *(e.get("skin_variations") or {}).values()]:
            path = pkg / "img" / vendor / "64" / v["image"]
            if not v.get(f"has_img_{vendor}") or not path.is_file():
                continue
            images.append(load_png(path, size))
            rec = emoji.by_hex.get(norm_hex(v["unified"]))
            caps = emoji.captions(rec, (e.get("name") or words(e["short_name"])).lower())
            caps = dedupe([*caps, *(words(s) for s in e.get("short_names", []))])
            items.append({"set": f"emoji-{vendor}", "name": v["unified"].lower(), "captions": caps[:5]})
    return images, items


def heldout_group(name: str, names: set[str], set_name: str) -> str:
    suffixes = {
        "fluent-emoji-flat": SKIN_SUFFIXES,
        "bi": ("-fill",),
        "heroicons": ("-16-solid", "-20-solid", "-solid"),
    }[set_name]
    for suf in suffixes:
        if name.endswith(suf) and name[: -len(suf)] in names:
            return name[: -len(suf)]
    return name


def save(out: Path, stem: str, images: list[np.ndarray], items: list[dict]) -> None:
    np.savez_compressed(out / f"{stem}.npz", images=np.stack(images))
    (out / f"{stem}.json").write_text(json.dumps(items, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{stem}: {len(items)} images", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npm", type=Path, required=True, help="folder of extracted npm packages")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=48, help="rendered image side in pixels")
    ap.add_argument("--only", choices=["train", "heldout", "all"], default="all")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    emoji = EmojiText(args.npm)
    sources = [package_meta(find_package(args.npm, n)) for n in ("emojibase-data", "emojilib")]
    if args.only in ("train", "all"):
        images: list[np.ndarray] = []
        items: list[dict] = []
        for vendor in EMOJI_IMAGE_SETS:
            im, it = emoji_image_items(args.npm, vendor, args.size, emoji)
            images += im
            items += it
            sources.append(package_meta(find_package(args.npm, f"emoji-datasource-{vendor}")))
            print(f"  emoji-{vendor}: {len(it)}", file=sys.stderr)
        for s in ICON_TRAIN_SETS:
            pkg = find_package(args.npm, f"iconify-json-{s}")
            im, it = iconify_items(pkg, s, args.size, emoji)
            images += im
            items += it
            sources.append(package_meta(pkg))
            print(f"  {s}: {len(it)}", file=sys.stderr)
        save(args.out, "train", images, items)
    if args.only in ("heldout", "all"):
        for s in HELDOUT_SETS:
            pkg = find_package(args.npm, f"iconify-json-{s}")
            im, it = iconify_items(pkg, s, args.size, emoji)
            names = {x["name"] for x in it}
            for x in it:
                x["group"] = heldout_group(x["name"], names, s)
                x["query"] = words(x["group"])
                x.pop("captions")
            save(args.out, f"heldout-{s}", im, it)
            sources.append({**package_meta(pkg), "use": "held-out evaluation only"})
    (args.out / f"SOURCES-{args.only}.json").write_text(json.dumps(sources, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
