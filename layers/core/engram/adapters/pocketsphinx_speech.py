"""Offline speech-to-text with PocketSphinx, whose PyPI wheel ships its US English model:
the local profile's Transcriber when `pocketsphinx` is installed (the `local` extra).

It is a small, old-style recogniser — names and numbers come out rough — but it runs on
a laptop CPU with no download. Cloud deployments use Amazon Transcribe instead.
Speech is cut at pauses (voice activity detection); each stretch is one timed block.
"""

from __future__ import annotations

import threading
import wave
from io import BytesIO

from engram.errors import CapabilityUnavailable, LimitExceeded
from engram.models.parsed import TextBlock, Transcript, merge_timed_blocks

SPEECH_RATE_HZ = 16_000  # the rate of the model in the wheel
MAX_SECONDS = 3 * 3600  # roughly real time on one core: longer audio would hold a worker for hours
BLOCK_SECONDS = 60.0  # merge stretches of speech into blocks of about a minute


def offline_transcriber_available() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


class PocketSphinxTranscriber:
    name = "pocketsphinx"

    def __init__(self, *, max_seconds: float = MAX_SECONDS):
        self.max_seconds = max_seconds
        self._decoder = None
        self._lock = threading.Lock()  # one decoder, not thread-safe: one audio at a time

    def transcribe(self, audio: bytes, *, name: str = "") -> Transcript:
        pcm = _pcm16_mono_16k(audio)
        seconds = len(pcm) / 2 / SPEECH_RATE_HZ
        if seconds > self.max_seconds:
            raise LimitExceeded(
                f"audio is {_duration(seconds)} long; the offline transcription limit "
                f"is {_duration(self.max_seconds)}"
            )
        from pocketsphinx import Segmenter

        blocks: list[TextBlock] = []
        with self._lock:
            decoder = self._get_decoder()
            for speech in Segmenter(sample_rate=SPEECH_RATE_HZ).segment(BytesIO(pcm)):
                decoder.start_utt()
                decoder.process_raw(speech.pcm, full_utt=True)
                decoder.end_utt()
                text = decoder.hyp().hypstr.strip() if decoder.hyp() else ""
                if text:
                    blocks.append(TextBlock(text, start_s=round(speech.start_time, 2),
                                            end_s=round(speech.end_time, 2)))
        return Transcript(blocks=_merge(blocks), seconds=seconds)

    def _get_decoder(self):
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(samprate=SPEECH_RATE_HZ, loglevel="FATAL")
        return self._decoder


def _pcm16_mono_16k(audio: bytes) -> bytes:
    """Raw 16-bit mono samples at 16 kHz from a 16-bit PCM WAV at any rate, mono or not
    (the media parser has ffmpeg decode every other format before it comes here)."""
    try:
        with wave.open(BytesIO(audio)) as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return _unreadable(audio)
    if width != 2:
        return _unreadable(audio)
    import numpy as np

    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != SPEECH_RATE_HZ:  # linear resampling is enough for a speech recogniser
        count = int(len(samples) * SPEECH_RATE_HZ / rate)
        positions = np.linspace(0, len(samples) - 1, count)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return samples.astype("<i2").tobytes()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} minutes" if seconds < 7200 else f"{seconds / 3600:.1f} hours"


def _unreadable(audio: bytes) -> bytes:
    if audio[:4] != b"RIFF":
        raise CapabilityUnavailable("the offline transcriber reads 16-bit PCM WAV only")
    raise CapabilityUnavailable("the WAV file uses an encoding the offline transcriber cannot read")


def _merge(blocks: list[TextBlock]) -> list[TextBlock]:
    return merge_timed_blocks(blocks, BLOCK_SECONDS)
