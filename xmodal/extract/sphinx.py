"""Speech recognition with PocketSphinx (its en-us model ships inside the wheel)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from xmodal.errors import MissingDependencyError
from xmodal.extract.base import SpeechRecognizer, Word
from xmodal.media.audio import AudioClip

RATE = 16000
_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "<unk>"}


class PocketSphinxRecognizer(SpeechRecognizer):
    name = "pocketsphinx"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise MissingDependencyError("speech search needs pocketsphinx: pip install xmodal") from exc
        self._decoder = Decoder(samprate=RATE, loglevel="FATAL")
        self._frate = float(self._decoder.config["frate"])
        try:
            self.version = f"pocketsphinx=={version('pocketsphinx')}"
        except PackageNotFoundError:
            self.version = "pocketsphinx"

    def transcribe(self, clip: AudioClip) -> list[Word]:
        pcm = clip.resampled(RATE).to_pcm16()
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        words = []
        for seg in d.seg():
            token = seg.word
            if token in _FILLERS or token.startswith(("[", "<", "+")):
                continue
            token = token.split("(")[0]  # alternate pronunciations look like "read(2)"
            words.append(Word(token, seg.start_frame / self._frate, (seg.end_frame + 1) / self._frate))
        return words
