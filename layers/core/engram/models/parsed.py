"""What parsing hands back: text blocks with their provenance (page, time span, part of
an item), the result of parsing one item, a transcript, and the pure helpers that cut
text into blocks (shared by the parsers and the OCR / speech adapters)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

KINDS = ("image", "pdf", "doc", "html", "email", "audio", "video", "text")

# A block is what extraction reads in one go: a section, or a few paragraphs of one.
BLOCK_CHARS = 2000
BLOCK_SECONDS = 60.0  # timed text is merged into blocks of about a minute


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


@dataclass
class Transcript:
    blocks: list[TextBlock]  # each with start_s/end_s
    seconds: float  # length of the audio heard


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


def merge_timed_blocks(blocks: list[TextBlock], seconds: float = BLOCK_SECONDS
                       ) -> list[TextBlock]:
    """Consecutive stretches of speech joined while a block spans at most `seconds`."""
    merged: list[TextBlock] = []
    for block in blocks:
        last = merged[-1] if merged else None
        if last is not None and (block.end_s or 0) - (last.start_s or 0) <= seconds:
            merged[-1] = TextBlock(f"{last.text} {block.text}", start_s=last.start_s,
                                   end_s=block.end_s)
        else:
            merged.append(block)
    return merged
