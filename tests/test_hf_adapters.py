"""CLIP / SigLIP / CLAP adapters on tiny random checkpoints built offline (tests/hf_tiny.py).

The reference vectors are computed here with the model and its own processor classes, the way
the transformers docs do it; the adapter must agree, which shows its preprocessing matches.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from hf_tiny import make_tiny_clap, make_tiny_clip, make_tiny_siglip, make_tiny_siglip2  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

from xmodal.encoders.base import Encoder  # noqa: E402
from xmodal.encoders.hf_clap import _seeded_numpy  # noqa: E402
from xmodal.encoders.registry import EncoderRegistry  # noqa: E402
from xmodal.errors import InvalidQueryError, ModelError  # noqa: E402
from xmodal.media.audio import AudioClip  # noqa: E402
from xmodal.types import Modality  # noqa: E402

TEXTS = ["a cat", "a red dog", "the quick brown fox jumps over the lazy dog", "dog"]


def _image(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8), "RGB")


def _normalise(x: Any) -> np.ndarray:
    out = x.pooler_output if hasattr(x, "pooler_output") else x
    arr = out.detach().numpy().astype(np.float32)
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def _load(spec: str) -> Encoder:
    return EncoderRegistry().load(spec)  # a fresh registry: no cache shared between tests


# ---- CLIP and SigLIP ---------------------------------------------------------------------------


def _siglip_builder(directory: Path) -> Path:
    pytest.importorskip("sentencepiece")
    return make_tiny_siglip(directory)


VISION_MODELS: dict[str, tuple[str, Callable[[Path], Path], str, Any]] = {
    # case: (encoder name, builder, transformers class prefix, text padding the docs use for it)
    "clip": ("clip", make_tiny_clip, "CLIP", True),
    "siglip": ("siglip", _siglip_builder, "Siglip", "max_length"),
    "siglip2": ("siglip", make_tiny_siglip2, "Siglip2", "max_length"),
}
_CASES: dict[Path, str] = {}  # model directory -> case


@pytest.fixture(scope="module", params=sorted(VISION_MODELS))
def vision_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    case = request.param
    name, builder = VISION_MODELS[case][:2]
    directory = builder(tmp_path_factory.mktemp(case) / "model")
    _CASES[directory] = case
    return name, directory


def _reference_vision(directory: Path, texts: list[str], images: list[Image.Image]):
    import transformers

    prefix, padding = VISION_MODELS[_CASES[directory]][2:]
    model = getattr(transformers, f"{prefix}Model").from_pretrained(directory).eval()
    processor = getattr(transformers, f"{prefix}Processor").from_pretrained(directory)
    with torch.inference_mode():
        text_inputs = processor(text=texts, padding=padding, truncation=True, return_tensors="pt")
        text = model.get_text_features(**text_inputs)
        image_inputs = processor(images=images, return_tensors="pt")
        image = model.get_image_features(**image_inputs)
    return _normalise(text), _normalise(image)


def test_vision_loads_by_spec_and_by_directory(vision_model: tuple[str, Path]) -> None:
    name, directory = vision_model
    by_spec = _load(f"{name}:{directory}")
    by_dir = _load(str(directory))
    assert type(by_spec) is type(by_dir)
    assert by_spec.name == by_dir.name == name
    assert by_spec.modalities == frozenset({Modality.TEXT, Modality.IMAGE})
    assert by_spec.space == by_dir.space and by_spec.space.startswith(f"{name}:")
    assert by_spec.info().same_vectors(by_dir.info())
    json.dumps(by_spec.info().to_dict())  # the manifest entry must be plain JSON
    np.testing.assert_array_equal(by_spec.encode_text(TEXTS), by_dir.encode_text(TEXTS))


def test_vision_vectors_match_model_and_own_processor(vision_model: tuple[str, Path]) -> None:
    name, directory = vision_model
    encoder = _load(f"{name}:{directory}")
    images = [_image(1), _image(2, (64, 30)), _image(3, (20, 90)).convert("L").convert("RGB")]
    text_vecs, image_vecs = encoder.encode_text(TEXTS), encoder.encode_images(images)

    assert text_vecs.shape == (len(TEXTS), encoder.dim)
    assert image_vecs.shape == (len(images), encoder.dim)
    assert text_vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text_vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(image_vecs, axis=1), 1.0, atol=1e-5)

    ref_text, ref_image = _reference_vision(directory, TEXTS, images)
    np.testing.assert_allclose(text_vecs, ref_text, atol=1e-5)
    np.testing.assert_allclose(image_vecs, ref_image, atol=1e-5)
    short = ["a cat", "dog"]  # no text reaches the length limit: padding rules show
    ref_short, _ = _reference_vision(directory, short, images[:1])
    np.testing.assert_allclose(encoder.encode_text(short), ref_short, atol=1e-5)


def test_vision_is_deterministic_and_batch_independent(vision_model: tuple[str, Path]) -> None:
    name, directory = vision_model
    encoder = _load(f"{name}:{directory}")
    images = [_image(s) for s in range(4)]
    first = encoder.encode_images(images)
    np.testing.assert_array_equal(first, encoder.encode_images(images))
    np.testing.assert_allclose(encoder.encode_images(images[2:3])[0], first[2], atol=1e-5)
    texts = encoder.encode_text(TEXTS)
    np.testing.assert_array_equal(texts, encoder.encode_text(TEXTS))
    # CLIP pads to the longest text of a batch; a text's vector must not depend on its neighbours
    np.testing.assert_allclose(encoder.encode_text(TEXTS[:1])[0], texts[0], atol=1e-5)


def test_vision_different_inputs_give_different_vectors(vision_model: tuple[str, Path]) -> None:
    name, directory = vision_model
    encoder = _load(f"{name}:{directory}")
    images = encoder.encode_images([_image(10), _image(11), Image.new("RGB", (32, 32), (255, 0, 0))])
    cos = images @ images.T
    assert np.all(cos[~np.eye(3, dtype=bool)] < 0.9999)
    texts = encoder.encode_text(["a cat", "the lazy dog"])
    assert float(texts[0] @ texts[1]) < 0.9999


def test_vision_rejects_audio(vision_model: tuple[str, Path]) -> None:
    name, directory = vision_model
    encoder = _load(f"{name}:{directory}")
    clip = AudioClip(np.zeros(1600, dtype=np.float32), 16_000)
    with pytest.raises(InvalidQueryError):
        encoder.encode(Modality.AUDIO, [clip])
    with pytest.raises(InvalidQueryError):
        encoder.encode_batch(Modality.AUDIO, [clip])


def test_space_is_tied_to_the_weights(tmp_path: Path) -> None:
    a = make_tiny_clip(tmp_path / "a", seed=0)
    b = make_tiny_clip(tmp_path / "b", seed=1)
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    enc_a, enc_b, enc_copy = _load(str(a)), _load(str(b)), _load(str(copy))
    assert enc_a.space != enc_b.space  # same architecture, different weights
    assert enc_a.version != enc_b.version
    assert enc_a.space == enc_copy.space  # the same checkpoint, wherever it lies
    assert enc_a.info().same_vectors(enc_copy.info())


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_missing_directory_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        _load(f"clip:{tmp_path / 'nowhere'}")
    assert "not found" in _one_line(exc)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError) as exc:
        _load(f"siglip:{empty}")
    assert "config.json" in _one_line(exc)


def test_corrupt_directory_raises_model_error(tmp_path: Path) -> None:
    directory = make_tiny_clip(tmp_path / "model")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # truncated download
    with pytest.raises(ModelError) as exc:
        _load(f"clip:{directory}")
    _one_line(exc)
    (directory / "config.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(ModelError) as exc:
        _load(f"clip:{directory}")
    _one_line(exc)


def test_wrong_architecture_raises_model_error(tmp_path: Path) -> None:
    directory = make_tiny_clip(tmp_path / "model")
    with pytest.raises(ModelError) as exc:
        _load(f"clap:{directory}")
    assert "clip model" in _one_line(exc)


def test_hub_id_offline_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # an empty cache
    _import_model_code()
    started = time.monotonic()
    with pytest.raises(ModelError) as exc:
        _load("clip:xmodal-tests/no-such-model")
    assert "offline" in _one_line(exc)
    assert time.monotonic() - started < 20  # huggingface_hub's retries would take ~30 s


def test_hub_id_with_unreachable_hub_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused
    _import_model_code()
    started = time.monotonic()
    with pytest.raises(ModelError) as exc:
        _load("siglip:xmodal-tests/no-such-model")
    assert "cannot reach 127.0.0.1" in _one_line(exc)
    assert time.monotonic() - started < 20  # huggingface_hub's retries would take ~30 s


def _import_model_code() -> None:
    """Import transformers' CLIP/SigLIP code outside the timed part (a cold import takes seconds
    on a loaded machine, and test order decides whether an earlier test did it)."""
    import transformers

    _ = transformers.CLIPModel, transformers.SiglipModel


# ---- CLAP ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clap(tmp_path_factory.mktemp("clap") / "model")


def _tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate), dtype=np.float64) / rate
    noise = np.random.default_rng(int(freq)).normal(0.0, 0.01, t.shape)
    return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def _reference_audio(directory: Path, waveforms: list[np.ndarray], seed: int | None = None) -> np.ndarray:
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(directory).eval()
    processor = ClapProcessor.from_pretrained(directory)
    out = []
    with torch.inference_mode():
        for wave in waveforms:  # one clip per call: the extractor's batch handling is random
            # the encoder's own seeding (restores numpy's global RNG afterwards)
            with _seeded_numpy(seed) if seed is not None else contextlib.nullcontext():
                inputs = processor.feature_extractor(wave, sampling_rate=48_000, return_tensors="pt")
            inputs["input_features"] = inputs["input_features"].float()
            out.append(_normalise(model.get_audio_features(**inputs)))
    return np.concatenate(out)


def test_clap_loads_by_spec_and_by_directory(clap_dir: Path) -> None:
    by_spec, by_dir = _load(f"clap:{clap_dir}"), _load(str(clap_dir))
    assert by_spec.name == by_dir.name == "clap"
    assert by_spec.modalities == frozenset({Modality.TEXT, Modality.AUDIO})
    assert by_spec.space == by_dir.space and by_spec.space.startswith("clap:")
    json.dumps(by_spec.info().to_dict())


def test_clap_vectors_match_model_and_own_processor(clap_dir: Path) -> None:
    from transformers import ClapModel, ClapProcessor

    encoder = _load(f"clap:{clap_dir}")
    waves = [_tone(440, 0.6, 48_000), _tone(1000, 0.9, 48_000), _tone(3000, 0.3, 48_000)]
    vecs = encoder.encode_audio([AudioClip(w, 48_000) for w in waves])
    assert vecs.shape == (3, encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vecs, _reference_audio(clap_dir, waves), atol=1e-5)

    model = ClapModel.from_pretrained(clap_dir).eval()
    processor = ClapProcessor.from_pretrained(clap_dir)
    with torch.inference_mode():
        ref_text = _normalise(
            model.get_text_features(**processor.tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt"))
        )
    np.testing.assert_allclose(encoder.encode_text(TEXTS), ref_text, atol=1e-5)


def test_clap_resamples_to_the_extractor_rate(clap_dir: Path) -> None:
    encoder = _load(f"clap:{clap_dir}")
    wave16k = _tone(440, 0.8, 16_000)
    vec = encoder.encode_audio([AudioClip(wave16k, 16_000)])
    by_hand = resample_poly(wave16k.astype(np.float64), 3, 1).astype(np.float32)  # 16 kHz -> 48 kHz
    np.testing.assert_allclose(vec, _reference_audio(clap_dir, [by_hand]), atol=1e-4)
    unresampled = _reference_audio(clap_dir, [wave16k])  # the same samples read as 48 kHz
    assert float(vec[0] @ unresampled[0]) < 0.9999


def test_clap_long_clip_is_deterministic(clap_dir: Path) -> None:
    """The tiny extractor's window is 1 s; a 1.7 s clip is cropped at random by transformers."""
    encoder = _load(f"clap:{clap_dir}")
    long_clip = AudioClip(_tone(660, 1.7, 48_000), 48_000)
    short_clip = AudioClip(_tone(220, 0.5, 48_000), 48_000)
    first = encoder.encode_audio([long_clip, short_clip])
    np.testing.assert_array_equal(first, encoder.encode_audio([long_clip, short_clip]))
    np.testing.assert_allclose(encoder.encode_audio([long_clip])[0], first[0], atol=1e-5)
    np.testing.assert_allclose(first[:1], _reference_audio(clap_dir, [long_clip.samples], seed=0), atol=1e-5)


def test_clap_fused_model_is_deterministic_and_matches(tmp_path: Path) -> None:
    """Fusion mode: transformers flags a random clip of each batch as "longer"; ours never depends
    on the batch, and each clip equals the model + extractor run on that clip alone."""
    directory = make_tiny_clap(tmp_path / "fused", fusion=True)
    encoder = _load(str(directory))
    clips = [AudioClip(_tone(500, 1.6, 48_000), 48_000), AudioClip(_tone(900, 0.4, 48_000), 48_000)]
    vecs = encoder.encode_audio(clips)
    np.testing.assert_array_equal(vecs, encoder.encode_audio(clips))
    np.testing.assert_allclose(encoder.encode_audio(clips[1:])[0], vecs[1], atol=1e-5)
    reference = _reference_audio(directory, [c.samples for c in clips], seed=0)
    np.testing.assert_allclose(vecs, reference, atol=1e-5)


def test_clap_different_sounds_differ_and_images_are_rejected(clap_dir: Path) -> None:
    encoder = _load(f"clap:{clap_dir}")
    vecs = encoder.encode_audio([AudioClip(_tone(f, 0.5, 48_000), 48_000) for f in (200, 2000, 8000)])
    cos = vecs @ vecs.T
    assert np.all(cos[~np.eye(3, dtype=bool)] < 0.9999)
    with pytest.raises(InvalidQueryError):
        encoder.encode(Modality.IMAGE, [_image(0)])
