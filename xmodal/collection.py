"""A collection is a directory: SQLite catalog (WAL) + vector index files + a manifest that
records which encoders and settings produced the vectors."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from xmodal import __version__
from xmodal.catalog import Catalog, VectorRecord, check_metadata, utf8_text
from xmodal.config import CollectionConfig, ModelConfig, model_from_spec, with_speech
from xmodal.duplicates import DEFAULT_THRESHOLD, DuplicateGroup, check_threshold, duplicate_groups
from xmodal.embedder import Embedder, stored_infos_match
from xmodal.encoders.registry import EncoderRegistry, default_registry
from xmodal.errors import (
    CollectionBusyError,
    CollectionError,
    CollectionNotFoundError,
    EncoderMismatchError,
    InvalidArgumentError,
    InvalidQueryError,
    NotFoundError,
)
from xmodal.index import IndexConfig, VectorIndex, create_index, load_index
from xmodal.index.registry import index_class
from xmodal.ingest import (
    COLLECTION_CATALOG,
    COLLECTION_FORMAT,
    COLLECTION_MANIFEST,
    IngestReport,
    NullProgress,
    Progress,
    bad_name,
    display_path,
)
from xmodal.search import Query, SearchPipeline
from xmodal.types import Hit, Item, Modality, SearchMode, VectorKind

MANIFEST = COLLECTION_MANIFEST
CATALOG = COLLECTION_CATALOG
INDEX_DIR = "index"
INDEX_STATE = "state.json"
LOCK = "lock"
FORMAT = COLLECTION_FORMAT
MODEL_STATE_KEYS = ("encoders", "dim", "space", "extractors")
PROGRESS_METHODS = ("start", "advance", "close")


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class Collection:
    def __init__(self, path: Path, manifest: dict[str, Any], registry: EncoderRegistry) -> None:
        self._closed = False
        self.path = path
        self.manifest = manifest
        self.config = CollectionConfig.from_dict(manifest["config"])
        self.registry = registry
        self.catalog = Catalog(path / CATALOG)
        self._reconcile_manifest()
        self.embedder = Embedder(self.config, registry)
        self.dim = int(self.manifest["dim"])
        self._verified = False
        self._verify_lock = threading.Lock()
        self._index_generation = -1
        self._lock_depth = 0
        self._lock_owner: int | None = None  # the thread that holds the write lock
        self._index_stale = False  # a write was cut off between the catalog and the index
        self.reembed_report: IngestReport | None = None  # of the last reembed()
        self.index = self._load_or_rebuild_index()
        self.pipeline = SearchPipeline(self.embedder, self.index, self.catalog, self.config.limits)

    # ---- opening ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path = ".xmodal",
        *,
        create: bool = False,
        model: str | ModelConfig | None = None,
        index: str | IndexConfig | None = None,
        reembed: bool = False,
        registry: EncoderRegistry | None = None,
        progress: Progress | None = None,
        asr: str | None = None,
        language: str | None = None,
    ) -> Collection:
        """Open a collection (``create=True`` makes it if absent). Asking for another model
        than the one it was built with is an :class:`EncoderMismatchError` unless ``reembed``
        (told to ``progress``; its report is then :attr:`reembed_report`). ``asr`` names the
        speech engine (``whisper-tiny.en``, ``whisper-base``, ``pocketsphinx``, ``whisper:DIR``,
        ``none``) and ``language`` the language of the recordings (ISO 639-1, ``auto``: detected);
        both are part of the model, so changing them re-extracts with ``reembed``."""
        if not isinstance(path, str | os.PathLike) or not str(path).strip() or "\x00" in str(path):
            raise InvalidArgumentError(f"a collection path must be a folder name (str or Path), got {path!r}")
        if not isinstance(create, bool) or not isinstance(reembed, bool):
            raise InvalidArgumentError("create and reembed must be True or False")
        if registry is not None and not isinstance(registry, EncoderRegistry):
            raise InvalidArgumentError(f"registry must be an EncoderRegistry, got {registry!r}")
        root = Path(path).expanduser().absolute()
        if bad_name(root):
            raise CollectionError(f"{display_path(root)}: a collection path must be valid UTF-8")
        registry = registry or default_registry()
        manifest_path = root / MANIFEST
        if not manifest_path.exists():
            if root.exists() and not root.is_dir():
                raise CollectionError(f"{root} is a file, not a collection directory")
            if root.is_dir() and any(root.iterdir()):
                raise CollectionError(f"{root} is not an xmodal collection (no {MANIFEST})")
            if not create:
                raise CollectionNotFoundError(
                    f"no collection at {root}; create one with: xmodal index FOLDER -c {path}"
                )
            config = cls._config_for(model, index, registry, None)
            config = replace(config, model=with_speech(config.model, asr, language))
            return cls._create(root, config, registry)
        manifest = cls._read_manifest(manifest_path)
        coll = cls(root, manifest, registry)
        wanted_model = cls._model_config(model, registry) if model is not None else None
        if asr is not None or language is not None:
            wanted_model = with_speech(wanted_model or coll.config.model, asr, language)
        if wanted_model is not None and wanted_model != coll.config.model:
            if not reembed:
                coll.close()
                raise EncoderMismatchError(
                    f"collection {root} was built with model {_describe(coll.config.model)}; you asked for "
                    f"{_describe(wanted_model)}: pass --reembed to re-embed every item with the new model"
                )
            coll.reembed(wanted_model, progress)
        elif reembed:
            coll.reembed(coll.config.model, progress)
        wanted_index = _index_config(index) if index is not None else None
        if wanted_index is not None and wanted_index != coll.config.index:
            coll._switch_index(wanted_index)
        return coll

    @staticmethod
    def _model_config(model: str | ModelConfig | None, registry: EncoderRegistry) -> ModelConfig:
        if isinstance(model, ModelConfig):
            return model
        if model is not None and not isinstance(model, str):
            raise InvalidArgumentError(
                f"model must be a spec like 'minilm' or 'clip:DIR', or a ModelConfig; got {model!r}"
            )
        return model_from_spec(model, registry.modalities_of)

    @classmethod
    def _config_for(
        cls, model: Any, index: Any, registry: EncoderRegistry, base: CollectionConfig | None
    ) -> CollectionConfig:
        base = base or CollectionConfig()
        return replace(
            base,
            model=cls._model_config(model, registry),
            index=_index_config(index) if index is not None else base.index,
        )

    @classmethod
    def _create(cls, root: Path, config: CollectionConfig, registry: EncoderRegistry) -> Collection:
        embedder = Embedder(config, registry)
        infos = embedder.infos()  # loads the towers: fails before anything is written
        extractors = embedder.extractor_versions()  # checks the speech engine and its language
        root.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": FORMAT,
            "format_version": 1,
            "xmodal_version": __version__,
            "created_at": time.time(),
            "config": config.to_dict(),
            "encoders": infos,
            "extractors": extractors,
            "dim": infos["text"]["dim"],
            "space": infos["text"]["space"],
        }
        _write_json_atomic(root / MANIFEST, manifest)
        return cls(root, manifest, registry)

    @staticmethod
    def _read_manifest(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CollectionError(f"{path}: corrupt manifest ({exc})") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT or "config" not in data or "dim" not in data:
            raise CollectionError(f"{path}: not an xmodal collection manifest")
        return data

    def close(self) -> None:
        """Release the catalog; the collection can no longer be used (closing twice is fine)."""
        self._closed = True
        self.catalog.close()

    def _check_open(self) -> None:
        if self._closed:
            raise CollectionError(f"{self.path}: this Collection was closed; open it again to use it")

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _model_state(self) -> dict[str, Any]:
        return {key: self.manifest.get(key) for key in MODEL_STATE_KEYS} | {"model": self.config.model.to_dict()}

    def _reconcile_manifest(self) -> None:
        """The catalog records which model made its vectors in the same transaction as the
        vectors. If a crash came between that commit and the manifest write (a re-embed), the
        manifest is stale: repair it from the catalog, the source of truth."""
        state = self.catalog.model_state()
        if state is None:
            if not self.catalog.read_only:
                self.catalog.set_model_state(self._model_state())
            return
        if state != self._model_state():
            self._adopt_model_state(state)
            if not self.catalog.read_only:
                _write_json_atomic(self.path / MANIFEST, self.manifest)

    def _adopt_model_state(self, state: dict[str, Any]) -> None:
        """Take the model recorded in the catalog (config and manifest, in memory)."""
        self.config = replace(self.config, model=ModelConfig.from_dict(state["model"]))
        self.manifest.update({key: state.get(key) for key in MODEL_STATE_KEYS})
        self.manifest["config"] = self.config.to_dict()

    # ---- index state ------------------------------------------------------------------------
    def _load_or_rebuild_index(self) -> VectorIndex:
        index_dir = self.path / INDEX_DIR
        state_path = index_dir / INDEX_STATE
        generation = self.catalog.generation
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            if state.get("generation") == generation and state.get("kind") == self.config.index.kind:
                index = load_index(self.config.index, index_dir, self.dim)
                if len(index) == self.catalog.vector_count():
                    self._index_generation = generation
                    return index
        except (OSError, ValueError, CollectionError):
            pass
        return self._rebuild_index(self.config.index)

    def _rebuild_index(self, config: IndexConfig) -> VectorIndex:
        """The catalog holds every vector: the ANN index is derived and can always be rebuilt."""
        generation = self.catalog.generation
        index = create_index(config, self.dim, self.path / INDEX_DIR)
        for ids, vecs in self.catalog.all_vectors(self.dim):
            index.add(ids, vecs)
        self.index = index
        self._index_generation = generation
        if (self.path / MANIFEST).exists():
            self._save_rebuilt(generation)
        return index

    def _save_rebuilt(self, generation: int) -> None:
        """A writer (holding the write lock) saves the index it rebuilt. A reader (opening, or
        refreshing after another process's writes) saves it only when no writer is at work and
        nothing was written since it read the vectors: its files must never interleave with a
        writer's save. Otherwise the rebuilt index serves from memory and a writer saves later."""
        if self._lock_depth:
            self._save_index()
            return
        with self._try_write_lock() as held:
            if held and self.catalog.generation == generation:
                self._save_index()

    def refresh(self) -> bool:
        """Pick up writes made by another process (e.g. `xmodal index` while `xmodal serve`
        runs): when the catalog's generation moved past the index's, follow a re-embed with
        another model (see :meth:`model_key`) and reload or rebuild the index."""
        self._check_open()
        if self.catalog.generation == self._index_generation:
            return False
        self._follow_model_change()
        self.index = self._load_or_rebuild_index()
        self.pipeline.index = self.index
        return True

    @property
    def model_key(self) -> str:
        """Identifies the models that made the stored vectors; changes when another process
        re-embeds the collection. Query vectors cached under one key must not meet another."""
        return json.dumps(self._model_state(), sort_keys=True)

    def _follow_model_change(self) -> None:
        """The catalog records the model with the vectors (the source of truth): when another
        process re-embedded with another model, load that model for queries and new files."""
        state = self.catalog.model_state()
        if state is None or state == self._model_state():
            return
        self._adopt_model_state(state)
        self.registry.reload_changed(self.config.model.towers().values())  # a folder retrained in place
        self.dim = int(state["dim"])
        self._verified = False
        self._load_models()

    def _load_models(self) -> None:
        """A new embedder over the registry's models as they are now, and the pipeline on it."""
        self.embedder = Embedder(self.config, self.registry)
        self.pipeline = SearchPipeline(self.embedder, self.index, self.catalog, self.config.limits)

    def _save_index(self) -> None:
        """Called under the write lock with a current index (see :meth:`_save_rebuilt`)."""
        index_dir = self.path / INDEX_DIR
        self.index.save(index_dir)
        self._index_generation = self.catalog.generation
        _write_json_atomic(
            index_dir / INDEX_STATE,
            {"generation": self.catalog.generation, "kind": self.config.index.kind, "count": len(self.index)},
        )

    def _switch_index(self, config: IndexConfig) -> None:
        with self._write_lock():
            self.config = replace(self.config, index=config)
            self._update_manifest()
            self.pipeline.index = self._rebuild_index(config)

    def _update_manifest(self, **extra: Any) -> None:
        self.manifest["config"] = self.config.to_dict()
        self.manifest.update(extra)
        _write_json_atomic(self.path / MANIFEST, self.manifest)

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Hold the collection's write lock for a block (:class:`CollectionBusyError` if another
        writer has it); the thread holding it may call :meth:`add` and :meth:`delete` inside."""
        return self._write_lock()

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        if self.catalog.read_only:
            raise CollectionError(f"{self.path} is read-only: it can be searched, not changed")
        if self._lock_owner == threading.get_ident():  # this thread holds it (see writing())
            yield
            return
        with self._try_write_lock() as held:
            if not held:
                raise CollectionBusyError(
                    f"another writer (an `xmodal index` or a server request) is changing {self.path}; "
                    "try again when it is done"
                )
            self._lock_owner = threading.get_ident()
            try:
                yield
            finally:
                self._lock_owner = None

    @contextlib.contextmanager
    def _try_write_lock(self) -> Iterator[bool]:
        """The collection's write lock (an exclusive ``flock``), if free: yields whether it is held."""
        if self.catalog.read_only:
            yield False
            return
        fh: IO[str] = open(self.path / LOCK, "a+")  # noqa: SIM115 - held for the block
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            self._lock_depth += 1
            try:
                yield True
            finally:
                self._lock_depth -= 1
        finally:
            fh.close()

    def encoder_change(self) -> str | None:
        """None when the installed models make the stored vectors; else what changed (e.g. a new
        version of the bundled model). Loads the models."""
        return stored_infos_match(self.manifest.get("encoders", {}), self.embedder.infos())

    def extractor_change(self) -> str | None:
        """None when the installed speech recogniser is the one that made the stored
        transcripts; else what changed and how to re-extract (the vectors stay searchable:
        only recordings indexed from now on would be heard by the new one)."""
        stored = _stored_asr(self.manifest)
        current = self.embedder.extractor_versions().get("asr")
        if stored == current or (stored and current and set(stored) == {"name"} and stored["name"] == current["name"]):
            return None
        fix = f"re-extract with: xmodal index --reembed -c {self.path}"
        return (
            f"recordings were transcribed by {_engine(stored)}; the installed recogniser is {_engine(current)}; {fix}"
        )

    def verify_encoders(self) -> None:
        """Models load lazily; the first time they do (and after following another process's
        re-embed), check they still make the stored vectors: :class:`EncoderMismatchError` if not."""
        if self._verified:
            return
        with self._verify_lock:  # two threads: the second must not judge by models the first replaced
            if self._verified:
                return
            change = self.encoder_change()
            if change and self._reload_changed_models():
                change = self.encoder_change()
            if change:
                fix = f"re-embed with: xmodal index --reembed -c {self.path}"
                raise EncoderMismatchError(f"{self.path}: {change}; {fix}")
            self._verified = True

    def _reload_changed_models(self) -> bool:
        """A model directory rewritten since this process loaded it (retrained into the same
        folder, then the collection re-embedded by another process): load it again."""
        if not self.registry.reload_changed(self.config.model.towers().values()):
            return False
        self._load_models()
        return True

    # ---- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        self._check_open()
        return self.catalog.count()

    def get(self, item_id: str) -> Item:
        self._check_open()
        _strings([item_id], "an item id")
        item = self.catalog.get(item_id)
        if item is None:
            raise NotFoundError(f"no item with id {item_id!r}")
        return item

    def items(self) -> Iterator[Item]:
        self._check_open()
        return self.catalog.iter_items()

    def stats(self) -> dict[str, Any]:
        self._check_open()
        return {
            "path": str(self.path),
            "items": self.catalog.count(),
            "vectors": self.catalog.vector_count(),
            "looks": self.catalog.look_count(),  # photos kept for similar photos and duplicates
            "by_modality": self.catalog.counts_by_modality(),
            "model": self.config.model.to_dict(),
            "index": self.config.index.to_dict(),
            "dim": self.dim,
            "speech": _engine(_stored_asr(self.manifest)),
        }

    def search(
        self,
        query: Query | str,
        k: int = 10,
        modality: Modality | str | None = None,
        where: dict[str, Any] | None = None,
        allow_items: set[str] | None = None,
        mode: SearchMode | str | None = None,
    ) -> list[Hit]:
        """The best ``k`` items for ``query``. ``mode``: ``dense`` (default; by meaning, across
        modalities, scores are cosines), ``keyword`` (BM25 over the text kept with the items:
        text chunks, OCR text, transcripts) or ``hybrid`` (both rankings fused by reciprocal
        rank; scores are fusion scores, about 1/60 per ranking that holds the item first)."""
        self._check_open()
        if isinstance(query, str):
            query = Query.text(query)
        if not isinstance(query, Query):
            raise InvalidQueryError(f"a query is text (str) or a Query (Query.image(path), ...), got {query!r}")
        if allow_items is not None and not isinstance(allow_items, set | frozenset):
            raise InvalidArgumentError("allow_items must be a set of item ids")
        mod = Modality.parse(modality) if modality is not None else None
        mode = SearchMode.parse(mode)
        self.refresh()
        if mode is not SearchMode.KEYWORD:  # keywords match stored text: no model is loaded
            self.verify_encoders()
        return self.pipeline.search(query, k=k, modality=mod, where=where, allow_items=allow_items, mode=mode)

    def duplicates(self, threshold: float | None = None, allow_items: set[str] | None = None) -> list[DuplicateGroup]:
        """Groups of near-identical pictures (resized, recompressed, cropped a little,
        colour-shifted) by their looks, cosine >= ``threshold`` (default
        :data:`xmodal.duplicates.DEFAULT_THRESHOLD`); among ``allow_items`` when given. Photos
        have looks; drawings and icons do not (their exact copies share a content hash)."""
        self._check_open()
        if allow_items is not None and not isinstance(allow_items, set | frozenset):
            raise InvalidArgumentError("allow_items must be a set of item ids")
        threshold = check_threshold(DEFAULT_THRESHOLD if threshold is None else threshold)
        self.refresh()
        ids, _, looks = self.catalog.looks()
        if allow_items is not None:
            keep = [i for i, item in enumerate(ids) if item in allow_items]
            ids, looks = [ids[i] for i in keep], looks[keep]
        return duplicate_groups(ids, looks, threshold)

    # ---- writing ----------------------------------------------------------------------------
    def delete(self, ids: Iterable[str] | str) -> int:
        self._check_open()
        ids = _strings([ids] if isinstance(ids, str) else ids, "item ids")
        with self._write_lock():
            self.refresh()  # never save an index that misses another process's writes
            with self.catalog.transaction():
                deleted, vids = self.catalog.delete_items(list(ids))
            if vids:
                self.index.remove(np.asarray(vids, dtype=np.int64))
            self._save_index()
        return len(deleted)

    def add(
        self,
        paths: Iterable[str | Path] | str | Path,
        *,
        metadata: dict[str, Any] | None = None,
        prune: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        batch_size: int = 32,
    ) -> IngestReport:
        """Index files and folders. Unchanged files are skipped by content hash; a file that
        fails is recorded with its reason and the rest carries on. A collection whose stored
        vectors an installed model no longer makes (e.g. after a model upgrade) is an
        :class:`EncoderMismatchError` before any file is read, even when every file is
        unchanged, so re-running ``xmodal index`` says what to do instead of reporting success."""
        from xmodal.ingest_run import IngestRun

        self._check_open()
        # one path given alone is one path, not its characters (a leading "/" would be the root)
        todo = _paths([paths] if isinstance(paths, str | os.PathLike) else paths)
        metadata = check_metadata(metadata)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= 4096:
            raise InvalidArgumentError(f"batch_size must be a whole number from 1 to 4096, got {batch_size!r}")
        if progress is not None and not all(
            callable(getattr(progress, m, None)) for m in ("start", "advance", "close")
        ):
            raise InvalidArgumentError("progress must have start(total), advance(failed) and close() methods")
        with self._write_lock():
            self.refresh()  # never save an index that misses another process's writes
            self.verify_encoders()
            run = IngestRun(self, metadata, force, progress or NullProgress(), batch_size)
            try:
                report = run.run(todo, prune)
            finally:
                self._save_after_write()
        return report

    def _set_metadata(self, item_id: str, metadata: dict[str, Any]) -> bool:
        """Set metadata fields of one item without re-reading its file (others stay); True
        when anything changed. Called by an ingest run, under the write lock."""
        with self.catalog.transaction():
            changed = self.catalog.merge_metadata(item_id, check_metadata(metadata))
        if changed:  # the vectors did not change: the index stays current
            self._index_generation = self.catalog.generation
        return changed

    def _write_items(self, entries: Sequence[tuple[Item, int, list[VectorRecord]]]) -> None:
        removed_all: list[int] = []
        added: list[tuple[int, np.ndarray]] = []
        was_stale = self._index_stale  # an earlier write cut off: only a rebuild repairs it
        self._index_stale = True  # until the index has what the catalog committed
        with self.catalog.transaction():
            for item, mtime_ns, records in entries:
                removed, vids = self.catalog.upsert_item(item, mtime_ns, records)
                removed_all.extend(removed)
                indexed = (r.embedding for r in records if r.kind is not VectorKind.LOOK)
                added.extend(zip(vids, indexed, strict=True))
        if removed_all:
            self.index.remove(np.asarray(removed_all, dtype=np.int64))
        if added:
            self.index.add(
                np.asarray([v for v, _ in added], dtype=np.int64), np.stack([e for _, e in added]).astype(np.float32)
            )
        # the writer's own index is current (a search in between, as the API allows, must not
        # take the new generation for another process's write and rebuild)
        self._index_generation = self.catalog.generation
        self._index_stale = was_stale

    def _save_after_write(self) -> None:
        """End of a write: save the index, rebuilt first from the catalog if the write was cut
        off (Ctrl-C) after its catalog commit but before the index had the vectors."""
        if self._index_stale:
            self._rebuild_index(self.config.index)
            self.pipeline.index = self.index
            self._index_stale = False
        self._save_index()

    def reembed(self, model: ModelConfig, progress: Progress | None = None) -> IngestReport:
        """Re-embed every item with ``model`` (from its file, or from its stored text when the
        file is gone) and record the new encoders in the manifest."""
        from xmodal.ingest_run import reembed_all

        self._check_open()
        if not isinstance(model, ModelConfig):
            raise InvalidArgumentError(f"reembed takes a ModelConfig, got {model!r}")
        with self._write_lock():
            new_config = replace(self.config, model=model)
            self.registry.reload_changed(model.towers().values())  # a folder retrained since it loaded
            embedder = Embedder(new_config, self.registry)
            infos = embedder.infos()
            state = {
                "encoders": infos,
                "dim": int(infos["text"]["dim"]),
                "space": infos["text"]["space"],
                "extractors": embedder.extractor_versions(),
                "model": model.to_dict(),
            }
            # vectors and the model that made them are committed together (see _reconcile_manifest)
            report = reembed_all(self, embedder, state, progress=progress)
            self.config, self.embedder, self.dim = new_config, embedder, int(state["dim"])
            self._update_manifest(**{key: state[key] for key in MODEL_STATE_KEYS})
            self._rebuild_index(self.config.index)
            self.pipeline = SearchPipeline(self.embedder, self.index, self.catalog, self.config.limits)
            self._verified = True
        self.reembed_report = report
        return report


def _listed(values: Any) -> list[Any] | None:
    """The elements of a list-like argument, or None for anything else (bytes, a dict, 5)."""
    return list(values) if isinstance(values, Iterable) and not isinstance(values, bytes | dict) else None


def _strings(values: Any, what: str) -> list[str]:
    items = _listed(values)
    if items is None or not all(isinstance(v, str) and utf8_text(v) for v in items):
        raise InvalidArgumentError(f"{what} must be text (one string, or a list of them)")
    return items


def _paths(values: Any) -> list[str | Path]:
    items = _listed(values)
    if items is None or not all(isinstance(v, str | os.PathLike) and str(v).strip() for v in items):
        raise InvalidArgumentError("paths must be files or folders given as str or Path (one, or a list of them)")
    if any("\x00" in str(v) for v in items):
        raise InvalidArgumentError("a path cannot contain a NUL character")
    return [v if isinstance(v, str) else Path(v) for v in items]


def _stored_asr(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The speech engine a manifest says made its transcripts (before Whisper only its name)."""
    stored = manifest.get("extractors", {}).get("asr")
    return {"name": stored} if isinstance(stored, str) else stored or None


def _engine(described: dict[str, Any] | None) -> str:
    if not described:
        return "none"
    model = described.get("model")
    return " ".join(
        str(v) for v in (described.get("name"), f"({model})" if model else None, described.get("version")) if v
    )


def _describe(model: ModelConfig) -> str:
    speech = f"asr={model.asr}" + (f" ({model.language})" if model.language else "")
    return ", ".join([*(f"{role}={spec}" for role, spec in model.towers().items()), speech])


def _index_config(index: str | IndexConfig) -> IndexConfig:
    """Resolve and check the engine before anything is written: a typo or a missing optional
    library must not leave a manifest naming an index that cannot be built."""
    if not isinstance(index, IndexConfig | str):
        raise InvalidArgumentError(f"index must be a kind (flat, hnsw, milvus) or an IndexConfig, got {index!r}")
    config = index if isinstance(index, IndexConfig) else IndexConfig(kind=index)
    index_class(config.kind).check_params(config.params)
    return config
