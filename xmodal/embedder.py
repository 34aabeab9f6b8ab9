"""Turns decoded media into vectors with a collection's models: extraction (OCR, ASR, chunking)
then batched encoding. Models load lazily, once, on first use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xmodal.catalog import VectorRecord
from xmodal.config import ROLE_MODALITY, CollectionConfig
from xmodal.encoders.base import Encoder, EncoderInfo
from xmodal.encoders.registry import EncoderRegistry
from xmodal.errors import InvalidQueryError, MediaError, ModelError
from xmodal.extract.base import OcrEngine, SecondsDone, SpeechRecognizer, group_words, load_asr, load_ocr
from xmodal.media.audio import AudioClip
from xmodal.media.documents import PagedText
from xmodal.media.image import picture_worlds
from xmodal.media.pdf import PdfSource, iter_pages
from xmodal.media.text import chunk_words
from xmodal.types import Modality, Segment, VectorKind

MAX_PAGE_PICTURES = 64  # pictures of a PDF's pages seen by the picture towers, at most
PAGE_PICTURE_SIDE = 768  # and at most this many pixels a side


@dataclass
class Extracted:
    """What one item yields before encoding."""

    modality: Modality
    text: str = ""
    text_segments: list[tuple[VectorKind, Segment]] = field(default_factory=list)
    image: Any = None
    worlds: tuple[str, ...] | None = None  # ``image``'s (media.image.picture_worlds), once known
    # pictures of a document's pages (scans, slides), each seen by the picture towers with its page
    page_pictures: list[tuple[int, Any]] = field(default_factory=list)
    clip: AudioClip | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryPicture:
    """What a query picture is matched by (see :meth:`Embedder.query_image_parts`)."""

    look: np.ndarray | None  # (1, dim) in the shared space
    features: np.ndarray | None  # (1, n) look features (kind ``look``), photos only
    words: np.ndarray | None  # (1, dim) text vector of the words read in it
    n_words: int


class Embedder:
    def __init__(self, config: CollectionConfig, registry: EncoderRegistry) -> None:
        self.config = config
        self.registry = registry
        self._ocr: OcrEngine | None = None
        self._asr: SpeechRecognizer | None = None
        # the instances this embedder encodes with, kept even if the registry later reloads a
        # model directory: vectors of one collection must all come from the same weights
        self._towers: dict[str, Encoder] = {}

    # ---- models (lazy) ----------------------------------------------------------------------
    def tower(self, role: str) -> Encoder | None:
        if role in self._towers:
            return self._towers[role]
        spec = self.config.model.towers().get(role)
        if spec is None:
            return None
        encoder = self.registry.load(spec)
        wanted = ROLE_MODALITY[role]
        if not encoder.supports(wanted):
            raise ModelError(f"encoder {spec!r} cannot encode {role}")
        if role != "text":
            hub = self.tower("text")
            assert hub is not None
            if encoder.space != hub.space or encoder.dim != hub.dim:
                raise ModelError(
                    f"{role} encoder {spec!r} lives in space {encoder.space!r} ({encoder.dim}-d), "
                    f"not the text hub's {hub.space!r} ({hub.dim}-d)"
                )
        self._towers[role] = encoder
        return encoder

    @property
    def text_encoder(self) -> Encoder:
        enc = self.tower("text")
        assert enc is not None
        return enc

    def ocr(self) -> OcrEngine | None:
        if self._ocr is None and self.config.model.ocr:
            self._ocr = load_ocr(self.config.model.ocr)
        return self._ocr

    def asr(self) -> SpeechRecognizer | None:
        if self._asr is None and self.config.model.asr:
            self._asr = load_asr(self.config.model.asr, self.config.model.language)
        return self._asr

    def infos(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for role in self.config.model.towers():
            enc = self.tower(role)
            out[role] = enc.info().to_dict() if enc else None
        return out

    def extractor_versions(self) -> dict[str, Any]:
        """The extractors that made the stored texts, as saved in the manifest (the speech
        engine in full: engine, model, version, settings; it checks a language asked for)."""
        out: dict[str, Any] = {}
        if self.config.model.ocr:
            out["ocr"] = self.config.model.ocr
        asr = self.asr()
        if asr is not None:
            out["asr"] = {"name": self.config.model.asr, **asr.describe()}
        return out

    # ---- extraction -------------------------------------------------------------------------
    def extract_text(self, text: str) -> Extracted:
        ch = self.config.chunking
        chunks = chunk_words(text, ch.max_words, ch.overlap)
        return Extracted(Modality.TEXT, text, [(VectorKind.TEXT, Segment(c)) for c in chunks])

    def extract_image(self, image: Any) -> Extracted:
        out = Extracted(Modality.IMAGE, image=image)
        out.metadata.update(width=image.width, height=image.height)
        ocr = self.ocr()
        if self.tower("image") is not None and self.tower("photo") is not None:
            out.worlds = picture_worlds(image)  # kept for the encoding (picture_towers)
        # a photo is read only when a quick look finds text in it (most photos have none)
        if ocr is not None and ((out.worlds or picture_worlds(image))[0] != "photo" or ocr.may_have_text(image)):
            lines = ocr.read(image)
            out.text = "\n".join(s.text for s in lines)
            ch = self.config.chunking
            out.text_segments = [(VectorKind.OCR, Segment(c)) for c in chunk_words(out.text, ch.max_words, ch.overlap)]
        return out

    def extract_paged_text(self, doc: PagedText) -> Extracted:
        """Slides: each one's text in chunks that keep its number (as ``page``)."""
        ch = self.config.chunking
        out = Extracted(Modality.TEXT, doc.text)
        for number, text in doc.parts:
            for chunk in chunk_words(text, ch.max_words, ch.overlap):
                out.text_segments.append((VectorKind.TEXT, Segment(chunk, page=number)))
        return out

    def extract_pdf(self, source: PdfSource) -> Extracted:
        """A PDF page by page: its text layer in chunks that keep their page; a page without one
        (a scan) is read by OCR; a page with little text (a scan, a slide) is, up to
        ``MAX_PAGE_PICTURES`` of them, seen by the picture towers. Pages are read one at a time
        (memory: one rendered page)."""
        ch = self.config.chunking
        out = Extracted(Modality.TEXT)
        texts: list[str] = []
        ocr = self.ocr()
        for page in iter_pages(source):
            text = page.text
            for chunk in chunk_words(text, ch.max_words, ch.overlap):
                out.text_segments.append((VectorKind.TEXT, Segment(chunk, page=page.number)))
            if page.picture is not None:
                if ocr is not None and page.scanned:
                    read = "\n".join(s.text for s in ocr.read(page.picture))
                    for chunk in chunk_words(read, ch.max_words, ch.overlap):
                        out.text_segments.append((VectorKind.OCR, Segment(chunk, page=page.number)))
                    text = "\n".join(t for t in (text, read) if t)
                if len(out.page_pictures) < MAX_PAGE_PICTURES:
                    picture = page.picture
                    picture.thumbnail((PAGE_PICTURE_SIDE, PAGE_PICTURE_SIDE))
                    out.page_pictures.append((page.number, picture))
            texts.append(text)
        out.text = "\n\n".join(t for t in texts if t)
        if not out.text_segments and not out.page_pictures:
            raise MediaError("the PDF has no text and no page that could be read")
        return out

    def extract_audio(self, clip: AudioClip, progress: SecondsDone | None = None) -> Extracted:
        """Speech as timed transcript segments; a detected language becomes the item's
        ``language`` metadata (filterable)."""
        out = Extracted(Modality.AUDIO, clip=clip)
        out.metadata["duration"] = round(clip.duration, 3)
        asr = self.asr()
        if asr is not None:
            heard = asr.recognise(clip, progress)
            if heard.language and heard.words:
                out.metadata["language"] = heard.language
            segments = group_words(heard.words, self.config.chunking.speech_segment_seconds)
            out.text = " ".join(s.text for s in segments)
            out.text_segments = [(VectorKind.TRANSCRIPT, s) for s in segments]
        return out

    # ---- encoding ---------------------------------------------------------------------------
    def encode(self, batch: Sequence[Extracted]) -> list[list[VectorRecord]]:
        """Encode many extracted items with one encoder call per kind of input."""
        out: list[list[VectorRecord]] = [[] for _ in batch]
        texts: list[str] = []
        owners: list[tuple[int, VectorKind, Segment]] = []
        for i, ex in enumerate(batch):
            for kind, seg in ex.text_segments:
                texts.append(seg.text)
                owners.append((i, kind, seg))
        if texts:
            vecs = self.text_encoder.encode_text(texts)
            for (i, kind, seg), vec in zip(owners, vecs, strict=True):
                out[i].append(VectorRecord(kind, vec, seg))
        self._encode_images(batch, out)
        self._encode_audio(batch, out)
        return out

    def picture_towers(self, image: Any, worlds: tuple[str, ...] | None = None) -> list[tuple[str, Encoder]]:
        """The tower roles (``image``, ``photo``) and encoders that see a picture, the likelier
        first: its worlds' when the collection has both towers
        (:func:`xmodal.media.image.picture_worlds`; a picture of both worlds gets a vector from
        each, and an item ranks by its best), else the one it has."""
        drawing = self.tower("image")
        photo = self.tower("photo")
        if drawing is not None and photo is not None:
            seen = worlds if worlds is not None else picture_worlds(image)
            return [("photo", photo) if w == "photo" else ("image", drawing) for w in seen]
        if photo is not None:
            return [("photo", photo)]
        return [("image", drawing)] if drawing is not None else []

    def picture_tower(self, image: Any) -> tuple[str, Encoder] | None:
        """The likelier of :meth:`picture_towers` (a query picture is seen by that one)."""
        towers = self.picture_towers(image)
        return towers[0] if towers else None

    def _encode_images(self, batch: Sequence[Extracted], out: list[list[VectorRecord]]) -> None:
        """Each picture by the towers of its worlds, one call per tower; a photo also keeps its
        look (the backbone's features) for similar pictures and near-duplicates. A blank
        picture gets no vector of its look."""
        # (item, page or None, picture) per tower role
        groups: dict[str, list[tuple[int, int | None, Any]]] = {}
        towers: dict[str, Encoder] = {}
        for i, ex in enumerate(batch):
            pictures = ([(None, ex.image)] if ex.image is not None else []) + list(ex.page_pictures)
            for page, picture in pictures:
                chosen = self.picture_towers(picture, ex.worlds if page is None else None)
                if not chosen:
                    return
                for role, tower in chosen:
                    if tower.has_content(picture):
                        groups.setdefault(role, []).append((i, page, picture))
                        towers[role] = tower
        for role, members in groups.items():
            vecs, looks = towers[role].encode_pictures([picture for _, _, picture in members])
            kind = VectorKind.PHOTO if role == "photo" else VectorKind.IMAGE
            for n, ((i, page, _), vec) in enumerate(zip(members, vecs, strict=True)):
                out[i].append(VectorRecord(kind, vec, Segment("", page=page)))
                if looks is not None and page is None:  # a look per item: the picture itself
                    out[i].append(VectorRecord(VectorKind.LOOK, looks[n], Segment("")))

    def _encode_audio(self, batch: Sequence[Extracted], out: list[list[VectorRecord]]) -> None:
        """Audio towers see a fixed window (CLAP: 10 s), so long clips are cut into windows,
        each its own vector with its seconds."""
        idx = [i for i, ex in enumerate(batch) if ex.clip is not None]
        tower = self.tower("audio") if idx else None
        if tower is None:
            return
        window = self.config.chunking.audio_window_seconds
        pieces: list[tuple[int, float, float, AudioClip]] = []
        for i in idx:
            clip = batch[i].clip
            assert clip is not None
            step = int(window * clip.sample_rate)
            for start in range(0, max(clip.samples.shape[0], 1), step):
                part = clip.samples[start : start + step]
                if part.shape[0] < clip.sample_rate // 10 and start > 0:
                    break  # a sliver under 0.1 s adds nothing
                begin = start / clip.sample_rate
                pieces.append((i, round(begin, 2), round(begin + part.shape[0] / clip.sample_rate, 2),
                               AudioClip(part, clip.sample_rate)))  # fmt: skip
        vecs = tower.encode_audio([p[3] for p in pieces])
        for (i, begin, end, _), vec in zip(pieces, vecs, strict=True):
            out[i].append(VectorRecord(VectorKind.AUDIO, vec, Segment("", begin, end)))

    # ---- queries ----------------------------------------------------------------------------
    def encode_query_text(self, text: str) -> np.ndarray:
        return self.text_encoder.encode_query(Modality.TEXT, [text])

    def text_query_for_images(self, text_vector: np.ndarray) -> np.ndarray | None:
        """The image tower's vector for a text query against picture vectors (its memory of
        pictures per name), or None: pictures are scored with the text vector itself."""
        tower = self.tower("image")
        return tower.text_query_for_images(text_vector) if tower is not None else None

    def query_image_parts(self, image: Any) -> QueryPicture:
        """The ways a query picture can match: its look in the shared space (by the tower of
        its world), its look features when that tower has them (photos: for similar photos),
        and the text vector of the words OCR read in it; at least one of the shared look and
        the words. The search ranks items by each apart and mixes their cosines, the words
        weighing more the more there are (``SearchPipeline.search_vector``)."""
        chosen = self.picture_tower(image)
        tower = chosen[1] if chosen is not None else None
        blank = tower is not None and not tower.has_content(image)
        look = features = None
        if tower is not None and not blank:
            look, features = tower.encode_query_pictures([image])
        ex = self.extract_image(image) if self.config.model.ocr else None
        text = ex.text.strip() if ex is not None else ""
        words = self.encode_query_text(text) if text else None
        if look is None and words is None:
            if blank:
                raise InvalidQueryError("the query picture is blank (one colour, nothing drawn or written in it)")
            raise InvalidQueryError("this collection has no image encoder and no text was found in the query image")
        return QueryPicture(look, features, words, len(text.split()))

    def encode_query_audio(self, clip: AudioClip) -> np.ndarray:
        tower = self.tower("audio")
        if tower is not None:
            return tower.encode_query(Modality.AUDIO, [clip])
        ex = self.extract_audio(clip) if self.config.model.asr else None
        if ex is None or not ex.text.strip():
            if ex is None:
                raise InvalidQueryError("this collection has no audio encoder and no speech recognition")
            raise InvalidQueryError(
                "no speech was recognised in the query recording (this collection matches recordings by "
                "their words; it has no audio encoder for other sounds)"
            )
        return self.encode_query_text(ex.text)


def stored_infos_match(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
    """None when every tower would produce the same vectors; else a description of the change."""
    for role in set(stored) | set(current):
        a, b = stored.get(role), current.get(role)
        if (a is None) != (b is None):
            return f"{role} tower changed"
        if a is not None and b is not None and not EncoderInfo.from_dict(a).same_vectors(EncoderInfo.from_dict(b)):
            return f"{role} encoder changed: {a.get('name')} {a.get('version')} -> {b.get('name')} {b.get('version')}"
    return None
