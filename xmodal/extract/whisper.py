"""Speech recognition with Whisper on CTranslate2 (``faster-whisper``), weights from packages.

A recording is transcribed in windows cut at quiet moments (memory stays bounded, and progress
is told per window). Silero VAD (shipped in faster-whisper) keeps silence and music away from
the decoder, and segments that look like Whisper's known hallucinations on non-speech (a lone
"Thank you.", a phrase repeated over and over, "[Music]") are dropped, so no invented words
become searchable."""

from __future__ import annotations

import os
import re
import threading
from importlib.metadata import version
from typing import Any

import numpy as np

from xmodal.errors import MissingDependencyError, ModelError
from xmodal.extract import whisper_models
from xmodal.extract.base import SILENCE_RMS, SecondsDone, SpeechRecognizer, Transcript, Word
from xmodal.extract.whisper_models import WhisperFiles
from xmodal.media.audio import AudioClip, loudest_frame_rms, split_points

RATE = 16_000
WINDOW_SECONDS, WINDOW_SLACK = 60.0, 10.0  # windows of 50-70 s, cut at the quietest 50 ms
# silence around each window: Whisper mishears a first word that starts at sample 0 (bench_asr:
# WER 0.269 -> 0.236 on the demo's speech, 0.073 -> 0.052 on human speech, with 1 s)
LEAD_SECONDS = 1.0
BEAM_SIZE = 5
# what Whisper says over silence, noise or music when nobody speaks (seen in its training data's
# subtitles); kept only when the decoder is sure of it and sure that someone spoke
HALLUCINATIONS = {
    "thank you", "thanks for watching", "thank you for watching", "thanks for listening", "you", "bye",
    "bye bye", "so", "okay", "oh", "uh", "um", "hmm", "please subscribe", "subscribe", "the end", "music",
}  # fmt: skip
# ... and the sign-offs it invents inside longer lines (over music, or speech in another language)
HALLUCINATED_PHRASES = re.compile(
    r"\b(for watching|next video|(like and |please )subscribe|subtitles by|transcribed by|amara\.org)\b"
)
_ANNOTATION = re.compile(r"^\s*[\[(*♪].*[\])*♪]\s*$")  # [Music], (applause), *laughs*, ♪ la la ♪


class WhisperRecognizer(SpeechRecognizer):
    name = "whisper"

    def __init__(self, files: WhisperFiles, language: str | None = None, beam_size: int = BEAM_SIZE) -> None:
        try:
            from faster_whisper.tokenizer import _LANGUAGE_CODES
        except ImportError as exc:
            raise MissingDependencyError("Whisper speech recognition needs faster-whisper: pip install xmodal") from exc
        if language is not None:
            language = language.strip().lower()
            if language not in _LANGUAGE_CODES:
                raise ModelError(f"unknown language {language!r} for Whisper; use an ISO 639-1 code such as en, fr, de")
            if not files.multilingual and language != "en":
                raise ModelError(
                    f"Whisper {files.model} recognises English only, not {language!r}; use --asr whisper-base"
                )
        self.files = files
        self.language = language
        self.beam_size = beam_size
        self.version = f"faster-whisper=={version('faster-whisper')};{files.version}"
        self._model: Any = None
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "model": self.files.model,
            "version": self.version,
            "settings": {"language": self.language, "beam_size": self.beam_size, "vad": True, "compute_type": "int8"},
        }

    def _whisper(self) -> Any:
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                where = self.files.path()
                try:
                    self._model = WhisperModel(
                        str(where), device="cpu", compute_type="int8", cpu_threads=_threads(), local_files_only=True
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise ModelError(f"cannot load the Whisper model in {where}: {reason}") from exc
            return self._model

    def transcribe(self, clip: AudioClip) -> list[Word]:
        return self.recognise(clip).words

    def recognise(self, clip: AudioClip, progress: SecondsDone | None = None) -> Transcript:
        model = self._whisper()
        rate = clip.sample_rate
        total = clip.duration
        words: list[Word] = []
        spoken: dict[str, float] = {}  # seconds of speech per detected language
        # windows are cut at the recording's own rate and resampled one by one: beside the
        # decoded clip, memory holds one window, however long the recording
        for start, end in split_points(clip.samples, rate, WINDOW_SECONDS, WINDOW_SLACK):
            part = AudioClip(clip.samples[start:end], rate)
            if loudest_frame_rms(part.samples, rate) >= SILENCE_RMS:
                found, language = self._window(model, part.resampled(RATE).samples, start / rate)
                words.extend(found)
                if found and language:
                    spoken[language] = spoken.get(language, 0.0) + found[-1].end - found[0].start
            if progress is not None:
                progress(end / rate, total)
        language = self.language or (max(spoken, key=spoken.__getitem__) if spoken else None)
        return Transcript(collapse_repeats(words), language if self.files.multilingual else None)

    def _window(self, model: Any, part: np.ndarray, offset: float) -> tuple[list[Word], str | None]:
        """The plausible words of one window (16 kHz samples starting at ``offset`` seconds)."""
        pad = np.zeros(int(LEAD_SECONDS * RATE), dtype=np.float32)
        segments, info = model.transcribe(
            np.concatenate([pad, part, pad]),
            language=self.language or (None if self.files.multilingual else "en"),
            beam_size=self.beam_size,
            word_timestamps=True,
            vad_filter=True,  # its own VAD settings: a 500 ms silence split lost first words (bench_asr)
            condition_on_previous_text=False,  # a mistake must not seed the next 30 s (loops)
            hallucination_silence_threshold=2.0,
        )
        out: list[Word] = []
        lo, hi = offset, offset + part.shape[0] / RATE  # the window's own seconds
        shift = offset - LEAD_SECONDS  # Whisper's times count the lead-in silence
        for seg in segments:
            if not plausible_speech(seg):
                continue
            for w in seg.words or []:
                text = w.word.strip()
                start = round(max(shift + w.start, lo), 2)
                end = round(max(start, min(shift + w.end, hi)), 2)
                if any(c.isalnum() for c in text):
                    out.append(Word(text, start, end))
                elif text and out:  # "12" then "%": one word
                    out[-1] = Word(out[-1].text + text, out[-1].start, max(out[-1].end, end))
        return out, getattr(info, "language", None)


def plausible_speech(seg: Any) -> bool:
    """Whether a decoded segment is likely someone speaking rather than Whisper's inventions on
    non-speech: repetition loops compress well, guesses have a low mean log-probability, and the
    stock phrases it emits over silence pass only when it is sure of them."""
    if seg.compression_ratio > 2.4 or seg.avg_logprob < -1.0:
        return False
    if seg.no_speech_prob > 0.6 and seg.avg_logprob < -0.5:
        return False
    text = seg.text.strip()
    if not any(c.isalnum() for c in text) or _ANNOTATION.match(text):
        return False
    plain = " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())
    if plain in HALLUCINATIONS or HALLUCINATED_PHRASES.search(plain):
        probs = [w.probability for w in seg.words or []]
        sure = bool(probs) and min(probs) > 0.8
        return sure and seg.no_speech_prob < 0.1 and seg.avg_logprob > -0.3
    return True


def collapse_repeats(words: list[Word], max_len: int = 6, keep: int = 2) -> list[Word]:
    """A phrase of up to ``max_len`` words said over and over back to back (a decoding loop) is
    kept ``keep`` times."""
    out = list(words)
    i = 0
    while i < len(out):
        for n in range(1, max_len + 1):
            phrase = [_key(w) for w in out[i : i + n]]
            if len(phrase) < n:
                break
            reps = 1
            while [_key(w) for w in out[i + reps * n : i + (reps + 1) * n]] == phrase:
                reps += 1
            if reps > keep + (n == 1):  # "no, no, no" is speech; the same word 4 times is not
                del out[i + keep * n : i + reps * n]
                break
        i += 1
    return out


def _key(word: Word) -> str:
    return re.sub(r"\W+", "", word.text.lower())


def _threads() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, min(os.cpu_count() or 1, 8))


# ---- the registry's factories (xmodal.extract.base._ASR) -----------------------------------
def tiny_en(language: str | None = None) -> WhisperRecognizer:
    return WhisperRecognizer(whisper_models.tiny_en(), language)


def base(language: str | None = None) -> WhisperRecognizer:
    return WhisperRecognizer(whisper_models.base(), language)


def from_folder(path: str, language: str | None = None) -> WhisperRecognizer:
    return WhisperRecognizer(whisper_models.folder(path), language)
