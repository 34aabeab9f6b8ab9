"""The bundled pictogram encoder: loads offline, fits the size budget, gives stable unit vectors
in the MiniLM space, and never imports training code."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from picto_support import icon as _icon
from picto_support import pictures as _pictures
from picto_support import tiny_model_dir as _tiny_model_dir
from PIL import Image

from xmodal.encoders.minilm import MINILM_SPACE
from xmodal.encoders.pictogram import PictogramConfig, PictogramEncoder, bundled_model_dir
from xmodal.errors import ModelError
from xmodal.types import Modality


def test_bundled_model_card_and_size() -> None:
    d = bundled_model_dir()
    card = json.loads((d / "xmodal_encoder.json").read_text(encoding="utf-8"))
    assert card["encoder"] == "pictogram" and card["space"] == MINILM_SPACE
    total = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    assert total <= 25_000_000  # the 25 MB, in decimal megabytes
    assert (d / "MODEL_CARD.md").is_file()


def test_bundled_encoder_vectors() -> None:
    enc = PictogramEncoder()
    assert enc.dim == 384 and enc.space == MINILM_SPACE and enc.info().name == "pictogram"
    imgs = [_icon(), _icon(200), Image.new("RGB", (120, 40), "red"), _icon(mode="L")]
    vecs = enc.encode_images([im if im.mode == "RGB" else im.convert("RGB") for im in imgs])
    assert vecs.shape == (4, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    alone = enc.encode_images([imgs[0]])
    assert np.allclose(alone[0], vecs[0], atol=1e-5)  # batch-independent (eval-mode norm layers)
    assert float(vecs[0] @ vecs[1]) > 0.8  # the same triangle at another resolution
    assert float(vecs[0] @ vecs[1]) > float(vecs[0] @ vecs[2])


def test_inference_does_not_import_training_code() -> None:
    code = (
        "import sys; from PIL import Image; from xmodal.encoders.pictogram import PictogramEncoder;"
        "PictogramEncoder().encode_images([Image.new('RGB', (32, 32))]);"
        "print(sorted(m for m in sys.modules if m.startswith('xmodal.train')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_the_module_loads_nothing() -> None:
    code = "import sys, xmodal.encoders.pictogram; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "gan"},
        {"kind": "adapter"},
        {"depth": 3},
        {"image_size": 4, "stages": [[8, 1], [8, 1], [8, 1]]},
        {"fit_content": 0.001},  # would blow a picture up to a huge canvas
        {"fit_content": 2},
    ],
)
def test_bad_configs(bad: dict) -> None:  # type: ignore[type-arg]
    from xmodal.encoders.pictogram import build_network

    with pytest.raises(ModelError):
        build_network(PictogramConfig.from_dict(bad))


def test_weights_not_matching_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    d = tmp_path / "m"
    shutil.copytree(bundled_model_dir(), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["embed_dim"] = 192  # a valid config (96 PQ sub-vectors divide it) that the weights do not fit
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="do not match"):
        PictogramEncoder(str(d))


def test_fit_to_content_crops_and_recentres_the_drawing() -> None:
    from xmodal.encoders.pictogram import fit_to_content

    img = Image.new("RGB", (100, 100), (250, 240, 200))  # a coloured background
    img.paste((0, 0, 0), (5, 10, 25, 20))  # a 20 x 10 bar in a corner
    out = fit_to_content(img, 0.5)
    assert out.size == (40, 40) and out.getpixel((0, 0)) == (250, 240, 200)
    arr = np.asarray(out).astype(int)
    ys, xs = np.nonzero(np.abs(arr - [250, 240, 200]).max(axis=-1) > 24)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 29, 15, 24)  # centred
    blank = Image.new("RGB", (30, 20), "white")
    assert fit_to_content(blank, 0.8) is blank


def test_training_fit_matches_the_inference_fit() -> None:
    from xmodal.train.data import fit_content_rgba

    px = np.zeros((1, 48, 48, 4), dtype=np.uint8)
    px[0, 0:12, 0:6] = (0, 0, 0, 255)  # a 6 x 12 drawing touching the corner
    out = fit_content_rgba(px, 0.75)
    ys, xs = np.nonzero(out[0, ..., 3] > 16)
    assert ys.max() - ys.min() + 1 == 36 and abs((ys.min() + ys.max()) / 2 - 23.5) <= 1
    assert abs((xs.min() + xs.max()) / 2 - 23.5) <= 1
    empty = np.zeros((1, 48, 48, 4), dtype=np.uint8)
    assert (fit_content_rgba(empty, 0.75) == 0).all()


def test_settings_name_the_content_fit_only_when_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    assert PictogramEncoder().settings()["fit_content"] == 0.75
    d = tmp_path / "m"
    shutil.copytree(bundled_model_dir(), d)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "fit_content": 0.0}))
    assert "fit_content" not in PictogramEncoder(str(d)).settings()  # as before the setting existed


def test_hubness_correction_lowers_hubs_along_the_caption_direction(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from xmodal.train.hubness import fit_hubness

    d = _tiny_model_dir(tmp_path)
    before = PictogramEncoder(str(d))
    pics = _pictures()
    queries, plain = before.encode_query(Modality.IMAGE, pics), before.encode_images(pics)
    rng = np.random.default_rng(2)
    captions = rng.normal(size=(300, 384)).astype(np.float32) + 0.5  # a shared mean direction
    captions /= np.linalg.norm(captions, axis=1, keepdims=True)
    cfg = fit_hubness(d, captions, queries, rows=50, k=5, weight=0.5, float16=True)
    assert (cfg.hubness_bank, cfg.hubness_k, cfg.hubness_weight) == (50, 5, 0.5)
    after = PictogramEncoder(str(d))
    assert after.config.hubness_bank == 50
    # query pictures skip it; float16 storage moves vectors by rounding only
    assert np.allclose(after.encode_query(Modality.IMAGE, pics), queries, atol=5e-3)
    # indexed pictures: unit + gap - weight * (hub score - training mean) * m / |m|^2, normalised
    from safetensors.numpy import load_file

    w = load_file(str(d / "model.safetensors"))
    assert all(v.dtype == np.float16 for v in w.values() if v.dtype.kind == "f")
    bank, direction, mean = (
        w[f"{len(after._net) - 1}.{k}"].astype(np.float32) for k in ("hub_bank", "hub_dir", "hub_mean")
    )
    q = after.encode_query(Modality.IMAGE, pics)
    score = np.sort(q @ bank.T, axis=1)[:, -5:].mean(axis=1)
    want = q + w[f"{len(after._net) - 1}.gap"].astype(np.float32) - 0.5 * (score - mean)[:, None] * direction
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    got = after.encode_images(pics)
    assert np.allclose(got, want, atol=1e-4)
    mean_caption = captions.mean(axis=0)
    assert np.allclose(direction @ mean_caption, 1, atol=1e-2)
    # the picture nearest the captions (the hub) loses the most against the mean caption
    hub = int(np.argmax(score))
    drop = plain @ mean_caption - got @ mean_caption
    assert drop[hub] == pytest.approx(drop.max()) and drop[hub] > 0
    assert abs(float(mean[0]) - float(np.mean(score))) < 0.05  # centred on the pictures it was fitted on


@pytest.mark.parametrize(
    "bad",
    [
        {"gap_shift": True, "hubness_bank": 5, "hubness_k": 6},
        {"gap_shift": True, "hubness_bank": 5, "hubness_k": 0},
        {"gap_shift": True, "hubness_bank": -1},
        {"gap_shift": False, "hubness_bank": 5},
    ],
)
def test_bad_hubness_configs(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ModelError):
        PictogramConfig.from_dict(bad)


def test_hubness_needs_the_gap_shift_and_enough_captions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from xmodal.errors import InvalidArgumentError
    from xmodal.train.hubness import fit_hubness

    caps = np.eye(384, dtype=np.float32)[:20]
    with pytest.raises(InvalidArgumentError, match="gap shift"):
        fit_hubness(_tiny_model_dir(tmp_path, gap_shift=False), caps, caps, rows=10, k=3)
    d = tmp_path / "again"
    d.mkdir()
    m = _tiny_model_dir(d)
    with pytest.raises(InvalidArgumentError, match="at least"):
        fit_hubness(m, caps[:2], caps, rows=10, k=3)
    assert PictogramEncoder(str(m)).config.hubness_bank == 0  # untouched


def test_float16_storage_halves_the_weights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from xmodal.train.hubness import store_float16

    d = _tiny_model_dir(tmp_path)
    size, vecs = (d / "model.safetensors").stat().st_size, PictogramEncoder(str(d)).encode_images(_pictures())
    store_float16(d)
    assert (d / "model.safetensors").stat().st_size < 0.6 * size
    assert np.allclose(PictogramEncoder(str(d)).encode_images(_pictures()), vecs, atol=5e-3)
    assert oct((d / "model.safetensors").stat().st_mode & 0o777) == "0o644"


def test_an_open_collection_follows_a_model_retrained_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`xmodal serve` loaded MODEL_DIR; the user retrains into the same folder and re-embeds with
    `xmodal index --reembed` (another process): the server's next search loads the new weights
    instead of failing with "encoder changed" until a restart."""
    from safetensors.torch import load_file, save_file

    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.encoders.registry import EncoderRegistry
    from xmodal.search import Query

    model_dir = _tiny_model_dir(tmp_path)
    (tmp_path / "pics").mkdir()
    for i, im in enumerate(_pictures()):
        im.save(tmp_path / "pics" / f"p{i}.png")
    model = ModelConfig(photo=None, image=str(model_dir), ocr=None, asr=None)
    server = Collection.open(tmp_path / "c", create=True, model=model, registry=EncoderRegistry())
    server.add([tmp_path / "pics"])
    query = Query.image(tmp_path / "pics" / "p6.png")
    assert server.search(query, k=1)[0].uri.endswith("p6.png")
    old_vec = server.embedder.tower("image").encode_images([_icon()])  # type: ignore[union-attr]
    state = load_file(str(model_dir / "model.safetensors"))  # "retrain": other weights, new version
    save_file({k: (v * 1.5 if v.is_floating_point() else v).contiguous() for k, v in state.items()},
              str(model_dir / "model.safetensors"))  # fmt: skip
    (model_dir / "xmodal_encoder.json").write_text(json.dumps({"encoder": "pictogram", "version": "t2"}))
    Collection.open(tmp_path / "c", registry=EncoderRegistry(), reembed=True).close()  # the other process
    hits = server.search(query, k=1)
    with Collection.open(tmp_path / "c", registry=EncoderRegistry()) as fresh:  # as after a restart
        again = fresh.search(query, k=1)
    assert hits[0].uri.endswith("p6.png") and hits[0].score == pytest.approx(again[0].score, abs=1e-6)
    assert server.encoder_change() is None
    new_vec = server.embedder.tower("image").encode_images([_icon()])  # type: ignore[union-attr]
    assert not np.allclose(old_vec, new_vec, atol=1e-4)
    server.close()


def test_reloading_a_model_keeps_other_collections_on_their_weights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two collections share one registry and MODEL_DIR; the folder is retrained and only the
    first is re-embedded (in this process): the second keeps encoding with the weights its
    vectors came from, and says so once it is asked to check."""
    from safetensors.torch import load_file, save_file

    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.encoders.registry import EncoderRegistry

    model_dir = _tiny_model_dir(tmp_path)
    (tmp_path / "pics").mkdir()
    _icon().save(tmp_path / "pics" / "tri.png")
    registry = EncoderRegistry()
    model = ModelConfig(photo=None, image=str(model_dir), ocr=None, asr=None)
    a = Collection.open(tmp_path / "a", create=True, model=model, registry=registry)
    b = Collection.open(tmp_path / "b", create=True, model=model, registry=registry)
    a.add([tmp_path / "pics"])
    b.add([tmp_path / "pics"])
    b_vec = b.embedder.tower("image").encode_images([_icon()])  # type: ignore[union-attr]
    state = load_file(str(model_dir / "model.safetensors"))
    save_file({k: (v * 1.5 if v.is_floating_point() else v).contiguous() for k, v in state.items()},
              str(model_dir / "model.safetensors"))  # fmt: skip
    (model_dir / "xmodal_encoder.json").write_text(json.dumps({"encoder": "pictogram", "version": "t2"}))
    a.reembed(model)  # picks up the retrained folder
    assert a.embedder.tower("image").version == "pictogram:t2"  # type: ignore[union-attr]
    assert b.embedder.tower("image").version == "pictogram:t"  # type: ignore[union-attr]
    assert np.allclose(b.embedder.tower("image").encode_images([_icon()]), b_vec)  # type: ignore[union-attr]
    assert b.encoder_change() is None  # its own weights still make its vectors
    a.close()
    b.close()
    with Collection.open(tmp_path / "b", registry=EncoderRegistry()) as restarted:
        assert "pictogram:t -> pictogram pictogram:t2" in (restarted.encoder_change() or "")


def test_the_api_follows_a_retrained_folder_after_a_delete(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The server follows another process's re-embed on whatever request comes first -- here a
    delete, which refreshes the collection -- and its next search still encodes with the new
    weights, as a restarted server would."""
    from safetensors.torch import load_file, save_file

    from xmodal.access.principal import Principal
    from xmodal.api.service import SearchRequest, Service
    from xmodal.api.settings import ServeSettings
    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.encoders.registry import EncoderRegistry
    from xmodal.search import Query

    model_dir = _tiny_model_dir(tmp_path)
    (tmp_path / "pics").mkdir()
    for i, im in enumerate(_pictures()):
        im.save(tmp_path / "pics" / f"p{i}.png")
    model = ModelConfig(photo=None, image=str(model_dir), ocr=None, asr=None)
    coll = Collection.open(tmp_path / "c", create=True, model=model, registry=EncoderRegistry())
    coll.add([tmp_path / "pics"])
    svc = Service(ServeSettings(collection=tmp_path / "c"), coll)
    admin = Principal("root", (), True, "k")
    query = Query.image(tmp_path / "pics" / "p6.png")
    svc.search(admin, SearchRequest(query, k=1))
    state = load_file(str(model_dir / "model.safetensors"))
    save_file({k: (v * 1.5 if v.is_floating_point() else v).contiguous() for k, v in state.items()},
              str(model_dir / "model.safetensors"))  # fmt: skip
    (model_dir / "xmodal_encoder.json").write_text(json.dumps({"encoder": "pictogram", "version": "t2"}))
    Collection.open(tmp_path / "c", registry=EncoderRegistry(), reembed=True).close()  # the other process
    victim = next(i for i in coll.items() if i.uri.endswith("p0.png"))
    with svc.lock:
        coll.delete([victim.id])
    got = svc.search(admin, SearchRequest(query, k=1))["hits"][0]
    with Collection.open(tmp_path / "c", registry=EncoderRegistry()) as fresh:
        want = fresh.search(query, k=1)[0]
    assert got["uri"] == want.uri and got["score"] == pytest.approx(want.score, abs=1e-6)
    coll.close()


def test_a_blank_picture_gets_no_look_vector(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One colour, nothing drawn: no vector that every query would reach; as a query, a clear
    error instead of an arbitrary ranking."""
    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.encoders.registry import EncoderRegistry
    from xmodal.errors import InvalidQueryError
    from xmodal.search import Query

    enc = PictogramEncoder(str(_tiny_model_dir(tmp_path)))
    assert enc.has_content(_icon()) and enc.has_content(_icon(1000))  # judged after the size cut
    blanks = [Image.new("RGB", (64, 64), "white"), Image.new("RGB", (1, 1), "red"), Image.new("L", (30, 90), 40)]
    assert not any(enc.has_content(im) for im in blanks)
    faint = Image.new("RGB", (64, 64), "white")
    faint.putpixel((10, 10), (0, 0, 0))  # one dark pixel is a drawing
    assert enc.has_content(faint)
    root = tmp_path / "pics"
    root.mkdir()
    _icon().save(root / "triangle.png")
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(root / "transparent.png")
    Image.new("RGB", (1, 1), "white").save(root / "dot.png")
    model = ModelConfig(photo=None, image=str(tmp_path / "tiny"), ocr=None, asr=None)
    with Collection.open(tmp_path / "c", create=True, model=model, registry=EncoderRegistry()) as coll:
        report = coll.add([root])
        assert (report.added, report.failed) == (3, 0)  # indexed (and listed), just not by a look
        assert coll.catalog.vector_count() == 1
        assert [h.metadata["name"] for h in coll.search("a triangle", k=3)] == ["triangle.png"]
        with pytest.raises(InvalidQueryError, match="blank"):
            coll.search(Query.image(root / "transparent.png"))


def test_has_drawing_agrees_with_the_content_mask() -> None:
    """The fast blank check (channel extremes) finds a drawing exactly when the mask the
    content fit crops by has one pixel: near-uniform pictures with a few pixels off by up to
    40 either side of the tolerance, from 1x1 up."""
    from xmodal.encoders.pictogram import content_mask, has_drawing

    rng = np.random.default_rng(0)
    found = 0
    for _ in range(500):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        arr = np.tile(rng.integers(0, 256, 3), (h, w, 1)).astype(np.int16)
        for _ in range(int(rng.integers(0, 4))):
            arr[rng.integers(0, h), rng.integers(0, w)] += rng.integers(-40, 41, 3)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        assert has_drawing(img) == bool(content_mask(img)[1].any())
        found += has_drawing(img)
    assert 100 < found < 400  # both answers were exercised
