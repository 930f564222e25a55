"""PDF: the text layer page by page (pypdf); a page without one is a scan, so its images
go through OCR. Every block keeps its 1-based page number."""

from __future__ import annotations

import logging
from io import BytesIO

from engram.config import Limits
from engram.errors import CapabilityUnavailable, LimitExceeded, ParseError
from engram.models.parsed import ParseResult, paragraphs_to_blocks
from engram.parsing.images import ocr_ready_image
from engram.parsing.text import clean_lines, split_paragraphs
from engram.ports import Ocr

# Images smaller than this on a side are logos, bullets and rules, not scanned text.
MIN_OCR_SIDE_PX = 48

logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files are common


def parse_pdf(
    data: bytes, *, ocr: Ocr | None, limits: Limits, origin: str = "",
    ocr_later: bool = False,
) -> ParseResult:
    """`ocr_later`: read the text layer only and list in `ocr_pages` the pages without
    one that hold an image, i.e. scans (the AWS path OCRs the document in one job)."""
    reader = open_pdf(data)
    count = page_count(reader, limits)
    result = ParseResult(kind="pdf", blocks=[], pages=count)
    scanned_without_ocr: list[int] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = _page_text(page)
        except Exception as exc:  # noqa: BLE001 - one broken page must not sink the document
            result.warnings.append(f"page {number} could not be read: {exc}")
            continue
        if not text and ocr_later:
            if _has_images(page):  # a blank page needs no OCR
                result.ocr_pages.append(number)
            continue
        if not text:
            if ocr is None:
                if len(page.images):
                    scanned_without_ocr.append(number)
                continue
            try:
                text = _ocr_page(page, number, ocr, result.warnings)
            except CapabilityUnavailable as exc:  # no engine after all: as if none was given
                result.warnings.append(str(exc))
                ocr = None
                scanned_without_ocr.append(number)
            except ParseError as exc:  # one page's OCR failed (timeout): keep the others
                result.warnings.append(f"page {number}: {exc}")
        if text:
            paragraphs = split_paragraphs(text)
            result.blocks += paragraphs_to_blocks(paragraphs, origin=origin, page=number)
    if scanned_without_ocr:
        pages = _page_list(scanned_without_ocr)
        result.warnings.append(
            f"pages {pages} are scanned images and no OCR engine is configured; "
            "their text was not read" if len(scanned_without_ocr) > 1 else
            f"page {pages} is a scanned image and no OCR engine is configured; "
            "its text was not read"
        )
    if not result.blocks and not result.ocr_pages:
        result.warnings.append("the PDF has no readable text")
    return result


def open_pdf(data: bytes):  # -> pypdf.PdfReader
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # owner-only passwords open
            raise ParseError("the PDF is password-protected")
        return reader
    except ParseError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise ParseError(f"the PDF could not be read: {exc}") from exc


def page_count(reader, limits: Limits) -> int:
    count = len(reader.pages)
    if count > limits.max_pages:
        raise LimitExceeded(
            f"document has {count} pages; the limit is {limits.max_pages} pages"
        )
    return count


def pages_without_text(data: bytes, limits: Limits | None = None) -> list[int]:
    """1-based numbers of the pages that need OCR: a Textract job is started only for
    documents that have some (its blocks then replace just those pages)."""
    reader = open_pdf(data)
    page_count(reader, Limits() if limits is None else limits)
    return [n for n, page in enumerate(reader.pages, start=1) if not _page_text(page)]


def _has_images(page) -> bool:
    try:
        return bool(len(page.images))
    except Exception:  # noqa: BLE001 - images pypdf cannot list: let the OCR engine try
        return True


def _page_text(page) -> str:
    return clean_lines(page.extract_text() or "")


def _ocr_page(page, number: int, ocr: Ocr, warnings: list[str]) -> str:
    texts = []
    try:
        images = list(page.images)
    except Exception as exc:  # noqa: BLE001 - an undecodable image: say so, go on
        warnings.append(f"page {number}: its images could not be decoded ({exc})")
        return ""
    for image in images:
        if image.image is not None and min(image.image.size) < MIN_OCR_SIDE_PX:
            continue
        texts.append(ocr.image_text(ocr_ready_image(image.data, pil_image=image.image)))
    text = clean_lines("\n\n".join(texts))
    if images and not text:
        warnings.append(f"page {number}: OCR found no text")
    return text


def _page_list(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")
