"""An image tower's own vectors for text queries (``Encoder.text_query_for_images``): the
pictogram memory's text side, worked out by hand on a tiny random model, and the search pipeline
scoring picture vectors with that vector and every other vector with the text one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import FAKE_MODEL, BagOfWordsEncoder, PixelEncoder, bow_vector
from picto_support import pictures, tiny_model_dir
from PIL import Image

from xmodal.collection import Collection
from xmodal.config import ModelConfig
from xmodal.encoders.pictogram import PictogramConfig, PictogramEncoder
from xmodal.encoders.registry import EncoderRegistry
from xmodal.errors import InvalidQueryError, ModelError
from xmodal.search import Query, TextQueryVectors
from xmodal.types import Modality


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _decode(codes: np.ndarray, books: np.ndarray) -> np.ndarray:
    m = books.shape[0]
    return _unit(books.astype(np.float32)[np.arange(m), codes.astype(int)].reshape(len(codes), -1))


def _model_with_memory(tmp_path: Path, **text_settings: float) -> Path:
    """The tiny model with a memory of 300 pictures named by 280 names (some with no picture),
    the text settings in its config before fitting, as the recipe writes them."""
    from xmodal.train.memory import fit_memory

    tmp_path.mkdir(exist_ok=True)
    d = tiny_model_dir(tmp_path)
    cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
    (d / "config.json").write_text(json.dumps({**cfg, **text_settings}), encoding="utf-8")
    plain = PictogramEncoder(str(d)).encode_query(Modality.IMAGE, pictures())
    rng = np.random.default_rng(3)
    remembered = np.concatenate([plain, _unit(rng.normal(size=(300 - len(plain), 384)))]).astype(np.float32)
    table = _unit(rng.normal(size=(280, 384))).astype(np.float32)
    fit_memory(d, remembered, rng.integers(0, 280, 300), table, plain, k=5, weight=0.5, hub_k=4, subvectors=8)
    return d


def test_text_queries_move_towards_the_remembered_pictures_of_their_nearest_names(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    d = _model_with_memory(tmp_path, memory_text_k=4, memory_text_beta=10.0, memory_text_weight=0.3)
    enc = PictogramEncoder(str(d))
    assert (enc.config.memory_text_k, enc.config.memory_text_beta, enc.config.memory_text_weight) == (4, 10.0, 0.3)
    w = load_file(str(d / "model.safetensors"))
    head = f"{len(enc._net) - 1}.memory."
    keys = _decode(w[head + "key_codes"], w[head + "key_books"])
    table = _decode(w[head + "table_codes"], w[head + "table_books"])
    names = w[head + "names"].astype(int)
    pictured = np.zeros(len(table), dtype=bool)
    pictured[names] = True
    nameless = np.flatnonzero(~pictured)
    assert len(nameless) > 10  # names with no remembered picture are never chosen
    rng = np.random.default_rng(5)
    text = np.concatenate([table[nameless[:3]], table[names[:3]], _unit(rng.normal(size=(4, 384)))]).astype(np.float32)

    prototypes = np.zeros_like(table)
    np.add.at(prototypes, names, keys)
    prototypes[pictured] = _unit(prototypes[pictured])
    sims = np.where(pictured, text @ table.T, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :4]
    a = np.exp(10.0 * (np.take_along_axis(sims, top, axis=1) - sims.max(axis=1, keepdims=True)))
    a /= a.sum(axis=1, keepdims=True)
    guess = _unit((a[..., None] * prototypes[top]).sum(axis=1))
    want = text + 0.3 * (guess - keys.mean(axis=0))
    got = enc.text_query_for_images(text)
    assert got is not None and got.dtype == np.float32
    assert np.allclose(got, want, atol=1e-4)
    for i in range(len(text)):  # one query at a time takes another code path
        assert np.allclose(enc.text_query_for_images(text[i]), want[i : i + 1], atol=1e-4)
    # a query that is a remembered name's vector scores that name's pictures higher than before
    own = _unit(prototypes[names[:3]])
    assert np.all(np.sum(got[3:6] * own, axis=1) > np.sum(text[3:6] * own, axis=1))
    # indexed pictures do not change with the text side
    plain_dir = _model_with_memory(tmp_path / "plain")
    assert np.allclose(PictogramEncoder(str(plain_dir)).encode_images(pictures()), enc.encode_images(pictures()))
    with pytest.raises(InvalidQueryError, match="dimensions"):
        enc.text_query_for_images(text[:, :100])


def test_the_text_side_is_off_unless_the_config_asks(tmp_path: Path) -> None:
    ones = np.ones((1, 384), dtype=np.float32)
    assert PictogramEncoder(str(_model_with_memory(tmp_path / "memory"))).text_query_for_images(ones) is None
    assert PictogramEncoder(str(tiny_model_dir(tmp_path))).text_query_for_images(ones) is None
    assert BagOfWordsEncoder().text_query_for_images(ones[:, :256]) is None  # the default


SMALL = {"gap_shift": True, "hubness_bank": 5, "hubness_k": 2, "memory_size": 5, "memory_k": 2}


@pytest.mark.parametrize(
    "bad",
    [
        {"memory_text_weight": -0.1},
        {"memory_text_weight": 0.2, "memory_text_beta": 0},
        {"memory_text_weight": 0.2, "memory_text_k": 6},  # more than the 5 names
        {"memory_text_weight": 0.2, "memory_text_k": 0},
        {"memory_text_weight": 0.2, "memory_text_k": 2.0},
        {"memory_text_weight": float("inf")},
    ],
)
def test_bad_text_memory_configs(bad: dict) -> None:  # type: ignore[type-arg]
    PictogramConfig.from_dict(SMALL)  # valid without them
    with pytest.raises(ModelError, match="memory"):
        PictogramConfig.from_dict({**SMALL, **bad})


def test_an_unused_text_side_needs_no_valid_k() -> None:
    assert PictogramConfig.from_dict({**SMALL, "memory_text_weight": 0.2, "memory_text_k": 5}).memory_text_k == 5
    cfg = PictogramConfig.from_dict({**SMALL, "memory_text_k": 50})
    assert cfg.memory_text_weight == 0


class BlueMindedPixels(PixelEncoder):
    """A picture tower whose own vector for any text query asks for blue pictures, twice as
    strongly: which vector scored which hit shows in the scores."""

    name = "bluepixels"

    def text_query_for_images(self, text_vectors: np.ndarray) -> np.ndarray | None:
        return np.tile(2 * _unit(bow_vector("blue")), (len(np.atleast_2d(text_vectors)), 1))


@pytest.fixture
def split_collection(tmp_path: Path, registry: EncoderRegistry) -> Callable[..., Collection]:
    registry.register("bluepixels", BlueMindedPixels)
    opened: list[Collection] = []

    def factory(name: str, files: dict[str, str], asr: str | None = None) -> Collection:
        root = tmp_path / name
        root.mkdir()
        for file, content in files.items():
            if file.endswith(".png"):
                Image.new("RGB", (8, 8), content).save(root / file)
            else:
                (root / file).write_text(content, encoding="utf-8")
        model = ModelConfig(text=FAKE_MODEL.text, photo=None, image="bluepixels", ocr=None, asr=asr)
        coll = Collection.open(tmp_path / f"{name}.coll", registry=registry, model=model, create=True)
        opened.append(coll)
        coll.add([root])
        return coll

    yield factory
    for coll in opened:
        coll.close()


def _names(hits: list) -> list[tuple[str, float]]:  # type: ignore[type-arg]
    return [(Path(h.uri).name, round(h.score, 4)) for h in hits]


def test_pictures_are_scored_with_the_image_towers_vector_and_texts_with_the_text_vector(
    split_collection: Callable[..., Collection],
) -> None:
    coll = split_collection("mixed", {"apple.txt": "red apple", "red.png": "red", "blue.png": "blue"})
    vector = coll.pipeline.encode(Query.text("red"))
    assert isinstance(vector, TextQueryVectors)
    # plain text vectors would rank red.png first (cosine 1); the tower's vector asks for blue
    assert _names(coll.search("red", k=10)) == [("blue.png", 2.0), ("apple.txt", 0.7071), ("red.png", 0.0)]
    assert _names(coll.search("red", k=1)) == [("blue.png", 2.0)]
    assert _names(coll.search("red", k=10, modality=Modality.TEXT)) == [("apple.txt", 0.7071)]
    assert _names(coll.search("red", k=10, modality=Modality.IMAGE)) == [("blue.png", 2.0), ("red.png", 0.0)]
    allowed = {h.id for h in coll.search("red", k=10) if h.uri.endswith(("apple.txt", "red.png"))}
    hits = coll.pipeline.search_vector(vector, 10, allow_items=allowed)
    assert _names(hits) == [("apple.txt", 0.7071), ("red.png", 0.0)]
    # picture queries are not text queries: one vector, as before
    assert not isinstance(coll.pipeline.encode(Query.image(Path(coll.search("blue", k=1)[0].uri))), TextQueryVectors)


def test_collections_of_one_kind_search_without_a_filter(
    split_collection: Callable[..., Collection], tmp_path: Path
) -> None:
    pictures_only = split_collection("pictures", {"red.png": "red", "blue.png": "blue"})
    assert _names(pictures_only.search("red", k=10)) == [("blue.png", 2.0), ("red.png", 0.0)]
    texts_only = split_collection("texts", {"apple.txt": "red apple", "sky.txt": "blue sky"})
    assert _names(texts_only.search("red", k=10)) == [("apple.txt", 0.7071), ("sky.txt", 0.0)]
    # a picture added later is scored with the tower's vector (the split follows the catalog)
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "texts" / "blue.png")
    texts_only.add([tmp_path / "texts"])
    assert _names(texts_only.search("red", k=10)) == [("blue.png", 2.0), ("apple.txt", 0.7071), ("sky.txt", 0.0)]


@pytest.mark.parametrize(("texts", "colours"), [(3, 3), (30, 1), (1, 30)])
def test_the_split_search_ranks_like_brute_force(
    split_collection: Callable[..., Collection], texts: int, colours: int
) -> None:
    """Balanced kinds share one index call; a kind under 1/20 of the vectors gets its own."""
    words = ["red", "green", "blue", "apple", "sky", "grass", "sea", "fire"]
    files = {f"t{i}.txt": " ".join(words[j % len(words)] for j in range(i, i + 3)) for i in range(texts)}
    files |= {f"p{i}.png": ["red", "green", "blue"][i % 3] for i in range(colours)}
    coll = split_collection(f"c{texts}-{colours}", files)
    for query in ("red apple", "blue sea fire", "grass"):
        vector = coll.pipeline.encode(Query.text(query))
        assert isinstance(vector, TextQueryVectors)
        want: dict[str, float] = {}
        for vids, vecs in coll.catalog.all_vectors(256):
            rows = coll.catalog.vector_rows(vids.tolist())
            for vid, vec in zip(vids, vecs, strict=True):
                row = rows[int(vid)]
                q = vector.images if row.kind.value == "image" else vector.text
                want[row.item_id] = max(want.get(row.item_id, -9.0), float(np.ravel(q) @ vec))
        for k in (1, 5, len(files)):
            got = coll.search(query, k=k)
            assert [round(h.score, 5) for h in got] == sorted((round(v, 5) for v in want.values()), reverse=True)[:k]
            assert all(abs(want[h.id] - h.score) < 1e-5 for h in got)


def test_a_text_query_has_one_row_of_each(split_collection: Callable[..., Collection]) -> None:
    from xmodal.errors import InvalidArgumentError

    coll = split_collection("rows", {"apple.txt": "red apple", "red.png": "red"})
    vector = coll.pipeline.encode(Query.text("red"))
    assert isinstance(vector, TextQueryVectors)
    with pytest.raises(InvalidArgumentError, match="one text vector"):
        coll.pipeline.search_vector(TextQueryVectors(np.vstack([vector.text, vector.text]), vector.images), 5)


def test_picture_ids_follow_the_catalog(
    split_collection: Callable[..., Collection], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New vectors are read incrementally; deleted ones linger until a full read and are
    never shown; ids outside the catalog in a filter are ignored."""
    from xmodal import search_kinds
    from xmodal.search_kinds import PictureVids

    coll = split_collection("kinds", {"a.txt": "red apple", "red.png": "red"})
    kinds = PictureVids(coll.catalog)
    first = kinds.split(None)
    assert [len(x) for x in first] == [1, 1]
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "kinds" / "blue.png")
    (tmp_path / "kinds" / "b.txt").write_text("blue sky", encoding="utf-8")
    coll.add([tmp_path / "kinds"])
    pictures, others = kinds.split(None)
    assert len(pictures) == 2 and len(others) == 2 and set(first[0]) < set(pictures)
    assert list(kinds.split(np.array([pictures[0], others[1], 10**9, -1]))[0]) == [pictures[0]]
    gone = [h.id for h in coll.search("blue", k=10) if h.uri.endswith("blue.png")]
    coll.delete(gone)
    (tmp_path / "kinds" / "blue.png").unlink()
    assert len(kinds.split(None)[0]) == 2  # lingers: the index and the catalog no longer have it
    assert sorted(Path(h.uri).name for h in coll.search("red", k=10)) == ["a.txt", "b.txt", "red.png"]
    monkeypatch.setattr(search_kinds, "FULL_READ_EVERY", 1)
    (tmp_path / "kinds" / "c.txt").write_text("green", encoding="utf-8")
    coll.add([tmp_path / "kinds"])
    pictures, others = kinds.split(None)
    assert len(pictures) == 1 and len(others) == 3  # a full read drops it


def test_a_spoken_query_is_a_text_query(split_collection: Callable[..., Collection], tmp_path: Path) -> None:
    """Without an audio tower a spoken query is its recognised words, so pictures are scored
    with the image tower's vector for them too (the recogniser here hears "red" in any clip)."""
    import io
    import wave

    from xmodal.extract.base import SpeechRecognizer, Word

    class HearsRed(SpeechRecognizer):
        name = "hears-red"

        def transcribe(self, clip):  # type: ignore[no-untyped-def]
            return [Word("red", 0.0, 0.5)]

    files = {"apple.txt": "red apple", "red.png": "red", "blue.png": "blue"}
    coll = split_collection("spoken", files, asr="pocketsphinx")
    coll.embedder._asr = HearsRed()  # in place of PocketSphinx, which is never loaded
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 5) * 8000).astype("<i2").tobytes())
    vector = coll.pipeline.encode(Query.audio(buf.getvalue()))
    assert isinstance(vector, TextQueryVectors)
    hits = coll.pipeline.search_vector(vector, 10)
    assert _names(hits) == [("blue.png", 2.0), ("apple.txt", 0.7071), ("red.png", 0.0)]
    # a clip with no words: said as that, not as a missing encoder
    HearsRed.transcribe = lambda self, clip: []  # type: ignore[method-assign]
    with pytest.raises(InvalidQueryError, match=r"^no speech was recognised in the query recording"):
        coll.pipeline.encode(Query.audio(buf.getvalue()))


@pytest.mark.parametrize(("tower", "second"), [("bluepixels", "blue.png"), ("pixels", "red.png")])
def test_words_read_in_a_query_picture_are_a_text_query(
    tower: str, second: str, tmp_path: Path, registry: EncoderRegistry
) -> None:
    """A query picture matches by its look and by the words OCR reads in it; the words row is
    a text query, so pictures are scored with the image tower's vector for it when it has one
    (here: "red" read in a green picture asks the blue-minded tower for blue)."""
    from xmodal.extract.base import OcrEngine
    from xmodal.search import QueryRows
    from xmodal.types import Segment

    class ReadsRed(OcrEngine):
        name = "reads-red"
        reading = False  # nothing in the indexed pictures; "red" in the query

        def read(self, image):  # type: ignore[no-untyped-def]
            return [Segment("red")] if self.reading else []

    registry.register("bluepixels", BlueMindedPixels)
    root = tmp_path / "media"
    root.mkdir()
    for colour in ("red", "green", "blue"):
        Image.new("RGB", (8, 8), colour).save(root / f"{colour}.png")
    (root / "apple.txt").write_text("red apple", encoding="utf-8")
    model = ModelConfig(text=FAKE_MODEL.text, photo=None, image=tower, ocr="rapidocr", asr=None)
    with Collection.open(tmp_path / "c", registry=registry, model=model, create=True) as coll:
        ocr = ReadsRed()
        coll.embedder._ocr = ocr  # in place of RapidOCR, which is never loaded
        coll.add([root])
        ocr.reading = True
        vector = coll.pipeline.encode(Query.image(root / "green.png"))
        assert isinstance(vector, QueryRows) and len(vector.rows) == 2
        assert isinstance(vector.rows[1], TextQueryVectors) == (tower == "bluepixels")
        hits = coll.search(Query.image(root / "green.png"), k=3, modality=Modality.IMAGE)
        assert {Path(h.uri).name for h in hits[:2]} == {"green.png", second}  # by look, and by the words
