"""Offline speech-to-text for real: PocketSphinx (its wheel ships the model) hearing speech
that espeak-ng synthesises. A small recogniser: the tests check the words it reliably gets
and the time spans, not a verbatim transcript."""

from __future__ import annotations

import io
import shutil
import wave

import pytest
from tests import fixtures_docs as docs

from engram.adapters.pocketsphinx_speech import (
    PocketSphinxTranscriber,
    offline_transcriber_available,
)
from engram.errors import LimitExceeded, ParseError
from engram.parsing import detect_kind, parse_item

SPEECH = "My favourite colour is green and I live in Berlin."

pytestmark = pytest.mark.skipif(
    not offline_transcriber_available(), reason="pocketsphinx not installed (the local extra)")


@pytest.fixture(scope="module")
def transcriber():
    return PocketSphinxTranscriber()


@pytest.fixture(scope="module")
def speech():
    wav = docs.speech_wav(SPEECH)
    if wav is None:
        pytest.skip("espeak-ng not installed (bash scripts/install_system_packages.sh)")
    return wav


def test_wav_speech_becomes_timed_text(transcriber, speech):
    result = parse_item(speech, kind="audio", name="memo.wav", ocr=None, transcriber=transcriber)

    assert result.kind == "audio" and 3.0 < result.seconds < 8.0
    (block,) = result.blocks
    assert {"green", "berlin"} <= set(block.text.split())
    assert block.start_s is not None and 0 <= block.start_s < block.end_s <= result.seconds + 0.1


def test_stereo_44k_wav_is_downmixed_and_resampled(transcriber, speech):
    with wave.open(io.BytesIO(speech)) as source:
        rate, frames = source.getframerate(), source.readframes(source.getnframes())
    import numpy as np

    mono = np.frombuffer(frames, dtype="<i2")
    up = np.interp(np.linspace(0, len(mono) - 1, len(mono) * 2), np.arange(len(mono)), mono)
    stereo = np.repeat(up.astype("<i2"), 2)
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setnchannels(2)
        target.setsampwidth(2)
        target.setframerate(rate * 2)
        target.writeframes(stereo.tobytes())

    transcript = transcriber.transcribe(out.getvalue())

    assert "berlin" in " ".join(b.text for b in transcript.blocks)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize(("fmt", "kind"), [("mp3", "audio"), ("mp4", "video")])
def test_compressed_audio_and_video_go_through_ffmpeg(transcriber, speech, fmt, kind):
    media = docs.encoded_media(speech, fmt)
    assert detect_kind(None, None, media) == kind

    result = parse_item(media, kind=kind, name=f"clip.{fmt}", ocr=None, transcriber=transcriber)

    assert result.kind == kind and 3.0 < result.seconds < 8.0
    assert "berlin" in " ".join(b.text for b in result.blocks)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_video_without_sound_is_a_clear_error(transcriber):
    silent = docs.encoded_media(None, "mp4-silent")
    with pytest.raises(ParseError, match="^the video could not be decoded: "):
        parse_item(silent, kind="video", ocr=None, transcriber=transcriber)


def test_audio_over_the_offline_limit_is_refused(speech):
    limit = r"^audio is \d s long; the offline transcription limit is 1 s$"
    with pytest.raises(LimitExceeded, match=limit):
        PocketSphinxTranscriber(max_seconds=1).transcribe(speech)
