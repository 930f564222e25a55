"""parse_item: the size limit for the item's kind, then the parser for it."""

from __future__ import annotations

from engram.config import Limits
from engram.errors import LimitExceeded, ParseError
from engram.models.parsed import KINDS, ParseResult
from engram.parsing.detect import detect_kind
from engram.parsing.documents import parse_docx, parse_legacy_doc
from engram.parsing.email_message import parse_email
from engram.parsing.html_text import parse_html
from engram.parsing.images import parse_image
from engram.parsing.media import parse_media
from engram.parsing.pdf import parse_pdf
from engram.parsing.text import parse_text
from engram.ports import Ocr, Transcriber

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DEFAULT_LIMITS = Limits()  # the seeds' published limits


def parse_item(
    data: bytes,
    *,
    kind: str,
    name: str = "",
    ocr: Ocr | None,
    limits: Limits = DEFAULT_LIMITS,
    transcriber: Transcriber | None = None,
) -> ParseResult:
    """One item → text blocks. Raises ParseError (LimitExceeded, CapabilityUnavailable)
    with the reason to show the user."""
    return _parse(data, kind, name, ocr, limits, transcriber, depth=0)


def _parse(
    data: bytes,
    kind: str,
    name: str,
    ocr: Ocr | None,
    limits: Limits,
    transcriber: Transcriber | None,
    depth: int,
) -> ParseResult:
    if kind not in KINDS:
        raise ParseError(f"unknown content kind {kind!r}; expected one of {', '.join(KINDS)}")
    check_size(len(data), kind, limits)
    if not data:
        raise ParseError("the file is empty")
    if kind in ("pdf", "image"):
        expect_format(data, kind, name)
    if kind == "pdf":
        return parse_pdf(data, ocr=ocr, limits=limits)
    if kind == "image":
        return parse_image(data, ocr=ocr)
    if kind in ("audio", "video"):
        return parse_media(data, kind=kind, name=name, transcriber=transcriber)
    if kind == "html":
        return parse_html(data)
    if kind == "email":

        def parse_part(payload: bytes, filename: str, content_type: str, level: int):
            part_kind = detect_kind(filename, content_type, payload)
            return _parse(payload, part_kind, filename, ocr, limits, transcriber, level)

        return parse_email(data, parse_part=parse_part, depth=depth)
    if kind == "doc":
        return _parse_word(data, limits)
    return parse_text(data)


def _parse_word(data: bytes, limits: Limits) -> ParseResult:
    """"doc" items are Word files (DOCX, DOC, RTF) or, as EverOS sends them, plain text."""
    if data.startswith(b"PK\x03\x04"):
        return parse_docx(data, limits=limits)
    if data.startswith((OLE, b"{\\rtf")):
        return parse_legacy_doc(data)
    result = parse_text(data)
    result.kind = "doc"
    return result


def check_size(size: int, kind: str, limits: Limits) -> None:
    """The seeds' size limits, named in the error: images, media, everything else."""
    if kind == "image":
        limit, what = limits.max_image_bytes, "image"
    elif kind in ("audio", "video"):
        limit, what = limits.max_media_bytes, kind
    else:
        limit, what = limits.max_document_bytes, "document"
    if size > limit:
        raise LimitExceeded(f"{what} is {_megabytes(size)}; the limit is {_megabytes(limit)}")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size % 2**20 else f"{size // 2**20} MB"


def expect_format(data: bytes, kind: str, name: str) -> None:
    """A PDF or image item whose bytes are something else is refused, not misparsed."""
    try:
        actual = detect_kind(None, None, data)
    except ParseError:
        actual = "an unknown format"
    if actual != kind:
        label = f"{name} " if name else ""
        raise ParseError(f"the file {label}is not {'a PDF' if kind == 'pdf' else 'an image'} "
                         f"(its content looks like {actual})")
