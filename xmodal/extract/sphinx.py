"""Speech recognition with PocketSphinx (its en-us model ships inside the wheel)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from xmodal.errors import MissingDependencyError, ModelError
from xmodal.extract.base import SILENCE_RMS, SpeechRecognizer, Word
from xmodal.media.audio import AudioClip, loudest_frame_rms, split_points

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
        samples = clip.resampled(RATE).samples
        words: list[Word] = []
        for start, end in split_points(samples, RATE):
            if loudest_frame_rms(samples[start:end], RATE) < SILENCE_RMS:
                continue  # the decoder "hears" words in digital silence ("voigt", "in")
            offset = start / RATE
            part = AudioClip(samples[start:end], RATE)
            words.extend(Word(w.text, w.start + offset, w.end + offset) for w in self._decode(part.to_pcm16()))
        return words

    def _decode(self, pcm: bytes) -> list[Word]:
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


def english_only(language: str | None = None) -> PocketSphinxRecognizer:
    """The registry's factory: PocketSphinx's bundled model hears US English only."""
    if language not in (None, "en"):
        raise ModelError(f"pocketsphinx recognises English only, not {language!r}; use --asr whisper-base")
    return PocketSphinxRecognizer()
