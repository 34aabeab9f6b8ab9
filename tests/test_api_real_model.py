"""End to end with the real default model (MiniLM text hub, offline): upload over HTTP, search by
meaning, with access control applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from xmodal.access.store import AccessStore
from xmodal.api import create_app
from xmodal.api.settings import ServeSettings
from xmodal.collection import Collection

pytestmark = pytest.mark.slow


def test_real_model_semantic_search_over_http(tmp_path: Path) -> None:
    coll = Collection.open(tmp_path / "coll", create=True)
    store = AccessStore(coll.path)
    admin, _ = store.create_key("admin", admin=True)
    user, _ = store.create_key("uma", groups=["staff"])
    store.close()
    docs = {
        "cat.txt": b"The kitten curled up on the sofa and purred all afternoon.",
        "rain.txt": b"Heavy rainfall and thunderstorms are expected over the weekend.",
        "bread.txt": b"Knead the dough, let it rise, then bake the loaf until golden.",
        "salary.txt": b"Confidential: the salaries of the board members for next year.",
    }
    with TestClient(create_app(ServeSettings(collection=coll.path), collection=coll)) as client:
        a = {"Authorization": f"Bearer {admin}"}
        u = {"Authorization": f"Bearer {user}"}
        public = {k: v for k, v in docs.items() if k != "salary.txt"}
        files = [("files", (n, d, "text/plain")) for n, d in public.items()]
        assert client.post("/items", headers=a, files=files, data={"access": "group:staff"}).status_code == 201
        files = [("files", ("salary.txt", docs["salary.txt"], "text/plain"))]
        assert client.post("/items", headers=a, files=files, data={"access": "user:admin"}).status_code == 201

        def top(query: str, headers: dict[str, str]) -> list[str]:
            r = client.post("/search", headers=headers, json={"text": query, "k": 4})
            assert r.status_code == 200, r.text
            return [Path(h["uri"]).name for h in r.json()["hits"]]

        assert top("a pet cat sleeping", u)[0] == "cat.txt"
        assert top("weather forecast storm", u)[0] == "rain.txt"
        assert top("how to make bread", u)[0] == "bread.txt"
        assert top("how much do executives earn", a)[0] == "salary.txt"
        assert "salary.txt" not in top("how much do executives earn", u)
    coll.close()
