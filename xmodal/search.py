"""The search pipeline: encode the query -> filtered ANN candidates -> group by item -> optional
re-rank -> hits."""

from __future__ import annotations

import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from xmodal import keywords
from xmodal.catalog import META_SCALARS, Catalog, Filters, KeywordRow, as_number, check_meta_key, utf8_text
from xmodal.embedder import Embedder
from xmodal.errors import InvalidArgumentError, InvalidQueryError, MediaError
from xmodal.index.base import VectorIndex
from xmodal.media.audio import load_audio
from xmodal.media.image import load_image
from xmodal.media.limits import MediaLimits
from xmodal.search_kinds import Looks, PictureVids
from xmodal.types import Hit, Modality, SearchMode, VectorKind

MAX_K = 1000
MAX_QUERY_CHARS = 10_000
MAX_QUERY_AUDIO_SECONDS = 120.0  # a query is a clip, not a recording to transcribe


@dataclass(frozen=True)
class Query:
    """A query of one explicit modality: text, or an image/audio file (path or bytes)."""

    modality: Modality
    content: str | None = None
    path: Path | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        modality = Modality.parse(self.modality)
        object.__setattr__(self, "modality", modality)
        if modality is Modality.TEXT:
            if not isinstance(self.content, str):
                raise InvalidQueryError(f"a text query is a string, got {self.content!r}")
            return
        if self.data is not None and not isinstance(self.data, bytes):
            raise InvalidQueryError(f"{modality.value} query data must be bytes, got {type(self.data).__name__}")
        if self.path is not None and not isinstance(self.path, Path):
            raise InvalidQueryError(f"{_a(modality.value)} query file must be a Path, got {self.path!r}")

    @classmethod
    def text(cls, text: str) -> Query:
        return cls(Modality.TEXT, content=text)

    @classmethod
    def image(cls, src: str | Path | bytes) -> Query:
        return cls._media(Modality.IMAGE, src)

    @classmethod
    def audio(cls, src: str | Path | bytes) -> Query:
        return cls._media(Modality.AUDIO, src)

    @classmethod
    def _media(cls, modality: Modality, src: str | Path | bytes) -> Query:
        if isinstance(src, bytes | bytearray | memoryview):
            return cls(modality, data=bytes(src))
        if not isinstance(src, str | os.PathLike) or not str(src).strip() or "\x00" in str(src):
            raise InvalidQueryError(f"{_a(modality.value)} query is a file path or bytes, got {src!r}")
        return cls(modality, path=Path(src).expanduser())

    def describe(self) -> str:
        if self.modality is Modality.TEXT:
            return self.content or ""
        return (
            f"{self.modality.value}:{self.path}"
            if self.path
            else f"{self.modality.value}:<{len(self.data or b'')} bytes>"
        )


@dataclass(frozen=True)
class TextQueryVectors:
    """A text query's vector and the image tower's own vector for it
    (``Encoder.text_query_for_images``): picture vectors (kind ``image``) are scored with
    ``images``, every other vector with ``text``."""

    text: np.ndarray
    images: np.ndarray


@dataclass(frozen=True)
class LookQuery:
    """A query picture's look features (kind ``look``), matched exactly against the looks of
    the collection's photos (not through the ANN index)."""

    features: np.ndarray


@dataclass(frozen=True)
class QueryRows:
    """Several ways of matching one query, each ranked on its own, their cosines then mixed by
    ``weights`` (equal when empty; see :func:`mix_merge`): a query picture's look, and the words
    OCR read in it as a text query (with the image tower's own vector for pictures, as a typed
    query has)."""

    rows: tuple[np.ndarray | TextQueryVectors | LookQuery, ...]
    weights: tuple[float, ...] = ()

    def mix(self) -> tuple[float, ...]:
        if not self.weights:
            return tuple(1.0 / len(self.rows) for _ in self.rows)
        total = sum(self.weights)
        return tuple(w / total for w in self.weights)


WORDS_HALF_WEIGHT = 2  # words read in a query picture: this many weigh as much as its look


def words_weight(n_words: int) -> float:
    """The share of a query picture's score that its words carry: n / (n + 2). A label or two
    (an icon's caption, a sign in a photo) share it with the look; a page of text is mostly its
    words -- every page of text looks like every other to an image tower (cosines ~0.9 between
    unrelated pages), so the look alone would rank pages, not the page that says the same."""
    return n_words / (n_words + WORDS_HALF_WEIGHT) if n_words > 0 else 0.0


QueryVector = np.ndarray | TextQueryVectors | QueryRows


def validate_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise InvalidArgumentError(f"k must be a whole number, got {k!r}")
    if not 1 <= int(k) <= MAX_K:
        raise InvalidArgumentError(f"k must be between 1 and {MAX_K}, got {k}")
    return int(k)


RANGE_OPS = {
    ">": ">",
    ">=": ">=",
    "<": "<",
    "<=": "<=",
    "gt": ">",
    "gte": ">=",
    "ge": ">=",
    "lt": "<",
    "lte": "<=",
    "le": "<=",
}


def normalise_where(where: Any) -> Filters:
    """Check a metadata filter ``{field: value, list of 1 to 100 values, or bounds}`` and turn
    it into what the catalog compares. A value or list: the field equals one of them (strings,
    numbers, booleans; every value becomes the text it is compared as). Bounds, a range every
    one of which must hold: ``{">=": 10, "<": 20}`` (also ``gt``, ``gte``, ``lt``, ``lte``); a
    number bound compares numerically (text that is a number is one: ``"1e6"``), a text bound
    as text, which orders ISO dates (``{">=": "2024-01-01"}``)."""
    if where is None:
        return {}
    if not isinstance(where, dict):
        raise InvalidArgumentError("'where' must be an object (dict) of field -> value or list of values")
    out: Filters = {}
    for key, value in where.items():
        check_meta_key(key)
        if isinstance(value, dict):
            out[key] = _bounds(key, value)
            continue
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        if not values:
            raise InvalidArgumentError(f"filter {key!r} has no values")
        if len(values) > 100 or not all(isinstance(v, META_SCALARS) for v in values):
            raise InvalidArgumentError(f"filter {key!r} must be a value or a list of 1 to 100 values")
        out[key] = sorted({text for v in values for text in _json_texts(v)})
    return out


_NUMBER = re.compile(r"^-?\d{1,15}(\.\d{1,15})?$")


def _bounds(key: str, bounds: dict[Any, Any]) -> dict[str, float | str]:
    """Checked bounds of one range. Text that is a number is a number bound, unless another
    bound is plain text: ``{">=": "2024-01-01", "<": "2025"}`` compares dates as text."""
    if not bounds:
        raise InvalidArgumentError(f"filter {key!r} has no bounds")
    out: dict[str, float | str] = {}
    for raw_op, bound in bounds.items():
        op = RANGE_OPS.get(raw_op) if isinstance(raw_op, str) else None
        if op is None:
            raise InvalidArgumentError(f"filter {key!r}: unknown comparison {raw_op!r}; use >, >=, <, <=")
        if isinstance(bound, bool) or not isinstance(bound, int | float | str):
            raise InvalidArgumentError(f"filter {key!r}: a bound is a number or a text (a date), got {bound!r}")
        if isinstance(bound, str) and (not bound.strip() or len(bound) > 1000 or not utf8_text(bound)):
            raise InvalidArgumentError(f"filter {key!r}: empty or invalid bound {bound!r}")
        if isinstance(bound, float) and not math.isfinite(bound):
            raise InvalidArgumentError(f"filter {key!r}: bounds must be finite numbers, got {bound}")
        if op in out:
            raise InvalidArgumentError(f"filter {key!r} gives {op} twice")
        out[op] = float(bound) if isinstance(bound, int | float) else bound
    texts = [b for b in out.values() if isinstance(b, str) and as_number(b) is None]
    if texts and any(not isinstance(b, str) for b in out.values()):
        raise InvalidArgumentError(f"filter {key!r}: bounds must all be numbers or all be text")
    if not texts:
        out = {op: b if isinstance(b, float) else float(as_number(b) or 0.0) for op, b in out.items()}
    return out


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _json_texts(value: Any) -> list[str]:
    """The texts a stored value equal to ``value`` compares as: 1 and 1.0 are one number."""
    if isinstance(value, str):
        if not utf8_text(value):
            raise InvalidArgumentError("filter values must be valid UTF-8 text")
        if _NUMBER.match(value):  # from the command line every value is text: "1004.0" matches 1004
            number = float(value) if "." in value else int(value)
            if (repr(number) if isinstance(number, float) else str(number)) == value:  # not "007", "1.10"
                return sorted({value, *_json_texts(number)})
        return [value]
    if isinstance(value, bool):
        return ["true" if value else "false"]  # as the catalog spells stored booleans (not 1/0)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(f"filter values must be finite numbers, got {value}")
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return [str(int(value)), repr(value)]
    if isinstance(value, int) and abs(value) < 2**53:
        return [str(value), repr(float(value))]
    return [repr(value) if isinstance(value, float) else str(value)]


def query_text(query: Query) -> str:
    """The words of a text query, checked: not empty, not too long, valid UTF-8."""
    text = (query.content or "").strip()
    if not text:
        raise InvalidQueryError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQueryError(f"the query is {len(text):,} characters; the limit is {MAX_QUERY_CHARS:,}")
    if not utf8_text(text):  # bytes from a non-UTF-8 terminal, or a lone surrogate
        raise InvalidQueryError("the query is not valid UTF-8 text")
    return text


def keyword_match(query: Query | None, mode: SearchMode) -> list[str]:
    """The words and phrases a keyword or hybrid search matches (none in a hybrid search whose
    text has no word: it is then a dense search). Keyword matching needs a text query."""
    if query is None or query.modality is not Modality.TEXT:
        raise InvalidQueryError(
            f"{mode.value} search matches the words of a text query; search by "
            f"{'an image or a recording' if query is not None else 'a vector'} with mode dense"
        )
    terms = keywords.query_terms(query_text(query))
    if not terms and mode is SearchMode.KEYWORD:
        raise InvalidQueryError("the query has no words to match (keyword search matches letters and digits)")
    return terms


class Reranker(ABC):
    """Optional second stage: reorder (and may drop) the candidate hits for a query."""

    @abstractmethod
    def rerank(self, query: Query, hits: list[Hit]) -> list[Hit]: ...


class SearchPipeline:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        catalog: Catalog,
        limits: MediaLimits,
        reranker: Reranker | None = None,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.catalog = catalog
        self.limits = limits
        self.reranker = reranker
        self._known_keys: set[str] = set()
        self._keys_at = -1
        self._pictures = PictureVids(catalog)
        self._looks = Looks(catalog)

    def encode(self, query: Query) -> QueryVector:
        if query.modality is Modality.TEXT:
            return self._as_text_query(self.embedder.encode_query_text(query_text(query)))
        src = self._source(query)
        try:
            if query.modality is Modality.IMAGE:
                return self._picture_query(load_image(src, self.limits))
            query_limits = replace(
                self.limits, max_audio_seconds=min(self.limits.max_audio_seconds, MAX_QUERY_AUDIO_SECONDS)
            )
            vector = self.embedder.encode_query_audio(load_audio(src, query_limits))
            # without an audio tower the vector is of the recognised words: a text query
            return self._as_text_query(vector) if self.embedder.tower("audio") is None else vector
        except MediaError as exc:
            raise InvalidQueryError(f"query {query.modality.value} is not usable: {exc}") from exc

    def _picture_query(self, image: Any) -> QueryVector:
        """A query picture's rows: its look in the shared space, its look features (a photo,
        when the collection keeps looks; together they weigh as the shared look alone would)
        and its words, weighing more the more of them there are (:func:`words_weight`)."""
        pic = self.embedder.query_image_parts(image)
        share = words_weight(pic.n_words) if pic.words is not None else 0.0
        rows: list[np.ndarray | TextQueryVectors | LookQuery] = []
        weights: list[float] = []
        if pic.look is not None:
            with_features = pic.features is not None and len(self._looks) > 0
            rows.append(pic.look)
            weights.append((1.0 - share) * (LOOK_FEATURES_SHARE if with_features else 1.0))
            if with_features:
                assert pic.features is not None
                rows.append(LookQuery(pic.features))
                weights.append((1.0 - share) * (1.0 - LOOK_FEATURES_SHARE))
        if pic.words is not None:
            rows.append(self._as_text_query(pic.words))
            weights.append(share if pic.look is not None else 1.0)
        if len(rows) == 1:
            only = rows[0]
            assert not isinstance(only, LookQuery)
            return only
        return QueryRows(tuple(rows), tuple(weights))

    def _as_text_query(self, vector: np.ndarray) -> np.ndarray | TextQueryVectors:
        """A text vector, with the image tower's own vector for it when it has one."""
        images = self.embedder.text_query_for_images(vector)
        return vector if images is None else TextQueryVectors(vector, images)

    def _source(self, query: Query) -> Path | bytes:
        if query.data is not None:
            if not query.data:
                raise InvalidQueryError(f"the query {query.modality.value} is empty")
            return query.data
        if query.path is None:
            raise InvalidQueryError(f"{_a(query.modality.value)} query needs a file")
        if query.path.is_dir():
            raise InvalidQueryError(f"the query {query.modality.value} is a folder, not a file: {query.path}")
        if not query.path.exists():
            raise InvalidQueryError(f"query file not found: {query.path}")
        if not query.path.is_file():  # a pipe or a device: reading it could block forever
            raise InvalidQueryError(f"the query {query.modality.value} is not a regular file: {query.path}")
        return query.path

    def search(
        self,
        query: Query,
        k: int = 10,
        modality: Modality | None = None,
        where: dict[str, Any] | None = None,
        allow_items: set[str] | None = None,
        mode: SearchMode | str | None = None,
    ) -> list[Hit]:
        k = validate_k(k)
        mode = SearchMode.parse(mode)
        filters = normalise_where(where)
        self.check_filter_fields(filters)
        if mode is not SearchMode.DENSE:
            keyword_match(query, mode)  # a bad query fails before the model is asked
        vector = None if mode is SearchMode.KEYWORD else self.encode(query)
        return self.search_vector(vector, k, modality, filters, allow_items, query, mode)

    def check_filter_fields(self, where: Filters) -> None:
        if not where:
            return
        generation = self.catalog.generation
        if self._keys_at != generation:
            self._known_keys, self._keys_at = self.catalog.metadata_keys(), generation
        for key in where:
            check_meta_key(key)
            if key not in self._known_keys:
                known = ", ".join(sorted(self._known_keys)) or "none yet"
                raise InvalidArgumentError(f"unknown filter field {key!r}; known fields: {known}")

    def allowed_vids(
        self, modality: Modality | None, where: Filters, allow_items: set[str] | None = None
    ) -> np.ndarray | None:
        if modality is None and not where and allow_items is None:
            return None
        vids = self.catalog.filtered_vids(modality, where, allow_items)
        return vids

    def search_vector(
        self,
        vector: QueryVector | None,
        k: int,
        modality: Modality | None = None,
        where: Filters | None = None,
        allow_items: set[str] | None = None,
        query: Query | None = None,
        mode: SearchMode | str | None = None,
    ) -> list[Hit]:
        """``vector`` is one query row, or several ways of matching one query (a picture's look
        and the words OCR read in it). One row ranks items by their best cosine. Several rows
        are ranked apart to a fixed depth and their cosines mixed by the rows' weights
        (:func:`mix_merge`; a query picture's words weigh more the more of them there are). A
        text query with the image tower's own vector (``TextQueryVectors``) scores picture
        vectors with that and the rest with the text vector, in one list.

        ``mode`` keyword ranks by BM25 over the stored text with the words of ``query`` (no
        vector needed); hybrid fuses that ranking with the vector's by reciprocal rank."""
        mode = SearchMode.parse(mode)
        allow = self.allowed_vids(modality, where or {}, allow_items)
        if mode is SearchMode.DENSE:
            if vector is None:
                raise InvalidArgumentError("a dense search needs a query vector")
            return self._finish(self._dense(vector, k, allow), k, query)
        terms = keyword_match(query, mode)
        # a principal's keyword scores come from what it may see (keywords.visible_bm25)
        if allow_items is None:
            visible = None
        elif modality is None and not where:  # the access list is the only filter
            visible = allow
        else:
            visible = self.catalog.filtered_vids(None, {}, allow_items)
        if mode is SearchMode.KEYWORD:
            ranked, snippets = self._keyword(terms, k, allow, visible)
            return self._finish(ranked, k, query, snippets)
        if vector is None:
            raise InvalidArgumentError("a hybrid search needs a query vector")
        depth = max(k, FUSION_DEPTH)
        dense = self._dense(vector, depth, allow)
        found, snippets = self._keyword(terms, depth, allow, visible) if terms else ([], {})
        rows = self.catalog.vector_rows([vid for _, vid in dense + found])
        per_list = [[(rows[vid].item_id, vid) for _, vid in ranked if vid in rows] for ranked in (found, dense)]
        return self._finish(rrf_merge(per_list, k), k, query, snippets)

    def _dense(self, vector: QueryVector, k: int, allow: np.ndarray | None) -> list[tuple[float, int]]:
        """(score, vid) of the best k items by vector similarity."""
        if isinstance(vector, TextQueryVectors):
            return self._split_ranked(vector, k, allow)
        n_vectors = len(self.index) if allow is None else int(allow.shape[0])
        if isinstance(vector, np.ndarray) and np.atleast_2d(vector).shape[0] > 1:
            vector = QueryRows(tuple(np.atleast_2d(vector)))
        if isinstance(vector, QueryRows):
            # each row ranked to a fixed depth, so the fused list does not depend on k; plain
            # rows share one index call
            depth = max(k, MIX_DEPTH)
            plain = [np.atleast_2d(row) for row in vector.rows if isinstance(row, np.ndarray)]
            found = iter(self._best_items(np.vstack(plain), depth, allow, n_vectors) if plain else [])
            per_row = [
                self._split_best(row, depth, allow)
                if isinstance(row, TextQueryVectors)
                else self._looks.best(row.features, depth, allow)
                if isinstance(row, LookQuery)
                else next(found)
                for row in vector.rows
            ]
            return mix_merge(per_row, vector.mix(), k, depth)
        best = self._best_items(np.atleast_2d(vector), k, allow, n_vectors)[0]
        return sorted(best.values(), key=lambda t: (-t[0], t[1]))[:k]

    def _keyword(
        self, terms: list[str], k: int, allow: np.ndarray | None, visible: np.ndarray | None
    ) -> tuple[list[tuple[float, int]], dict[int, str]]:
        """(BM25, vid) of the best k items by their best-matching text, and each one's snippet
        around the matched words. Without ``visible`` the search widens until k items are found
        or none is left; with it, every match comes back at once."""
        fetch = max(k * 4, 16)
        while True:
            rows = self.catalog.keyword_matches(terms, fetch, allow, visible)
            best: dict[str, KeywordRow] = {}
            for row in rows:  # best first: an item keeps its best-matching piece
                best.setdefault(row.item_id, row)
            if len(best) >= k or len(rows) < fetch or visible is not None:
                break
            fetch *= 4
        ranked = sorted(best.values(), key=lambda r: (-r.score, r.vid))[:k]
        snippets = self.catalog.keyword_snippets(terms, [r.vid for r in ranked])
        return [(r.score, r.vid) for r in ranked], snippets

    def _finish(
        self, ranked: list[tuple[float, int]], k: int, query: Query | None, snippets: dict[int, str] | None = None
    ) -> list[Hit]:
        hits = self._hits(ranked, snippets or {})
        if self.reranker is not None and query is not None:
            hits = self.reranker.rerank(query, hits)[:k]
        return hits

    def _split_ranked(self, vector: TextQueryVectors, k: int, allow: np.ndarray | None) -> list[tuple[float, int]]:
        best = self._split_best(vector, k, allow)
        return sorted(best.values(), key=lambda t: (-t[0], t[1]))[:k]

    def _split_best(self, vector: TextQueryVectors, k: int, allow: np.ndarray | None) -> dict[str, tuple[float, int]]:
        """Picture vectors ranked by ``vector.images``, the others by ``vector.text``; each item
        keeps its best score (an image item's OCR text competes with its picture). Kinds that
        are common enough share one index call (two rows cost about one scan of a flat index)
        and are told apart afterwards; a rare kind with few vectors gets its own filtered call
        instead of a deep unfiltered one."""
        text, images = np.atleast_2d(vector.text), np.atleast_2d(vector.images)
        if text.shape[0] != 1 or images.shape[0] != 1:
            raise InvalidArgumentError("a text query has one text vector and one picture vector")
        pictures, others = self._pictures.split(allow)
        n = len(pictures) + len(others)
        sides = [(text, others, False), (images, pictures, True)]
        sides = [side for side in sides if len(side[1])]
        alone = [side for side in sides if len(side[1]) * RARE_KIND < n and len(side[1]) <= RARE_KIND_IDS]
        common = [side for side in sides if not any(side is other for other in alone)]
        found = []
        for row, vids, is_picture in alone:
            found += self._best_items(row, k, vids, len(vids), [is_picture])
        if common:
            rows = np.vstack([side[0] for side in common])
            # the first depth that holds k of the rarer kind when kinds are mixed evenly
            scale = min(max(1, round(n / min(len(side[1]) for side in common))), MAX_SCALE)
            n_vectors = len(self.index) if allow is None else n
            found += self._best_items(rows, k, allow, n_vectors, [side[2] for side in common], scale)
        best: dict[str, tuple[float, int]] = {}
        for items in found:
            for item, (score, vid) in items.items():
                if item not in best or score > best[item][0]:
                    best[item] = (score, vid)
        return best

    def _best_items(
        self,
        rows: np.ndarray,
        k: int,
        allow: np.ndarray | None,
        n_vectors: int,
        pictures: list[bool] | None = None,
        scale: int = 1,
    ) -> list[dict[str, tuple[float, int]]]:
        """Per query row, each item's best (score, vid) among the nearest vectors, widening
        until every row has k items. ``pictures``: per row, True keeps only picture vectors
        (kind ``image``), False only the others; ``scale`` multiplies the first depth."""
        fetch = min(max(k * 4, 16) * scale, max(n_vectors, 1))
        while True:
            scores, vids = self.index.search(rows, fetch, allow=allow)
            found = self._group(scores, vids, pictures)
            short = [i for i, best in enumerate(found) if len(best) < k]
            if not short or fetch >= n_vectors:
                return found
            if all(int((vids[i] >= 0).sum()) < fetch for i in short):
                # the index gave every short row all it had: an allow list or filter with few
                # vectors, IVF's probed lists, an engine's cap on k (Milvus 16,384) -- asking
                # for more would send the same search again
                return found
            fetch = min(fetch * 4, n_vectors)

    def _group(
        self, scores: np.ndarray, vids: np.ndarray, pictures: list[bool] | None
    ) -> list[dict[str, tuple[float, int]]]:
        rows = self.catalog.vector_rows(np.unique(vids[vids >= 0]).tolist())
        found = []
        for i in range(len(scores)):
            best: dict[str, tuple[float, int]] = {}
            for score, vid in zip(scores[i], vids[i], strict=True):
                row = rows.get(int(vid))
                if row is None:  # index ahead of catalog (or -1 padding): never show a ghost
                    continue
                if pictures is not None and (row.kind is VectorKind.IMAGE) != pictures[i]:
                    continue
                if row.item_id not in best or score > best[row.item_id][0]:
                    best[row.item_id] = (float(score), int(vid))
            found.append(best)
        return found

    def _hits(self, ranked: list[tuple[float, int]], snippets: dict[int, str]) -> list[Hit]:
        rows = self.catalog.vector_rows([vid for _, vid in ranked])
        items = self.catalog.items_by_id(list({row.item_id for row in rows.values()}))
        hits = []
        for score, vid in ranked:
            row = rows.get(vid)
            item = items.get(row.item_id) if row is not None else None
            if row is None or item is None:  # deleted by another process meanwhile
                continue
            hits.append(
                Hit(
                    id=item.id,
                    uri=item.uri,
                    modality=item.modality,
                    score=score,
                    metadata=item.metadata,
                    start=row.start,
                    end=row.end,
                    kind=row.kind,
                    snippet=snippets.get(vid) or row.text or None,
                    page=row.page,
                )
            )
        return hits


RARE_KIND = 20  # a kind under 1/20 of the vectors searched ...
RARE_KIND_IDS = 4096  # ... and with at most this many gets its own filtered index call
MAX_SCALE = 100  # first depth of a shared call at most this many times k's (then it widens)
MIX_DEPTH = 100  # items taken from each row before mixing
LOOK_FEATURES_SHARE = 0.5  # of a query photo's look: the shared-space vector's; the rest its features
FUSION_DEPTH = 100  # items taken from the keyword and the vector ranking of a hybrid search
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009; Elasticsearch, Milvus, Qdrant)


def rrf_merge(per_list: list[list[tuple[str, int]]], k: int, c: int = RRF_K) -> list[tuple[float, int]]:
    """Reciprocal-rank fusion of rankings of (item, vid), best first: an item scores the sum of
    1 / (c + rank) over the lists that hold it and keeps the vid of the list that ranks it
    highest (the first list on a tie). Scores are rounded to 1e-9, so a tie is broken by vid."""
    best: dict[str, tuple[float, int, int]] = {}  # item -> (score, best rank, vid)
    for ranked in per_list:
        for rank, (item, vid) in enumerate(ranked, 1):
            score, top, kept = best.get(item, (0.0, rank + 1, vid))
            best[item] = (score + 1.0 / (c + rank), min(top, rank), vid if rank < top else kept)
    out = [(round(score, 9), vid) for score, _, vid in best.values()]
    out.sort(key=lambda t: (-t[0], t[1]))
    return out[:k]


def mix_merge(
    per_row: list[dict[str, tuple[float, int]]], weights: Sequence[float], k: int, depth: int | None = None
) -> list[tuple[float, int]]:
    """Items ranked by the weighted sum of their cosine in each row, each row cut to its first
    ``depth`` items (so the result does not depend on how deep a row was fetched). An item a
    row does not list gets that row's lowest listed cosine there (it scores no higher); an
    item keeps the vector of the row that gave it the most. Scores stay on the cosine scale.
    (Reciprocal-rank fusion, used before, let agreement between two weak rankings beat the top
    of one: a page of text whose words matched exactly lost to pages that merely looked alike.)"""
    cut = [sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[:depth] for best in per_row]
    floors = [ranked[-1][1][0] if ranked else 0.0 for ranked in cut]
    listed = [dict(ranked) for ranked in cut]
    out: list[tuple[float, int]] = []
    for item in {item for row in listed for item in row}:
        score, top, vid = 0.0, -np.inf, -1
        for weight, row, floor in zip(weights, listed, floors, strict=True):
            cos, row_vid = row.get(item, (floor, -1))
            score += weight * cos
            if row_vid >= 0 and weight * cos > top:
                top, vid = weight * cos, row_vid
        out.append((score, vid))
    out.sort(key=lambda t: (-t[0], t[1]))
    return [(round(float(score), 6), int(vid)) for score, vid in out[:k]]
