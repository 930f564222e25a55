"""Word documents: DOCX with python-docx (paragraphs and tables in document order), legacy
DOC and RTF with Debian's catdoc (a program, so it runs under a timeout)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zipfile
from io import BytesIO

from engram.config import Limits
from engram.errors import CapabilityUnavailable, LimitExceeded, ParseError
from engram.models.parsed import ParseResult, paragraphs_to_blocks
from engram.parsing.text import clean_lines

CATDOC_TIMEOUT_S = 60


def parse_docx(data: bytes, *, limits: Limits, origin: str = "") -> ParseResult:
    import docx
    from docx.table import Table

    pages = _docx_page_count(data)
    if pages is not None and pages > limits.max_pages:
        raise LimitExceeded(f"document has {pages} pages; the limit is {limits.max_pages} pages")
    try:
        document = docx.Document(BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many kinds on bad input
        raise ParseError(f"the Word document could not be read: {exc}") from exc
    paragraphs: list[tuple[str, bool]] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            paragraphs.append((_table_text(item), False))
        else:
            style = (item.style.name if item.style is not None else "") or ""
            paragraphs.append((item.text, style.startswith(("Heading", "Title"))))
    blocks = paragraphs_to_blocks(paragraphs, origin=origin)
    return ParseResult(kind="doc", blocks=blocks, pages=pages)


def _table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or cells[-1] != text:  # a merged cell repeats once per grid column
                cells.append(text)
        rows.append(" | ".join(cells))
    return "\n".join(rows)


def _docx_page_count(data: bytes) -> int | None:
    """The page count Word saved in docProps/app.xml, when it did (generators often don't)."""
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            app = archive.read("docProps/app.xml").decode("utf-8", errors="replace")
    except (KeyError, zipfile.BadZipFile):
        return None
    match = re.search(r"<(?:\w+:)?Pages>(\d+)</", app)
    return int(match.group(1)) if match else None


def parse_legacy_doc(data: bytes, *, origin: str = "") -> ParseResult:
    """Word 97–2003 .doc (and RTF) through catdoc."""
    catdoc = shutil.which("catdoc")
    if catdoc is None:
        raise CapabilityUnavailable("legacy .doc parsing unavailable: catdoc is not installed")
    # catdoc needs a seekable file (OLE containers are read out of order), not a pipe.
    with tempfile.NamedTemporaryFile(suffix=".doc") as file:
        file.write(data)
        file.flush()
        try:
            run = subprocess.run(
                [catdoc, "-w", "-d", "utf-8", file.name],
                capture_output=True,
                timeout=CATDOC_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ParseError(f"the .doc file took over {CATDOC_TIMEOUT_S} s to read") from exc
    if run.returncode != 0:
        reason = run.stderr.decode("utf-8", errors="replace").strip() or f"exit {run.returncode}"
        raise ParseError(f"the .doc file could not be read: {reason}")
    text = clean_lines(run.stdout.decode("utf-8", errors="replace"))
    # catdoc -w prints one paragraph per line
    paragraphs = [(line, False) for line in text.split("\n")]
    return ParseResult(kind="doc", blocks=paragraphs_to_blocks(paragraphs, origin=origin))
