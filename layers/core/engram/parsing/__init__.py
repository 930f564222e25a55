"""Content parsing: one uploaded or fetched item (image, PDF, document, HTML page, email,
audio, video, text) → text blocks with provenance (page, time span, attachment).

`detect_kind` names what bytes are; `parse_item` turns them into a `ParseResult` or raises
a `ParseError` whose message is the reason shown to the user. OCR, speech and vision
engines come in as ports (`Ocr`, `Transcriber`, `ImageDescriber`): tesseract or Textract,
a local model or Transcribe, an OpenAI-compatible vision model.
"""

from engram.parsing.detect import detect_kind
from engram.parsing.dispatch import parse_item
from engram.parsing.types import (
    KINDS,
    CapabilityUnavailable,
    ImageDescriber,
    ImageDescriptionFailed,
    LimitExceeded,
    Ocr,
    ParseError,
    ParseLimits,
    ParseResult,
    TextBlock,
    Transcriber,
    Transcript,
)

__all__ = [
    "KINDS",
    "CapabilityUnavailable",
    "ImageDescriber",
    "ImageDescriptionFailed",
    "LimitExceeded",
    "Ocr",
    "ParseError",
    "ParseLimits",
    "ParseResult",
    "TextBlock",
    "Transcriber",
    "Transcript",
    "detect_kind",
    "parse_item",
]
