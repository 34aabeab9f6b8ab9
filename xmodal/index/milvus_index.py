"""Milvus backend: milvus-lite (a local file, in-process server) or a Milvus server/cluster
(``params={"uri": "http://host:19530"}``), the path from one machine to a distributed engine.

Install with ``pip install 'xmodal[milvus]'``. Filters become ``id in [...]`` expressions inside
the vector search (in chunks, merged exactly), so k results come back when k are allowed.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xmodal.errors import CollectionError, InvalidArgumentError, MissingDependencyError
from xmodal.index.base import VectorIndex, empty_result

DB_FILE = "milvus.db"
MAX_TOPK = 16384  # Milvus' limit on k
FILTER_CHUNK = 4096  # ids per "id in [...]" expression
BATCH = 2000


def _client(uri: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise MissingDependencyError("the milvus index needs pymilvus: pip install 'xmodal[milvus]'") from exc
    try:
        return MilvusClient(uri)
    except Exception as exc:
        raise CollectionError(f"cannot open Milvus at {uri}: {str(exc).splitlines()[0]}") from exc


class MilvusIndex(VectorIndex):
    kind = "milvus"
    PARAMS: ClassVar[dict[str, tuple[Any, ...]] | None] = {
        "uri": (str, None),  # a Milvus server (http://host:19530); default: milvus-lite in the collection
        "collection": (str, None),
        "index_type": (str, ("FLAT", "HNSW")),
    }

    @classmethod
    def check_params(cls, params: Any) -> dict[str, Any]:
        params = super().check_params(params)
        if "collection" in params and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", params["collection"]):
            raise InvalidArgumentError("index setting 'collection' must be letters, digits and '_' (Milvus names)")
        return params

    def __init__(self, dim: int, location: Path | None = None, **params: Any) -> None:
        super().__init__(dim, location, **params)
        self.name = str(params.get("collection", "xmodal"))
        self.index_type = str(params.get("index_type", "FLAT")).upper()
        self._client = _client(self._uri(location, params))
        if self._client.has_collection(self.name):
            self._client.drop_collection(self.name)  # a new index starts empty
        self._create()

    @staticmethod
    def _uri(location: Path | None, params: dict[str, Any]) -> str:
        if params.get("uri"):
            return str(params["uri"])
        base = location or Path(tempfile.mkdtemp(prefix="xmodal-milvus-"))
        base.mkdir(parents=True, exist_ok=True)
        return str(base / DB_FILE)

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=self.dim)
        index_params = self._client.prepare_index_params()
        extra = {"M": 32, "efConstruction": 80} if self.index_type == "HNSW" else {}
        index_params.add_index(field_name="vec", index_type=self.index_type, metric_type="IP", params=extra)
        self._client.create_collection(self.name, schema=schema, index_params=index_params, consistency_level="Strong")

    # ---- contract ---------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._check_vectors(ids, vectors)
        for start in range(0, ids.shape[0], BATCH):
            rows = [
                {"id": int(i), "vec": v.tolist()}
                for i, v in zip(ids[start : start + BATCH], vectors[start : start + BATCH], strict=True)
            ]
            self._client.upsert(self.name, rows)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        present = self._present(ids)
        if present:
            for start in range(0, len(present), FILTER_CHUNK):
                self._client.delete(self.name, ids=present[start : start + FILTER_CHUNK])
        return len(present)

    def _present(self, ids: np.ndarray) -> list[int]:
        found: list[int] = []
        for start in range(0, ids.shape[0], FILTER_CHUNK):
            part = [int(i) for i in ids[start : start + FILTER_CHUNK]]
            rows = self._client.query(self.name, filter=f"id in {part}", output_fields=["id"])
            found.extend(int(r["id"]) for r in rows)
        return found

    def ids(self) -> np.ndarray:
        out: list[int] = []
        iterator = self._client.query_iterator(self.name, filter="id >= 0", output_fields=["id"], batch_size=10000)
        while batch := iterator.next():
            out.extend(int(r["id"]) for r in batch)
        iterator.close()
        return np.asarray(out, dtype=np.int64)

    def __len__(self) -> int:
        rows = self._client.query(self.name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def search(self, queries: np.ndarray, k: int, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = self._check_queries(queries, k)
        scores, ids = empty_result(queries.shape[0], k)
        limit = min(k, MAX_TOPK)
        if allow is not None and len(allow) == 0:
            return scores, ids
        filters = [""] if allow is None else _chunked_filters(np.unique(np.asarray(allow, dtype=np.int64)))
        data = [q.tolist() for q in queries]
        merged: list[list[tuple[float, int]]] = [[] for _ in data]
        params = {"metric_type": "IP", "params": {"ef": max(64, 2 * limit)} if self.index_type == "HNSW" else {}}
        for expr in filters:
            result = self._client.search(self.name, data=data, limit=limit, filter=expr, search_params=params)
            for qi, hits in enumerate(result):
                merged[qi].extend((float(h["distance"]), int(h["id"])) for h in hits)
        for qi, found in enumerate(merged):
            best = sorted(found, key=lambda t: (-t[0], t[1]))[:limit]
            for j, (score, vid) in enumerate(best):
                scores[qi, j], ids[qi, j] = score, vid
        return scores, ids

    def save(self, path: Path) -> None:
        self._client.flush(self.name)

    @classmethod
    def load(cls, path: Path, dim: int, **params: Any) -> MilvusIndex:
        uri = cls._uri(path, params)
        if not params.get("uri") and not Path(uri).exists():
            raise CollectionError(f"{path}: no Milvus data ({DB_FILE} is missing)")
        obj = cls.__new__(cls)
        VectorIndex.__init__(obj, dim, path, **params)
        obj.name = str(params.get("collection", "xmodal"))
        obj.index_type = str(params.get("index_type", "FLAT")).upper()
        obj._client = _client(uri)
        if not obj._client.has_collection(obj.name):
            raise CollectionError(f"{path}: Milvus has no collection {obj.name!r}")
        found = obj._client.describe_collection(obj.name)
        vec = next((f for f in found.get("fields", []) if f.get("name") == "vec"), None)
        if vec is not None and int(vec.get("params", {}).get("dim", dim)) != dim:
            raise CollectionError(f"{path}: Milvus vectors are not {dim}-d")
        obj._client.load_collection(obj.name)
        return obj


def _chunked_filters(allow: np.ndarray) -> list[str]:
    if allow.size == 0:
        raise InvalidArgumentError("empty filter")
    return [f"id in {allow[s : s + FILTER_CHUNK].tolist()}" for s in range(0, allow.shape[0], FILTER_CHUNK)]
