"""The photo tower: EfficientNet-Lite written here and loaded strictly, ConSE in the MiniLM space,
the picture router, looks and near-duplicates (Python, CLI, API), bad pictures."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from xmodal.cli.main import main as cli
from xmodal.collection import Collection
from xmodal.config import ModelConfig
from xmodal.encoders.efficientnet_lite import EfficientNetLite, architecture, load_efficientnet_lite
from xmodal.encoders.photo import PhotoEncoder
from xmodal.errors import InvalidArgumentError, ModelError
from xmodal.media.image import flatness, is_photo, load_image, picture_worlds
from xmodal.search import Query
from xmodal.types import VectorKind

TINY = [(8, 8, 8, 3, 1), (8, 16, 12, 3, 2), (12, 24, 12, 5, 1), (12, 24, 16, 3, 2)]


def tiny_weights(path: Path, classes: int = 1000, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = EfficientNetLite(TINY, stem=8, head=16, classes=classes)
    for m in net.modules():  # non-trivial batch-norm statistics, so folding them is tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), path)
    return path


def photo_like(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A made-up scene: a colour gradient with a dozen blurred shapes and sensor noise (not
    flat, so the router takes it for a photo)."""
    from PIL import ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None]
    img = Image.fromarray((c0 + (c1 - c0) * (t - t.min()) / (np.ptp(t) + 1e-9)).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0, s = rng.uniform(-50, w), rng.uniform(-50, h), rng.uniform(30, 160)
        colour = tuple(int(v) for v in rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            d.ellipse((x0, y0, x0 + s, y0 + s * rng.uniform(0.5, 1.5)), fill=colour)
        else:
            d.polygon([(x0 + rng.uniform(0, s), y0 + rng.uniform(0, s)) for _ in range(5)], fill=colour)
    a = np.asarray(img.filter(ImageFilter.GaussianBlur(1.5)), dtype=np.float32) + rng.normal(0, 14, (h, w, 3))
    return Image.fromarray(a.clip(0, 255).astype(np.uint8), "RGB")


def drawing() -> Image.Image:
    img = Image.new("RGB", (128, 128), "white")
    from PIL import ImageDraw

    d = ImageDraw.Draw(img)
    d.ellipse((20, 20, 108, 108), fill=(220, 40, 40), outline="black", width=4)
    d.rectangle((50, 50, 78, 78), fill=(40, 40, 200))
    return img


def test_network_is_read_off_the_weights_and_folding_keeps_its_outputs(tmp_path: Path) -> None:
    path = tiny_weights(tmp_path / "w.pth")
    state = torch.load(path, weights_only=True)
    blocks, stem, head, classes = architecture(state)
    assert blocks == TINY and (stem, head, classes) == (8, 16, 1000)
    plain = load_efficientnet_lite(path)
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        before = plain(x)
        fused = load_efficientnet_lite(path).fuse()
        after = fused(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(before, after, atol=1e-4)


def test_weights_that_do_not_fit_are_an_error(tmp_path: Path) -> None:
    path = tiny_weights(tmp_path / "w.pth")
    state = torch.load(path, weights_only=True)
    missing = {k: v for k, v in state.items() if not k.startswith("_conv_head")}
    torch.save(missing, tmp_path / "missing.pth")
    extra = {**state, "_blocks.0._se_reduce.weight": torch.zeros(2, 8, 1, 1)}
    torch.save(extra, tmp_path / "extra.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    for name in ("missing.pth", "extra.pth", "junk.pth"):
        with pytest.raises(ModelError):
            load_efficientnet_lite(tmp_path / name)
    with pytest.raises(ModelError, match="unknown photo model"):
        PhotoEncoder("lite9")
    with pytest.raises(ModelError, match="not found"):
        PhotoEncoder(f"lite0={tmp_path / 'absent.pth'}")
    torch.save(EfficientNetLite(TINY, 8, 16, 10).state_dict(), tmp_path / "ten.pth")
    with pytest.raises(ModelError, match="class texts"):
        PhotoEncoder(f"lite0={tmp_path / 'ten.pth'}")


def test_conse_vectors_are_the_top_classes_text_vectors_weighted(tmp_path: Path) -> None:
    enc = PhotoEncoder(f"lite0={tiny_weights(tmp_path / 'w.pth')}")
    assert enc.dim == 384 and enc.space == "all-MiniLM-L6-v2" and "file:w.pth" in enc.version
    images = [photo_like(1), photo_like(2).convert("L").convert("RGB")]
    vectors, looks = enc.encode_pictures(images)
    assert vectors.shape == (2, 384) and looks is not None and looks.shape == (2, 16 + 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    probs, _ = enc._forward(images)
    top = np.argsort(-probs[0])[:10]
    expected = (probs[0, top, None] / probs[0, top].sum() * enc._class_vectors[top]).sum(axis=0)
    assert np.allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-5)
    assert enc.encode_images(images).shape == (2, 384)
    assert not enc.has_content(Image.new("RGB", (50, 50), (10, 200, 30)))
    assert len(enc.top_classes(images[0], 3)) == 3


def test_packaged_lite0_loads_and_places_classes_by_their_hypernyms() -> None:
    enc = PhotoEncoder()
    assert enc.variant == "lite0" and enc.resolution == 224
    text = __import__("xmodal.encoders.registry", fromlist=["default_registry"]).default_registry().load("minilm")
    dog, vehicle = text.encode_text(["dog", "vehicle"])
    names = enc.class_names
    retriever, pickup = names.index("Golden Retriever"), names.index("pickup truck")
    sims = enc._class_vectors @ np.stack([dog, vehicle]).T
    assert sims[retriever, 0] > np.median(sims[:, 0]) + 0.15  # "dog" reaches a breed
    assert sims[pickup, 1] > np.median(sims[:, 1]) + 0.15  # "vehicle" reaches trucks


def test_router_tells_photos_from_drawings_and_pages() -> None:
    assert is_photo(photo_like(3)) and is_photo(photo_like(4).convert("L").convert("RGB"))
    assert not is_photo(drawing())
    page = Image.new("RGB", (600, 800), (250, 249, 245))
    from PIL import ImageDraw

    d = ImageDraw.Draw(page)
    for y in range(40, 760, 24):
        d.text((40, y), "Quarterly revenue grew by eleven percent in the north region", fill=(20, 20, 20))
    assert not is_photo(page)
    assert 0.0 <= flatness(Image.new("RGB", (1, 1))) <= 1.0
    cut_out = Image.new("RGB", (400, 400), "white")  # a product shot on white: of both worlds
    cut_out.paste(photo_like(5, (200, 200)), (100, 100))
    assert picture_worlds(cut_out) == ("drawing", "photo") and not is_photo(cut_out)
    assert picture_worlds(photo_like(3)) == ("photo",) and picture_worlds(drawing()) == ("drawing",)


def _photo_collection(tmp_path: Path, corpus: Path) -> Collection:
    model = ModelConfig(ocr=None, asr=None)  # default towers: pictogram for drawings, lite0 for photos
    coll = Collection.open(tmp_path / "c", create=True, model=model)
    coll.add([corpus])
    return coll


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    # real photos with harsher edits are measured in bench/bench_photos.py; made-up scenes all
    # look alike to an ImageNet network (cosines ~0.8), so the edits here are mild
    a = photo_like(10, (480, 360))
    a.save(corpus / "a.png")
    a.resize((432, 324)).save(corpus / "a-small.jpg", quality=90)
    a.crop((12, 9, 468, 351)).save(corpus / "a-cropped.jpg", quality=90)
    photo_like(11, (480, 360)).save(corpus / "b.png")
    drawing().save(corpus / "icon.png")
    cut_out = Image.new("RGB", (400, 400), "white")
    cut_out.paste(photo_like(5, (200, 200)), (100, 100))
    cut_out.save(corpus / "cut-out.png")
    return corpus


def test_two_picture_worlds_looks_and_near_duplicates(tmp_path: Path) -> None:
    with _photo_collection(tmp_path, _corpus(tmp_path)) as coll:
        kinds = {}
        for item in coll.catalog.iter_items():
            vids = coll.catalog.filtered_vids(None, {"name": [item.metadata["name"]]})
            kinds[item.metadata["name"]] = {r.kind for r in coll.catalog.vector_rows(vids.tolist()).values()}
        assert kinds["icon.png"] == {VectorKind.IMAGE} and kinds["a.png"] == {VectorKind.PHOTO}
        assert kinds["cut-out.png"] == {VectorKind.IMAGE, VectorKind.PHOTO}  # both worlds: both towers
        assert coll.catalog.look_count() == coll.stats()["looks"] == 5  # photos keep looks; the icon does not
        groups = coll.duplicates()
        names = [sorted(Path(coll.get(i).uri).name for i in g.items) for g in groups]  # type: ignore[union-attr]
        assert names == [["a-cropped.jpg", "a-small.jpg", "a.png"]]
        assert groups[0].similarity[0] == pytest.approx(1.0, abs=1e-3)
        assert all(0.8 <= s <= 1.0 for s in groups[0].similarity)
        assert coll.duplicates(0.9999) == []
        a_id = next(i for i in groups[0].items if coll.get(i).uri.endswith("a.png"))  # type: ignore[union-attr]
        assert coll.duplicates(allow_items={a_id}) == []  # a group needs two visible pictures
        for bad in (0, 1.5, float("nan"), "0.9", True):
            with pytest.raises(InvalidArgumentError):
                coll.duplicates(bad)  # type: ignore[arg-type]
        # a query photo finds its copies first (shared-space look and features mixed)
        hits = coll.search(Query.image(tmp_path / "corpus" / "a-small.jpg"), k=5)
        assert {Path(h.uri).name for h in hits[:3]} == {"a.png", "a-small.jpg", "a-cropped.jpg"}
        assert coll.search("a drawing", k=5)  # text reaches both worlds without error
        # a reused content hash keeps the look
        (tmp_path / "corpus" / "a-again.png").write_bytes((tmp_path / "corpus" / "a.png").read_bytes())
        coll.add([tmp_path / "corpus"])
        assert coll.catalog.look_count() == 6
        deleted = coll.delete([i for i in groups[0].items])
        assert deleted == 3 and coll.catalog.look_count() == 3


def test_cli_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _photo_collection(tmp_path, _corpus(tmp_path)):
        pass
    assert cli(["duplicates", "-c", str(tmp_path / "c"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["groups"]) == 1 and len(out["groups"][0]["items"]) == 3
    assert all(e["uri"].startswith(str(tmp_path)) for e in out["groups"][0]["items"])
    assert cli(["duplicates", "-c", str(tmp_path / "c")]) == 0
    assert "group 1 (3 pictures)" in capsys.readouterr().out
    assert cli(["duplicates", "-c", str(tmp_path / "c"), "--threshold", "7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "threshold" in err and "Traceback" not in err


def test_manifest_from_before_the_photo_tower_keeps_none() -> None:
    old = ModelConfig().to_dict()
    del old["photo"]
    assert ModelConfig.from_dict(old).photo is None
    assert ModelConfig.from_dict(ModelConfig().to_dict()).photo == "photo"


def test_a_photo_of_text_is_seen_and_read(tmp_path: Path) -> None:
    from PIL import ImageDraw, ImageFont

    sign = photo_like(30, (640, 480))
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", 64)
    except OSError:
        font = ImageFont.load_default(64)
    ImageDraw.Draw(sign).rectangle((60, 170, 580, 290), fill=(250, 250, 250))
    ImageDraw.Draw(sign).text((80, 190), "HARBOUR", fill=(10, 10, 10), font=font)
    (tmp_path / "in").mkdir()
    sign.save(tmp_path / "in" / "sign.jpg", quality=90)
    assert is_photo(sign)
    with Collection.open(tmp_path / "c", create=True, model=ModelConfig(asr=None)) as coll:
        coll.add([tmp_path / "in"])
        hit = coll.search("harbour", k=1, mode="keyword")[0]
        assert hit.kind is VectorKind.OCR and coll.catalog.look_count() == 1


def test_bad_pictures_through_the_photo_tower(tmp_path: Path) -> None:
    corpus = tmp_path / "bad"
    corpus.mkdir()
    photo = photo_like(20, (300, 200))
    photo.convert("L").save(corpus / "grey.png")
    photo.convert("CMYK").save(corpus / "cmyk.jpg")
    Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257).save(corpus / "sixteen.png")
    pal = photo.convert("P", palette=Image.Palette.ADAPTIVE)
    pal.info["transparency"] = 0
    pal.save(corpus / "palette.png", transparency=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    photo.save(corpus / "rotated.jpg", exif=exif)
    frames = [photo_like(s, (120, 80)) for s in (21, 22)]
    frames[0].save(corpus / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(corpus / "dot.png")
    buf = io.BytesIO()
    photo.save(buf, "JPEG")
    (corpus / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with Collection.open(tmp_path / "c", create=True, model=ModelConfig(ocr=None, asr=None)) as coll:
        report = coll.add([corpus])
        assert report.added == 7 and report.failed == 1
        assert "truncated.jpg" in report.failures[0][0]
        rotated = next(i for i in coll.catalog.iter_items() if i.uri.endswith("rotated.jpg"))
        assert (rotated.metadata["width"], rotated.metadata["height"]) == (200, 300)
    assert load_image(corpus / "sixteen.png").mode == "RGB"


def test_api_duplicates_only_among_visible_items(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from xmodal.access.store import AccessStore
    from xmodal.api import create_app
    from xmodal.api.settings import ServeSettings

    corpus = _corpus(tmp_path)
    coll = Collection.open(tmp_path / "c", create=True, model=ModelConfig(ocr=None, asr=None))
    store = AccessStore(coll.path)
    keys = {who: store.create_key(who, admin=who == "admin")[0] for who in ("admin", "alice", "bob")}
    store.close()
    app = create_app(ServeSettings(collection=coll.path, index_root=tmp_path), collection=coll)
    with TestClient(app, raise_server_exceptions=False) as client:

        def upload(name: str, access: str) -> None:
            files = [("files", (name, (corpus / name).read_bytes(), "application/octet-stream"))]
            r = client.post("/items", headers={"X-API-Key": keys["admin"]}, files=files, data={"access": access})
            assert r.status_code == 201, r.text

        for name in ("a.png", "a-small.jpg"):
            upload(name, "user:alice")
        upload("a-cropped.jpg", "public")
        upload("b.png", "public")

        def groups(who: str, query: str = "") -> Any:
            return client.get(f"/duplicates{query}", headers={"X-API-Key": keys[who]})

        seen = groups("alice").json()
        assert [len(g["items"]) for g in seen["groups"]] == [3] and seen["threshold"] == 0.8
        assert all(e["preview_url"] for e in seen["groups"][0]["items"])
        assert groups("bob").json()["groups"] == []  # one visible copy is no group
        for bad in ("?threshold=abc", "?threshold=5", "?threshold=nan", "?threshold=0"):
            r = groups("alice", bad)
            assert r.status_code == 400 and "threshold" in str(r.json()["error"])
        assert client.get("/duplicates").status_code == 401
    coll.close()
