"""Speech recognition with PocketSphinx (its en-us model ships inside the wheel)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import numpy as np

from xmodal.errors import MissingDependencyError
from xmodal.extract.base import SpeechRecognizer, Word
from xmodal.media.audio import AudioClip

RATE = 16000
SILENCE_RMS = 10 ** (-60 / 20)  # -60 dBFS: quieter than any speech recording's loudest 50 ms
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


def split_points(samples: np.ndarray, rate: int, target: float = 30.0, slack: float = 5.0) -> list[tuple[int, int]]:
    """Cut long audio into ~``target``-second utterances at the quietest moment near each cut,
    so a word is rarely split and memory stays bounded for hour-long recordings."""
    n = samples.shape[0]
    if n <= int((target + slack) * rate):
        return [(0, n)]
    frame = rate // 20  # 50 ms
    cuts, start = [], 0
    while n - start > int((target + slack) * rate):
        lo, hi = start + int((target - slack) * rate), start + int((target + slack) * rate)
        window = samples[lo:hi]
        usable = window[: window.shape[0] // frame * frame].reshape(-1, frame)
        quietest = int(np.argmin((usable.astype(np.float64) ** 2).mean(axis=1)))
        cut = lo + quietest * frame + frame // 2
        cuts.append((start, cut))
        start = cut
    cuts.append((start, n))
    return cuts


def loudest_frame_rms(samples: np.ndarray, rate: int) -> float:
    """RMS of the loudest 50 ms frame (samples in [-1, 1])."""
    frame = rate // 20
    if samples.shape[0] < frame:
        return float(np.sqrt((samples.astype(np.float64) ** 2).mean())) if samples.shape[0] else 0.0
    usable = samples[: samples.shape[0] // frame * frame].reshape(-1, frame).astype(np.float64)
    return float(np.sqrt((usable**2).mean(axis=1).max()))
