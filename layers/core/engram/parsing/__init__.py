"""Content parsing: one uploaded or fetched item (image, PDF, document, HTML page, email,
audio, video, text) → text blocks with provenance (page, time span, attachment).

`detect_kind` names what bytes are; `parse_item` turns them into a `ParseResult`
(`engram.models.parsed`) or raises a `ParseError` (`engram.errors`) whose message is the
reason shown to the user. OCR, speech and vision engines come in as ports (`Ocr`,
`Transcriber`, `ImageDescriber` in `engram.ports`): tesseract or Textract, a local model
or Transcribe, an OpenAI-compatible vision model.
"""

from engram.parsing.detect import detect_kind
from engram.parsing.dispatch import parse_item

__all__ = ["detect_kind", "parse_item"]
