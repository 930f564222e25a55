"""What parsing hands back, the errors it raises, its limits and the engines it calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

KINDS = ("image", "pdf", "doc", "html", "email", "audio", "video", "text")


@dataclass(frozen=True)
class TextBlock:
    text: str
    page: int | None = None  # 1-based page of a PDF/document
    start_s: float | None = None  # time span for audio/video
    end_s: float | None = None
    origin: str = ""  # where inside the item, e.g. "attachment report.pdf" for an .eml part


@dataclass
class ParseResult:
    kind: str  # one of KINDS
    blocks: list[TextBlock]
    pages: int | None = None  # pages processed (documents)
    seconds: float | None = None  # media seconds processed
    warnings: list[str] = field(default_factory=list)
    ocr_pages: list[int] = field(default_factory=list)  # left for a later OCR job (PDF)
    description: str = ""  # what an image shows, in the describer's words ("": none)


class ParseError(Exception):
    """The item cannot be parsed; str() is the reason shown to the user."""


class LimitExceeded(ParseError):
    """The item is over a limit; the message names the limit."""


class CapabilityUnavailable(ParseError):
    """This deployment has no engine for the item (no OCR, no speech model, no ffmpeg)."""


@dataclass(frozen=True)
class ParseLimits:
    # The seeds' published limits: MemOS 100 MB / 200 pages, EverOS images 10 MB, media 500 MB.
    max_document_bytes: int = 100 * 2**20
    max_pages: int = 200
    max_image_bytes: int = 10 * 2**20
    max_media_bytes: int = 500 * 2**20


DEFAULT_LIMITS = ParseLimits()


class Ocr(Protocol):
    name: str

    def image_text(self, image: bytes) -> str:
        """PNG/JPEG bytes → the text on the image ("" when there is none)."""
        ...


class ImageDescriber(Protocol):
    """A vision-capable model that says what an image shows (OCR reads its text)."""

    name: str

    def describe(self, image: bytes, content_type: str) -> str:
        """PNG/JPEG/GIF/WebP bytes and their MIME type → one sentence on what the image
        shows. Raises ImageDescriptionFailed (with a reason fit to show) when it cannot."""
        ...


class ImageDescriptionFailed(Exception):
    """The describer gave no description; str() is the reason, free of secrets."""


@dataclass
class Transcript:
    blocks: list[TextBlock]  # each with start_s/end_s
    seconds: float  # length of the audio heard


class Transcriber(Protocol):
    name: str

    def transcribe(self, audio: bytes, *, name: str = "") -> Transcript:
        """Audio bytes (WAV always; other formats if the engine decodes them) → timed text."""
        ...
