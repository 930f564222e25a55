"""Local OCR for real: the tesseract program reading images and scanned PDF pages that the
tests render (scripts/install_system_packages.sh installs it; `make setup` runs that)."""

from __future__ import annotations

import os

import pytest
from tests import fixtures_docs as docs

from engram.adapters.tesseract_ocr import TesseractOcr
from engram.errors import CapabilityUnavailable
from engram.parsing import parse_item

# In CI a missing tesseract is an install bug to surface, not a reason to skip.
pytestmark = pytest.mark.skipif(
    not TesseractOcr.available() and not os.environ.get("CI"),
    reason="tesseract not installed (bash scripts/install_system_packages.sh)",
)


@pytest.fixture(scope="module")
def ocr():
    return TesseractOcr()


def words(text: str) -> str:
    return " ".join(text.split())


def test_png_with_text(ocr):
    png = docs.text_png(["Hello from Engram", "Order 4711 ships Monday"])

    result = parse_item(png, kind="image", name="note.png", ocr=ocr)

    assert result.kind == "image" and result.warnings == []
    assert words(result.blocks[0].text) == "Hello from Engram Order 4711 ships Monday"


def test_gif_is_re_encoded_for_ocr(ocr):
    gif, _ = docs.text_image(["Meet at Gate B12"], fmt="GIF")
    assert words(parse_item(gif, kind="image", ocr=ocr).blocks[0].text) == "Meet at Gate B12"


def test_image_without_text_gives_a_warning_and_no_blocks(ocr):
    blank, _ = docs.text_image([" "])
    result = parse_item(blank, kind="image", ocr=ocr)
    assert result.blocks == [] and result.warnings == ["OCR found no text in the image"]


def test_scanned_pdf_page_is_read_by_ocr_with_its_page_number(ocr):
    result = parse_item(docs.pdf_scanned(), kind="pdf", name="invoice.pdf", ocr=ocr)

    assert result.pages == 2 and [b.page for b in result.blocks] == [1, 2]
    assert result.blocks[0].text == "Cover letter from Acme Corp."
    assert words(result.blocks[1].text) == "Invoice number 4711 Total due 250 EUR"
    assert result.warnings == []


def test_scanned_pdf_attached_to_an_email(ocr):
    result = parse_item(docs.eml_with_pdf_attachment(docs.pdf_scanned()), kind="email", ocr=ocr)

    scanned = [b for b in result.blocks if b.page == 2]
    assert scanned[0].origin == "attachment report.pdf"
    assert "Invoice number 4711" in words(scanned[0].text)


def test_missing_binary_is_capability_unavailable():
    with pytest.raises(CapabilityUnavailable, match="tesseract is not installed"):
        TesseractOcr(binary="no-such-tesseract").image_text(docs.text_png(["x"]))


def test_scanned_pages_when_the_ocr_program_is_missing_are_warnings():
    ocr = TesseractOcr(binary="no-such-tesseract")
    pages = [docs.scanned_page(["one"]), docs.text_page(["typed"]), docs.scanned_page(["two"])]

    result = parse_item(docs.pdf(pages), kind="pdf", ocr=ocr)

    assert [(b.page, b.text) for b in result.blocks] == [(2, "typed")]
    assert result.warnings == [
        "image text recognition unavailable: tesseract is not installed",
        "pages 1, 3 are scanned images and no OCR engine is configured; their text was not read",
    ]
