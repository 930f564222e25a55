"""Plain text: decoding bytes of unknown encoding, tidying lines, splitting paragraphs
(which `models.parsed.paragraphs_to_blocks` then cuts into blocks)."""

from __future__ import annotations

import codecs
import re

from engram.models.parsed import ParseResult, paragraphs_to_blocks


def decode_text(data: bytes, declared: str | None = None) -> str:
    """UTF-8 (BOMs honoured), else the declared charset, else a detected one."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            return data.decode(declared, errors="replace")
        except LookupError:
            pass
    from charset_normalizer import from_bytes  # requests' own dependency

    best = from_bytes(data[: 2**20]).best()
    encoding = best.encoding if best else "cp1252"
    if encoding.startswith(("cp125", "iso8859", "latin", "mac_")):
        # Single-byte Latin guesses are a coin toss between neighbours (cp1250 vs cp1252);
        # like browsers, prefer Windows-1252 when the bytes are valid in it.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    return data.decode(encoding, errors="replace")


def clean_lines(text: str) -> str:
    """Collapse runs of spaces and blank lines; keep paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def split_paragraphs(text: str) -> list[tuple[str, bool]]:
    """Blank-line separated paragraphs; Markdown '#' lines count as headings."""
    text = clean_lines(text)
    return [(p, p.startswith("#")) for p in re.split(r"\n\s*\n", text) if p.strip()]


def parse_text(data: bytes, *, origin: str = "") -> ParseResult:
    text = decode_text(data)
    blocks = paragraphs_to_blocks(split_paragraphs(text), origin=origin)
    return ParseResult(kind="text", blocks=blocks)
