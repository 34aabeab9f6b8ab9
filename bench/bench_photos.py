"""Photos, side by side in one run:

- ``t2i``: text -> photo on a 10-way labelled set of real photos: Tux Paint's photo stamps
  (Debian ``tuxpaint-stamps-default`` 2022.06.04-1, GPL-2; cut-outs flattened on white, the
  ``cartoon`` folders left out), 10 pictures per class drawn with seed 0 from ten class folders;
  each class word ("mammal", "fish", ...: not ImageNet class names) is a query with 10 relevant
  pictures, so Recall@10 is also the share of the first ten that are right. Systems: random,
  OCR only, the pictogram tower, the photo tower (lite0/1/2), and the default stack (both towers,
  each picture routed by ``xmodal.media.image.is_photo``), each a real collection.
- ``duplicates``: the same photos with generated edits (half size, JPEG quality 30, 5 % cut
  from every side, brighter and less saturated), pairwise precision and recall of
  ``Collection.duplicates`` over the pictures the photo tower keeps looks of, at thresholds.
- ``speed``: ``xmodal index`` throughput with models warm, 128-px icons and 1024-px photos,
  the bare towers' throughput beside it.

The package is fetched once with ``apt-get download`` into ~/.cache/xmodal/bench (not shipped:
evaluation data only).

Usage: .venv/bin/python bench/bench_photos.py [--task t2i,duplicates,speed] [--variants lite0,lite1,lite2]"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CACHE = Path.home() / ".cache" / "xmodal" / "bench"
PACKAGE = "tuxpaint-stamps-default"
CLASSES = {
    "mammal": "animals/mammals",
    "bird": "animals/birds",
    "fish": "animals/fish",
    "fruit": "food/fruit",
    "vegetable": "food/vegetables",
    "flower": "plants/flowers",
    "vehicle": "vehicles",
    "clothing": "clothes",
    "tool": "household/tools",
    "planet": "space/planets",
}
PER_CLASS = 10


def stamps() -> Path:
    root = CACHE / PACKAGE
    done = root / "usr/share/tuxpaint/stamps"
    if done.is_dir():
        return done
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return done


def labelled_set(out: Path) -> dict[str, str]:
    """10 pictures per class copied into ``out`` (flattened on white by xmodal's decoder);
    file name -> class."""
    base = stamps()
    rng = random.Random(0)
    labels = {}
    out.mkdir(parents=True, exist_ok=True)
    for label, folder in CLASSES.items():
        files = sorted(p for p in (base / folder).rglob("*.png") if "cartoon" not in str(p))
        for src in rng.sample(files, PER_CLASS):
            name = f"{label}-{src.stem}.png"
            shutil.copy(src, out / name)
            labels[name] = label
    return labels


def index(corpus: Path, model: object, where: Path) -> object:
    from xmodal.collection import Collection

    coll = Collection.open(where, create=True, model=model)  # type: ignore[arg-type]
    coll.add([corpus])
    return coll


def t2i(variants: list[str]) -> None:
    from xmodal.config import ModelConfig

    work = Path(tempfile.mkdtemp(prefix="xmodal-photos-"))
    labels = labelled_set(work / "corpus")
    systems = {
        "OCR only": ModelConfig(image=None, photo=None),
        "pictogram tower (+OCR)": ModelConfig(photo=None),
        **{f"photo tower {v} (+OCR)": ModelConfig(image=None, photo=f"photo:{v}") for v in variants},
        "default: both towers, routed (+OCR)": ModelConfig(),
    }
    print(f"{len(labels)} pictures, {len(CLASSES)} classes x {PER_CLASS}; random R@10 = R@1 = {1 / len(CLASSES):.3f}")
    print("| system | R@1 | R@10 | MRR | index s |")
    print("|---|---|---|---|---|")
    for name, model in systems.items():
        started = time.perf_counter()
        coll = index(work / "corpus", model, work / f"c-{len(name)}-{abs(hash(name))}")
        seconds = time.perf_counter() - started
        r1 = r10 = mrr = 0.0
        for label in CLASSES:
            hits = coll.search(label, k=len(labels))  # type: ignore[attr-defined]
            right = [labels.get(Path(h.uri).name) == label for h in hits]
            r1 += right[0] if right else 0
            r10 += sum(right[:10]) / PER_CLASS
            mrr += next((1 / (i + 1) for i, ok in enumerate(right) if ok), 0.0)
        n = len(CLASSES)
        if name.startswith("default"):
            name += f" [{coll.catalog.look_count()} of {len(labels)} seen by the photo tower]"  # type: ignore[attr-defined]
        print(f"| {name} | {r1 / n:.3f} | {r10 / n:.3f} | {mrr / n:.3f} | {seconds:.1f} |")
        coll.close()  # type: ignore[attr-defined]
    shutil.rmtree(work, ignore_errors=True)


def edits(src: Path, out: Path) -> list[Path]:
    from PIL import Image, ImageEnhance

    from xmodal.media.image import load_image

    img = load_image(src)
    w, h = img.size
    made = []
    variants = {
        "half": img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS),
        "jpeg30": img,
        "crop": img.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
        "colour": ImageEnhance.Color(ImageEnhance.Brightness(img).enhance(1.15)).enhance(0.85),
    }
    for tag, edited in variants.items():
        path = out / f"{src.stem}~{tag}.jpg"
        edited.save(path, quality=30 if tag == "jpeg30" else 90)
        made.append(path)
    return made


def duplicates() -> None:
    from xmodal.collection import Collection

    work = Path(tempfile.mkdtemp(prefix="xmodal-dups-"))
    corpus = work / "corpus"
    labelled_set(corpus)
    for src in sorted(corpus.glob("*.png")):
        edits(src, corpus)
    with Collection.open(work / "c", create=True) as coll:
        coll.add([corpus])
        ids, _, _ = coll.catalog.looks()
        items = coll.catalog.items_by_id(ids)
        base = {i: Path(items[i].uri).name.split("~")[0].removesuffix(".png") for i in ids}
        truth = {(a, b) for a in ids for b in ids if a < b and base[a] == base[b]}
        print(f"{len(ids)} pictures with looks (photos), {len(set(base.values()))} originals, {len(truth)} true pairs")
        print("| threshold | precision | recall | groups |")
        print("|---|---|---|---|")
        for threshold in (0.65, 0.70, 0.72, 0.75, 0.78, 0.80, 0.85):
            groups = coll.duplicates(threshold)
            found = {(a, b) for g in groups for a in g.items for b in g.items if a < b}
            hit = len(found & truth)
            p = hit / len(found) if found else 1.0
            r = hit / len(truth) if truth else 1.0
            print(f"| {threshold:.2f} | {p:.3f} | {r:.3f} | {len(groups)} |")
    shutil.rmtree(work, ignore_errors=True)


def speed() -> None:
    from PIL import Image

    from xmodal.collection import Collection
    from xmodal.encoders.registry import default_registry
    from xmodal.media.image import load_image

    work = Path(tempfile.mkdtemp(prefix="xmodal-speed-"))
    labelled = labelled_set(work / "src")
    icons, photos = work / "icons", work / "photos"
    icons.mkdir()
    photos.mkdir()
    demo = sorted((Path(__file__).resolve().parents[1] / "xmodal/data/demo/pictograms/corpus").glob("*.png"))
    for n in range(300):  # distinct files: a tinted background, so no content hash repeats
        img = load_image(demo[n % len(demo)]).resize((128, 128))
        bg = Image.new("RGB", img.size, (255 - n % 50, 255, 255 - n // 50))
        Image.blend(bg, img, 0.97).save(icons / f"icon{n:03d}.png")
    for n, name in enumerate(sorted(labelled)):
        img = load_image(work / "src" / name)
        scale = 1024 / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        img.save(photos / f"photo{n:03d}.jpg", quality=90)
    reg = default_registry()
    picto, photo = reg.load("pictogram"), reg.load("photo")
    print("| pictures | xmodal index /s | pictogram tower /s | photo tower /s | OCR /s |")
    print("|---|---|---|---|---|")
    for label, folder in (("128-px icons", icons), ("1024-px photos", photos)):
        files = sorted(folder.iterdir())
        with Collection.open(work / f"warm-{label[:3]}", create=True) as coll:  # models loaded, warm
            coll.add(files[:3])
        decoded = [load_image(f) for f in files[:60]]
        rates = []
        for tower in (picto, photo):
            tower.encode_pictures(decoded[:4])
            t = time.perf_counter()
            tower.encode_pictures(decoded)
            rates.append(len(decoded) / (time.perf_counter() - t))
        from xmodal.extract.base import load_ocr

        ocr = load_ocr("rapidocr")
        t = time.perf_counter()
        for img in decoded[:30]:
            ocr.read(img)
        ocr_rate = 30 / (time.perf_counter() - t)
        with Collection.open(work / f"run-{label[:3]}", create=True) as coll:
            t = time.perf_counter()
            report = coll.add(files)
            rate = report.added / (time.perf_counter() - t)
        print(f"| {label} ({len(files)}) | {rate:.1f} | {rates[0]:.1f} | {rates[1]:.1f} | {ocr_rate:.1f} |")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="t2i,duplicates,speed")
    ap.add_argument("--variants", default="lite0,lite1,lite2")
    args = ap.parse_args()
    tasks = args.task.split(",")
    if "t2i" in tasks:
        t2i(args.variants.split(","))
    if "duplicates" in tasks:
        duplicates()
    if "speed" in tasks:
        speed()


if __name__ == "__main__":
    main()
