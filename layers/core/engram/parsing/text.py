"""Plain text: decoding bytes of unknown encoding, and cutting paragraphs into blocks."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable

from engram.parsing.types import ParseResult, TextBlock

# A block is what extraction reads in one go: a section, or a few paragraphs of one.
BLOCK_CHARS = 2000


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


def paragraphs_to_blocks(
    paragraphs: Iterable[tuple[str, bool]], *, origin: str = "", page: int | None = None
) -> list[TextBlock]:
    """(text, is_heading) paragraphs → blocks: a heading starts a new block, and a block
    closes once it passes BLOCK_CHARS, so each block is one section or a slice of one."""
    blocks: list[TextBlock] = []
    current: list[str] = []
    size = 0

    def close() -> None:
        nonlocal current, size
        if current:
            blocks.append(TextBlock("\n\n".join(current), page=page, origin=origin))
        current, size = [], 0

    for text, is_heading in paragraphs:
        for n, piece in enumerate(_pieces(text.strip())):
            if (is_heading and n == 0) or size + len(piece) > BLOCK_CHARS:
                close()
            current.append(piece)
            size += len(piece)
    close()
    return blocks


def _pieces(paragraph: str) -> list[str]:
    """A paragraph longer than a block (a log, a page without blank lines) cut at line ends,
    and a single overlong line at BLOCK_CHARS."""
    if len(paragraph) <= BLOCK_CHARS:
        return [paragraph] if paragraph else []
    pieces: list[str] = []
    for line in paragraph.split("\n"):
        while len(line) > BLOCK_CHARS:
            pieces.append(line[:BLOCK_CHARS])
            line = line[BLOCK_CHARS:]
        if pieces and len(pieces[-1]) + len(line) < BLOCK_CHARS:
            pieces[-1] += "\n" + line
        elif line:
            pieces.append(line)
    return pieces


def split_paragraphs(text: str) -> list[tuple[str, bool]]:
    """Blank-line separated paragraphs; Markdown '#' lines count as headings."""
    text = clean_lines(text)
    return [(p, p.startswith("#")) for p in re.split(r"\n\s*\n", text) if p.strip()]


def parse_text(data: bytes, *, origin: str = "") -> ParseResult:
    text = decode_text(data)
    blocks = paragraphs_to_blocks(split_paragraphs(text), origin=origin)
    return ParseResult(kind="text", blocks=blocks)
