"""Shared plumbing for the Hugging Face ``transformers`` dual encoders (CLIP, SigLIP, CLAP).

Resolving a ref (local directory or hub id) without hanging offline, loading model + processor
quietly, fingerprinting the weights so a vector space is tied to one checkpoint, and calling the
``get_*_features`` methods whatever transformers version returns (a tensor in 4.x, an output
object with ``pooler_output`` in 5.x).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from xmodal.errors import MissingDependencyError, ModelError

# Files whose content decides the preprocessing (tokenizer and image/audio processor).
PROCESSOR_FILES = (
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "added_tokens.json",
)
_SAMPLE = 1 << 20  # bytes hashed from the start, middle and end of each weight file
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class LoadedModel:
    """A model, its processor, and what identifies them."""

    model: Any
    processor: Any
    model_type: str
    ref: str  # resolved directory, or the hub id as given
    weights_fingerprint: str
    processor_fingerprint: str
    transformers_version: str


def hub_offline() -> bool:
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in names)


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached (DNS or TCP failure), or None when it can (or a proxy is set).

    huggingface_hub retries for half a minute without a network; a quick probe fails fast instead.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot reach {host} ({_first_line(exc)})"


def _looks_like_path(ref: str) -> bool:
    """A ref that can only mean a file system path (hub ids are ``name`` or ``org/name``)."""
    return ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:300]


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' warnings and progress bars while loading; restore them afterwards."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _weight_files(directory: Path) -> list[Path]:
    files = [p for p in directory.iterdir() if p.is_file()]
    safetensors = sorted(p for p in files if p.name.endswith(".safetensors"))
    if safetensors:  # transformers prefers these; a stray .bin beside them is not what was loaded
        return safetensors
    skip = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"}
    return sorted(p for p in files if p.suffix in {".bin", ".pt", ".pth"} and p.name not in skip)


def _hash_sampled(h: Any, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size}\n".encode())
    with open(path, "rb") as fh:
        if size <= 3 * _SAMPLE:
            h.update(fh.read())
            return
        for offset in (0, size // 2, size - _SAMPLE):
            fh.seek(offset)
            h.update(fh.read(_SAMPLE))


def weights_fingerprint(directory: Path) -> str:
    """Short hash of config.json and the weight files (names, sizes, sampled bytes).

    Two different checkpoints differ in every weight tensor, so sampled bytes (start, middle, end
    of each file) tell them apart without reading gigabytes; the same files always hash the same.
    """
    h = hashlib.sha256()
    config = directory / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    weights = _weight_files(directory)
    if not weights:
        raise ModelError(f"{directory}: no weight files (*.safetensors or *.bin)")
    for path in weights:
        _hash_sampled(h, path)
    return h.hexdigest()[:16]


def processor_fingerprint(directory: Path) -> str:
    h = hashlib.sha256()
    for name in PROCESSOR_FILES:
        path = directory / name
        if path.is_file():
            h.update(name.encode() + b"\n")
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _resolve(ref: str, encoder: str) -> tuple[str, bool]:
    """(source for from_pretrained, is_local_dir). Raises ModelError for a missing path."""
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{encoder}: {path} has no config.json; not a transformers model directory")
        return str(path.resolve()), True
    if path.exists():
        raise ModelError(f"{encoder}: {ref} is not a directory")
    if _looks_like_path(ref):
        raise ModelError(f"{encoder}: model directory not found: {ref}")
    return ref, False


def _snapshot_dir(ref: str) -> Path:
    """The local folder a hub model was loaded from (the cache snapshot)."""
    from transformers.utils import cached_file

    found = cached_file(ref, "config.json", local_files_only=True)
    if found is None:  # pragma: no cover - loaded a moment ago
        raise ModelError(f"{ref}: loaded, but its files are not in the local cache")
    return Path(found).parent


def _from_pretrained(source: str, local_only: bool, encoder: str, model_types: frozenset[str]) -> tuple[Any, Any, str]:
    """(model, processor, model_type); transformers' own exceptions pass through."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoProcessor

    with quiet_transformers():
        config = AutoConfig.from_pretrained(source, local_files_only=local_only)
        model_type = str(getattr(config, "model_type", ""))
        if model_type not in model_types:
            expected = " or ".join(sorted(model_types))
            raise ModelError(f"{encoder}: {source} is a {model_type or 'unknown'} model, not {expected}")
        model = AutoModel.from_pretrained(source, local_files_only=local_only, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(source, local_files_only=local_only)
    return model, processor, model_type


def _load_error(exc: Exception, encoder: str) -> Exception | None:
    """The error to raise at once for a failure no other attempt can fix, else None."""
    if isinstance(exc, ModelError):
        return exc
    if "sentencepiece" in str(exc).lower():
        return MissingDependencyError(
            f"{encoder}: this model's tokenizer needs sentencepiece: pip install sentencepiece"
        )
    if isinstance(exc, ImportError):
        return MissingDependencyError(f"{encoder}: {_first_line(exc)}")
    return None


def load_pretrained(ref: str, encoder: str, model_types: frozenset[str]) -> LoadedModel:
    """Load model + processor from a directory or hub id, checking the architecture.

    Offline (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE set) a hub id is looked up in the local cache
    only. Online, the cache is tried first, so a cached model never waits on the network, and an
    unreachable hub is reported at once rather than after huggingface_hub's retries.
    """
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError(f"{encoder} needs transformers and torch: pip install xmodal") from exc

    source, local = _resolve(ref, encoder)
    try:
        model, processor, model_type = _from_pretrained(source, True, encoder, model_types)
    except Exception as exc:  # transformers raises OSError, ValueError, safetensors errors, ...
        if (err := _load_error(exc, encoder)) is not None:
            raise err from exc
        if local:
            raise ModelError(f"{encoder}: could not load model from {source}: {_first_line(exc)}") from exc
        if hub_offline():
            raise ModelError(
                f"{encoder}: {ref!r} is not a local directory and not in the Hugging Face cache "
                "(offline mode); pass a model directory or download it first"
            ) from exc
        if problem := _hub_unreachable():
            raise ModelError(
                f"{encoder}: {ref!r} is not a local directory or in the Hugging Face cache, "
                f"and {problem}; pass a model directory"
            ) from exc
        try:
            model, processor, model_type = _from_pretrained(source, False, encoder, model_types)
        except Exception as exc2:
            if (err := _load_error(exc2, encoder)) is not None:
                raise err from exc2
            raise ModelError(
                f"{encoder}: could not load {ref!r} from the Hugging Face hub: {_first_line(exc2)}"
            ) from exc2

    directory = Path(source) if local else _snapshot_dir(source)
    model.eval()
    return LoadedModel(
        model=model,
        processor=processor,
        model_type=model_type,
        ref=source,
        weights_fingerprint=weights_fingerprint(directory),
        processor_fingerprint=processor_fingerprint(directory),
        transformers_version=str(transformers.__version__),
    )


def call_features(method: Callable[..., Any], inputs: Mapping[str, Any]) -> np.ndarray:
    """Call ``model.get_*_features`` with the inputs it names; return (n, dim) float32.

    transformers 4.x returns a tensor, 5.x an output object whose ``pooler_output`` holds the
    projected features; both are handled.
    """
    import torch

    params = inspect.signature(method).parameters
    named = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    with torch.inference_mode():
        out = method(**{k: v for k, v in inputs.items() if k in named})
    if isinstance(out, torch.Tensor):
        features = out
    elif getattr(out, "pooler_output", None) is not None:
        features = out.pooler_output
    elif isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        features = out[0]
    else:
        name = getattr(method, "__name__", "model")
        raise ModelError(f"unexpected output from {name}: {type(out).__name__}")
    return np.asarray(features.detach().to(torch.float32).cpu().numpy(), dtype=np.float32)


def processor_defaults(processor: Any, group: str) -> dict[str, Any]:
    """Call defaults a processor class declares for one input kind (``text_kwargs``, ...).

    transformers 5 lets processor classes set these (Siglip2Processor pads text to 64 tokens and
    cuts images into 16-pixel patches); calling the processor applies them.
    """
    value = getattr(type(processor), group, None)
    return dict(value) if isinstance(value, dict) else {}


def text_max_length(processor: Any, config: Any, position_offset: int = 0) -> int:
    """The processor's (or its tokenizer's) max length, capped by the position embeddings."""
    limit = int(getattr(config, "max_position_embeddings", 0) or 0) - position_offset
    tokenizer = getattr(processor, "tokenizer", processor)
    declared = processor_defaults(processor, "text_kwargs").get("max_length")
    declared = int(declared or getattr(tokenizer, "model_max_length", 0) or 0)
    if declared <= 0 or declared > 1_000_000:  # "unset" is a huge sentinel in transformers
        declared = limit
    return max(1, min(declared, limit) if limit > 0 else declared)


def jsonable(value: Any) -> Any:
    """Processor attributes as plain JSON values (for settings saved in a manifest)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if v is not None}
    if is_dataclass(value) and not isinstance(value, type):  # e.g. SizeDict
        return jsonable(asdict(value))
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "value"):  # enums (PILImageResampling)
        return jsonable(value.value)
    return str(value)
