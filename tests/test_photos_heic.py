"""Phone photos: HEIC/HEIF decoded (pillow-heif), turned upright by EXIF orientation, and the
EXIF capture time, camera and GPS position kept as filterable metadata (JPEG alike)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import BagOfWordsEncoder, PixelEncoder
from xmodal.collection import Collection
from xmodal.config import ModelConfig
from xmodal.encoders.registry import EncoderRegistry
from xmodal.errors import MediaError
from xmodal.media.detect import detect_file
from xmodal.media.image import load_image, photo_metadata
from xmodal.types import Modality


def exif(taken: str | None = "2024:06:15 08:30:00", orientation: int = 6, gps: bool = True, **tags: Any) -> bytes:
    e = Image.Exif()
    e[0x010F], e[0x0110], e[0x0112] = tags.get("make", "Apple"), tags.get("model", "iPhone 15 Pro"), orientation
    if taken:
        e.get_ifd(0x8769)[0x9003] = taken
    if gps:
        g = e.get_ifd(0x8825)
        g[1], g[2], g[3], g[4] = "S", (33.0, 51.0, 54.0), "E", (151.0, 12.0, 36.0)
    return e.tobytes()


def photo(path: Path, fmt: str, size: tuple[int, int] = (64, 48), **kw: Any) -> Path:
    import pillow_heif

    pillow_heif.register_heif_opener()
    img = Image.new("RGB", size, (200, 30, 30))
    img.paste((20, 20, 200), (0, 0, size[0] // 2, size[1]))  # left half blue: orientation is visible
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt, exif=exif(**kw))
    return path


@pytest.mark.parametrize(
    ("fmt", "name", "mime"), [("HEIF", "IMG_0001.HEIC", "image/heic"), ("JPEG", "p.jpg", "image/jpeg")]
)
def test_photos_are_upright_with_their_exif(tmp_path: Path, fmt: str, name: str, mime: str) -> None:
    path = photo(tmp_path / name, fmt)
    assert detect_file(path).modality is Modality.IMAGE and detect_file(path).mime == mime
    img = load_image(path)
    assert img.size == (48, 64)  # orientation 6: turned a quarter
    top = img.getpixel((24, 2))
    assert top[2] > 150 and top[0] < 100  # the blue half is now on top
    assert photo_metadata(img) == {
        "taken": "2024-06-15T08:30:00",
        "camera": "Apple iPhone 15 Pro",
        "gps_lat": pytest.approx(-33.865, abs=1e-3),
        "gps_lon": pytest.approx(151.21, abs=1e-3),
    }


def test_odd_exif_fields_are_left_out() -> None:
    img = Image.new("RGB", (8, 8))
    assert photo_metadata(img) == {}
    raw = Image.Exif()
    raw[0x010F], raw[0x0110] = "Canon", "Canon EOS R5"  # the model names the maker already
    raw.get_ifd(0x8769)[0x9003] = "not a date"
    raw.get_ifd(0x8825)[2] = (1.0, 2.0)  # not degrees, minutes, seconds
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=raw.tobytes())
    assert photo_metadata(Image.open(io.BytesIO(buf.getvalue()))) == {"camera": "Canon EOS R5"}


def test_broken_heic_files_fail_clearly(tmp_path: Path) -> None:
    good = photo(tmp_path / "a.heic", "HEIF").read_bytes()
    for name, data in (("empty.heic", good[:40]), ("noimage.heic", good[:24] + bytes(200)),
                       ("cut.heic", good[: len(good) // 2])):  # fmt: skip
        path = tmp_path / name
        path.write_bytes(data)
        assert detect_file(path).modality is Modality.IMAGE
        with pytest.raises(MediaError):
            load_image(path)


def test_a_phone_folder_is_indexed_and_filtered_by_date_and_place(tmp_path: Path) -> None:
    media = tmp_path / "DCIM"
    photo(media / "IMG_0001.HEIC", "HEIF", taken="2023:12:24 18:00:00")
    photo(media / "IMG_0002.HEIC", "HEIF", taken="2024:07:01 09:15:00")
    photo(media / "IMG_0003.JPG", "JPEG", taken="2024:08:02 10:00:00", gps=False)
    photo(media / "IMG_0004.jpg", "HEIF", taken=None)  # a HEIC named .jpg, no capture time
    (media / "IMG_0005.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + bytes(100))
    reg = EncoderRegistry()
    reg.register("bow", BagOfWordsEncoder)
    reg.register("pixels", PixelEncoder)
    model = ModelConfig(text="bow", photo=None, image="pixels", ocr=None, asr=None)
    with Collection.open(tmp_path / "c", create=True, registry=reg, model=model) as coll:
        report = coll.add([media])
        assert report.added == 4 and [Path(p).name for p, _ in report.failures] == ["IMG_0005.HEIC"]
        meta = {i.metadata["name"]: i.metadata for i in coll.items()}
        assert meta["IMG_0004.jpg"]["mime"] == "image/heic" and "taken" not in meta["IMG_0004.jpg"]
        assert meta["IMG_0001.HEIC"]["width"] == 48 and meta["IMG_0001.HEIC"]["height"] == 64

        def found(where: dict[str, Any]) -> set[str]:
            return {h.metadata["name"] for h in coll.search("red", k=10, where=where)}

        assert found({"taken": {">=": "2024-01-01"}}) == {"IMG_0002.HEIC", "IMG_0003.JPG"}
        assert found({"gps_lat": {"<": 0}, "taken": {"<": "2024-01-01"}}) == {"IMG_0001.HEIC"}
        assert found({"camera": "Apple iPhone 15 Pro"}) == {"IMG_0001.HEIC", "IMG_0002.HEIC", "IMG_0003.JPG",
                                                            "IMG_0004.jpg"}  # fmt: skip


def test_an_uploaded_heic_has_a_jpeg_preview(tmp_path: Path) -> None:
    from tests.api_support import make_env

    data = photo(tmp_path / "IMG_0009.HEIC", "HEIF").read_bytes()
    for env in make_env(tmp_path / "api"):
        r = env.upload("admin", {"IMG_0009.HEIC": data}, access="public")
        assert r.status_code == 201 and r.json()["report"]["added"] == 1, r.text
        item_id = r.json()["items"][0]["id"]
        meta = env.client.get(f"/items/{item_id}", headers=env.h("bob")).json()["metadata"]
        assert meta["mime"] == "image/heic" and meta["taken"] == "2024-06-15T08:30:00"
        preview = env.client.get(f"/items/{item_id}/preview", headers=env.h("bob"))
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(preview.content)).size == (48, 64)  # upright
