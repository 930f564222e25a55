"""detect_kind: magic bytes first, then name and content type, then the text itself."""

from __future__ import annotations

import pytest
from tests import fixtures_docs as docs

from engram.errors import ParseError
from engram.parsing import detect_kind


@pytest.mark.parametrize(
    ("name", "content_type", "data", "kind"),
    [
        (None, None, b"%PDF-1.7\n...", "pdf"),
        ("scan.bin", "application/octet-stream", b"\x89PNG\r\n\x1a\n....", "image"),
        (None, None, b"\xff\xd8\xff\xe0\x00\x10JFIF", "image"),
        (None, None, b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image"),
        (None, None, b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio"),
        (None, None, b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio"),
        (None, None, b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video"),
        (None, None, b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio"),
        ("talk.webm", None, b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "video"),
        ("voice.weba", "audio/webm", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "audio"),
        (None, None, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "doc"),
        (None, None, b"{\\rtf1\\ansi hello}", "doc"),
        ("page", None, b"<!DOCTYPE html><html><body>x</body></html>", "html"),
        ("notes.md", None, b"# Notes\n\nplain", "text"),
        ("a.eml", None, b"anything", "email"),
        (None, "message/rfc822", b"anything", "email"),
        (None, None, b"From: a@example.com\nSubject: hi\n\nbody", "email"),
        ("mail.txt", None, b"From: a@example.com\nSubject: hi\n\nbody", "text"),
        (None, None, "caf\u00e9 ol\u00e9".encode(), "text"),
        (None, None, b"BMW drivers are ... plain text", "text"),
    ],
)
def test_kinds(name, content_type, data, kind):
    assert detect_kind(name, content_type, data) == kind


def test_generated_documents_are_recognised():
    assert detect_kind("r.pdf", "application/pdf", docs.pdf_text_on_page_two()) == "pdf"
    assert detect_kind(None, None, docs.docx_document()) == "doc"
    assert detect_kind(None, None, docs.legacy_doc(["x"])) == "doc"
    assert detect_kind(None, None, docs.text_png(["x"])) == "image"
    assert detect_kind(None, None, docs.HTML_PAGE) == "html"
    assert detect_kind(None, None, docs.eml_with_pdf_attachment()) == "email"


def test_a_label_does_not_override_binary_content():
    assert detect_kind("photo.png", "image/png", docs.pdf_text_on_page_two()) == "pdf"


def test_unknown_binary_is_refused_with_a_reason():
    with pytest.raises(ParseError, match="unsupported file type: blob.xyz"):
        detect_kind("blob.xyz", None, bytes(range(256)) * 4)
    with pytest.raises(ParseError, match="ZIP archive that is not a Word document"):
        detect_kind("a.zip", None, b"PK\x03\x04" + b"\x00" * 100)
