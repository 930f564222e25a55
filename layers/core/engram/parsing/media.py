"""Audio and video: speech → timed text through the Transcriber port, which hears 16-bit
PCM WAV. Video, compressed audio (MP3, M4A, Ogg…) and other WAV encodings go through
ffmpeg first (their audio track as 16 kHz mono WAV) — when ffmpeg is installed.

ffmpeg is called here, not behind a port: it is the media parser's format decoder, as
pypdf is the PDF parser's — one program on every profile that has it, nothing to choose
or configure — and decoding before the port keeps the speech engines to one format."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from io import BytesIO

from engram.errors import CapabilityUnavailable, ParseError
from engram.models.parsed import ParseResult
from engram.ports import Transcriber

FFMPEG_TIMEOUT_S = 600
SPEECH_RATE_HZ = 16_000


def parse_media(
    data: bytes, *, kind: str, name: str, transcriber: Transcriber | None, origin: str = ""
) -> ParseResult:
    if transcriber is None:
        raise CapabilityUnavailable(
            f"{kind} transcription unavailable: no speech-to-text engine is configured "
            "(no offline speech model installed, no cloud service set up)"
        )
    transcript = transcriber.transcribe(speech_wav(data, kind), name=name)
    blocks = [b if b.origin else _with_origin(b, origin) for b in transcript.blocks]
    result = ParseResult(kind=kind, blocks=blocks, seconds=round(transcript.seconds, 3))
    if not blocks:
        result.warnings.append(f"no speech was recognised in the {kind}")
    return result


def speech_wav(data: bytes, kind: str) -> bytes:
    """What the Transcriber hears: 16-bit PCM WAV as it is (resampling and downmixing are
    the engine's), anything else decoded by ffmpeg. A RIFF file the wave module cannot
    read goes on as it is, for the engine to read or refuse."""
    if kind == "video":
        return to_wav(data, what="video")
    try:
        with wave.open(BytesIO(data)) as wav:
            width = wav.getsampwidth()
    except (wave.Error, EOFError):
        return data if data[:4] == b"RIFF" else to_wav(data)
    return data if width == 2 else to_wav(data)


def to_wav(data: bytes, *, what: str = "audio", rate: int = SPEECH_RATE_HZ) -> bytes:
    """Any ffmpeg-readable media → mono 16-bit PCM WAV at `rate` (its first audio track)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CapabilityUnavailable(
            f"{what} transcription unavailable: decoding it needs ffmpeg, which is not installed"
        )
    # A file, not a pipe: MP4's index may sit at the end, and ffmpeg must seek to it.
    with tempfile.NamedTemporaryFile(suffix=".media") as source:
        source.write(data)
        source.flush()
        try:
            run = subprocess.run(
                [ffmpeg, "-nostdin", "-v", "error", "-i", source.name, "-vn", "-ac", "1",
                 "-ar", str(rate), "-f", "wav", "-acodec", "pcm_s16le", "pipe:1"],
                capture_output=True,
                timeout=FFMPEG_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ParseError(f"decoding the {what} took over {FFMPEG_TIMEOUT_S} s") from exc
    if run.returncode != 0 or len(run.stdout) <= 44:  # 44: a WAV header and no samples
        reason = run.stderr.decode("utf-8", errors="replace").strip().splitlines()
        detail = reason[-1] if reason else "it has no audio track"
        raise ParseError(f"the {what} could not be decoded: {detail}")
    return run.stdout


def _with_origin(block, origin: str):
    from dataclasses import replace

    return replace(block, origin=origin)


def media_format(data: bytes, name: str = "") -> str | None:
    """The container of audio/video bytes as a short name (mp3, mp4, m4a, wav, flac, ogg,
    amr, webm, mov, mkv, ...), from its first bytes, else its file extension."""
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith((b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")):
        return "mp3"
    for magic, found in ((b"OggS", "ogg"), (b"fLaC", "flac"), (b"#!AMR", "amr")):
        if head.startswith(magic):
            return found
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "m4a" if brand[:3] in (b"M4A", b"M4B") else "mov" if brand == b"qt  " else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm" if b"webm" in data[:64] else "mkv"
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return ext or None
