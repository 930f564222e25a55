"""parse_item on real generated files, no OCR engine: text layers, Word, HTML, email,
text, and the limits and refusals, each with the message a user would see."""

from __future__ import annotations

import shutil
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from tests import fixtures_docs as docs

from engram.config import Limits
from engram.errors import CapabilityUnavailable, LimitExceeded, ParseError
from engram.models.parsed import TextBlock, Transcript
from engram.parsing import parse_item


def text_of(result) -> str:
    return "\n".join(block.text for block in result.blocks)


# --- PDF ----------------------------------------------------------------------------------

def test_pdf_text_only_on_page_two_keeps_the_page_number():
    result = parse_item(docs.pdf_text_on_page_two(), kind="pdf", ocr=None)

    assert result.kind == "pdf" and result.pages == 3
    assert [block.page for block in result.blocks] == [2]
    assert "The launch moved to March 14." in result.blocks[0].text
    assert result.warnings == []


def test_pdf_scanned_page_without_ocr_is_a_warning_not_a_failure():
    result = parse_item(docs.pdf_scanned(), kind="pdf", ocr=None)

    assert [b.page for b in result.blocks] == [1]
    assert result.warnings == [
        "page 2 is a scanned image and no OCR engine is configured; its text was not read"
    ]


def test_pdf_over_the_page_limit_names_the_limit():
    with pytest.raises(LimitExceeded, match="^document has 201 pages; the limit is 200 pages$"):
        parse_item(docs.pdf_pages(201), kind="pdf", ocr=None)
    assert parse_item(docs.pdf_pages(200), kind="pdf", ocr=None).pages == 200


def test_pdf_over_the_size_limit_names_the_limit():
    limits = Limits(max_document_bytes=2**20)
    with pytest.raises(LimitExceeded, match=r"^document is 1\.5 MB; the limit is 1 MB$"):
        parse_item(b"%PDF-1.4" + b"\0" * (3 * 2**19), kind="pdf", ocr=None, limits=limits)


def test_broken_pdf_and_mislabelled_pdf_are_refused():
    with pytest.raises(ParseError, match="the PDF could not be read"):
        parse_item(b"%PDF-1.4\n garbage", kind="pdf", ocr=None)
    with pytest.raises(ParseError, match="is not a PDF"):
        parse_item(b"hello", kind="pdf", name="x.pdf", ocr=None)


# --- Word ---------------------------------------------------------------------------------

def test_docx_headings_start_blocks_and_tables_are_rows():
    result = parse_item(docs.docx_document(), kind="doc", ocr=None)

    assert result.kind == "doc"
    assert [b.text.split("\n")[0] for b in result.blocks] == ["Travel preferences", "Loyalty"]
    assert "Alice prefers window seats and vegetarian meals." in result.blocks[0].text
    assert "Airline | Seat\nLufthansa | 12A" in result.blocks[0].text
    assert "LH-99812" in result.blocks[1].text


@pytest.mark.skipif(shutil.which("catdoc") is None, reason="catdoc not installed")
def test_legacy_doc_through_catdoc():
    data = docs.legacy_doc(["Meeting notes from Tuesday.", "Bob sends the budget by Friday."])

    result = parse_item(data, kind="doc", ocr=None)

    assert text_of(result) == "Meeting notes from Tuesday.\n\nBob sends the budget by Friday."


def test_doc_item_holding_plain_text_is_read_as_text():
    result = parse_item(b"Just a note.\n\nSecond paragraph.", kind="doc", ocr=None)
    assert result.kind == "doc" and text_of(result) == "Just a note.\n\nSecond paragraph."


# --- HTML ---------------------------------------------------------------------------------

def test_html_main_text_without_navigation_header_footer_or_scripts():
    result = parse_item(docs.HTML_PAGE, kind="html", ocr=None)
    text = text_of(result)

    assert result.blocks[0].text.startswith("Lisbon trip notes\n\nThree days in Lisbon\n\n")
    assert "We stayed in Alfama, two streets from the Miradouro de Santa Luzia." in text
    assert "café included" in text and "- Belém on day two" in text
    assert result.blocks[1].text.startswith("Food")  # a heading starts a block
    for noise in ("Sign in", "Recipes", "Related posts", "Copyright", "track(", "font-family"):
        assert noise not in text


def test_html_without_main_uses_the_body_minus_chrome():
    page = (b"<html><body><nav>Menu</nav><div role='navigation'>More menu</div>"
            b"<div><h2>Notes</h2><p>One<br>two</p></div><footer>(c)</footer></body></html>")
    assert text_of(parse_item(page, kind="html", ocr=None)) == "Notes\n\nOne\ntwo"


def test_html_in_a_legacy_charset():
    page = "<html><head><meta charset='windows-1252'></head><body><p>Caf\u00e9</p></body></html>"
    assert text_of(parse_item(page.encode("cp1252"), kind="html", ocr=None)) == "Caf\u00e9"


# --- email --------------------------------------------------------------------------------

def test_email_headers_body_and_pdf_attachment_with_its_page():
    result = parse_item(docs.eml_with_pdf_attachment(), kind="email", ocr=None)

    headers, body, attached = result.blocks
    assert headers == TextBlock(
        "From: Carol Diaz <carol@example.com>\nTo: Alice Smith <alice@example.com>\n"
        "Subject: Falcon project report\nDate: Mon, 03 Mar 2025 09:30:00 +0000",
        origin="headers")
    assert body.text == "Hi Alice,\n\nthe quarterly report is attached.\n\nCarol"
    assert body.origin == "body"  # text/plain preferred over the HTML alternative
    assert attached.origin == "attachment report.pdf" and attached.page == 2
    assert "The launch moved to March 14." in attached.text
    assert result.pages == 3


def test_email_html_only_body_and_a_bad_attachment_is_a_warning():
    message = EmailMessage()
    message["Subject"] = "Menu"
    message.set_content("<html><body><nav>x</nav><p>Soup of the day</p></body></html>",
                        subtype="html")
    message.add_attachment(b"%PDF-1.4 broken", maintype="application", subtype="pdf",
                           filename="menu.pdf")

    result = parse_item(message.as_bytes(), kind="email", ocr=None)

    assert [b.text for b in result.blocks] == ["Subject: Menu", "Soup of the day"]
    assert result.warnings[0].startswith("attachment menu.pdf skipped: the PDF could not be read")


def forward(data: bytes, level: int, *, encoded: bool = False) -> bytes:
    outer = EmailMessage()
    outer["Subject"] = f"Fwd level {level}"
    outer.set_content("see attached")
    if encoded:  # as some clients do: the forwarded mail base64-encoded
        outer.add_attachment(data, maintype="message", subtype="rfc822", filename=f"l{level}.eml")
    else:
        inner = BytesParser(policy=policy.default).parsebytes(data)
        outer.add_attachment(inner, filename=f"l{level}.eml")
    return outer.as_bytes()


def test_nested_mails_are_read_down_to_a_depth_limit():
    data = docs.eml_with_pdf_attachment()
    for level in range(4):
        data = forward(data, level, encoded=level == 1)

    result = parse_item(data, kind="email", ocr=None)

    origins = [b.origin for b in result.blocks]
    assert origins == [
        "headers", "body",
        "attachment l3.eml / headers", "attachment l3.eml / body",
        "attachment l3.eml / attachment l2.eml / headers",
        "attachment l3.eml / attachment l2.eml / body",
        "attachment l3.eml / attachment l2.eml / attachment l1.eml / headers",
        "attachment l3.eml / attachment l2.eml / attachment l1.eml / body",
    ]
    assert result.blocks[-1].text == "see attached"
    assert result.warnings == [
        "attachment l3.eml: attachment l2.eml: attachment l1.eml: "
        "attachment l0.eml skipped: nested deeper than 3 mails"
    ]


def test_a_forwarded_mail_keeps_its_pdf_pages():
    result = parse_item(forward(docs.eml_with_pdf_attachment(), 0), kind="email", ocr=None)
    assert result.blocks[-1].origin == "attachment l0.eml / attachment report.pdf"
    assert result.blocks[-1].page == 2 and result.pages == 3


def test_image_attachment_without_ocr_is_a_warning():
    message = EmailMessage()
    message["Subject"] = "Photo"
    message.set_content("pic")
    message.add_attachment(docs.text_png(["hi"]), maintype="image", subtype="png",
                           filename="pic.png")
    result = parse_item(message.as_bytes(), kind="email", ocr=None)
    assert result.warnings == [
        "attachment pic.png skipped: image text recognition unavailable: no OCR engine configured"
    ]


# --- text, images, media ------------------------------------------------------------------

def test_text_in_utf8_utf16_and_legacy_encodings():
    markdown = "# Título\n\nOlá"
    assert text_of(parse_item(markdown.encode(), kind="text", ocr=None)) == markdown
    utf16 = "\ufeffZürich".encode("utf-16-le")
    assert text_of(parse_item(utf16, kind="text", ocr=None)) == "Zürich"
    latin = "Crème brûlée à la carte, très bien préparée près du château.".encode("cp1252")
    assert "brûlée" in text_of(parse_item(latin, kind="text", ocr=None))
    chinese = "我喜欢在周末去公园散步，然后和朋友一起喝茶。".encode("gbk")
    assert text_of(parse_item(chinese, kind="text", ocr=None)) == chinese.decode("gbk")


def test_long_text_is_cut_into_blocks():
    data = "\n".join(f"line {n} " + "x" * 90 for n in range(200)).encode()
    result = parse_item(data, kind="text", ocr=None)
    assert len(result.blocks) > 5 and all(len(b.text) <= 2000 for b in result.blocks)
    joined = "".join(b.text.replace("\n", "") for b in result.blocks)
    assert joined == data.decode().replace("\n", "")


def test_image_limits_and_missing_ocr():
    with pytest.raises(LimitExceeded, match=r"^image is 10\.5 MB; the limit is 10 MB$"):
        parse_item(b"\x89PNG\r\n\x1a\n" + b"\0" * (21 * 2**19), kind="image", ocr=None)
    with pytest.raises(CapabilityUnavailable, match="no OCR engine configured"):
        parse_item(docs.text_png(["hi"]), kind="image", ocr=None)
    with pytest.raises(ParseError, match="is not an image"):
        parse_item(b"plain words", kind="image", ocr=None)


def test_audio_and_video_without_a_transcriber_are_capability_unavailable():
    with pytest.raises(CapabilityUnavailable, match="^audio transcription unavailable: no speech"):
        parse_item(b"RIFF\0\0\0\0WAVEfmt ", kind="audio", ocr=None)
    with pytest.raises(LimitExceeded, match=r"^video is 2 MB; the limit is 1 MB$"):
        parse_item(b"\0" * 2**21, kind="video", ocr=None, limits=Limits(max_media_bytes=2**20))


def test_video_without_ffmpeg_says_so(monkeypatch):
    from engram.parsing import media

    monkeypatch.setattr(media.shutil, "which", lambda name: None)

    class Never:
        name = "never"

        def transcribe(self, audio, *, name=""):
            raise AssertionError("not reached")

    with pytest.raises(CapabilityUnavailable, match="needs ffmpeg, which is not installed"):
        parse_item(b"\0\0\0\x20ftypisom", kind="video", ocr=None, transcriber=Never())


def test_unknown_kind_and_empty_item():
    with pytest.raises(ParseError, match="unknown content kind 'spreadsheet'"):
        parse_item(b"a,b", kind="spreadsheet", ocr=None)
    with pytest.raises(ParseError, match="the file is empty"):
        parse_item(b"", kind="text", ocr=None)


def test_pages_that_need_ocr_are_listed_for_a_cloud_ocr_job():
    from engram.parsing.pdf import pages_without_text

    assert pages_without_text(docs.pdf_scanned()) == [2]
    assert pages_without_text(docs.pdf_text_on_page_two()) == [1, 3]


def test_media_goes_through_the_transcriber_port():
    class Recorder:
        name = "recorder"
        heard: list[tuple[bytes, str]] = []

        def transcribe(self, audio: bytes, *, name: str = "") -> Transcript:
            self.heard.append((audio, name))
            return Transcript([TextBlock("hello there", start_s=0.5, end_s=1.75)], seconds=2.0)

    wav = b"RIFF\0\0\0\0WAVEfmt "
    result = parse_item(wav, kind="audio", name="memo.wav", ocr=None, transcriber=Recorder())

    assert Recorder.heard == [(wav, "memo.wav")]
    assert result.kind == "audio" and result.seconds == 2.0
    assert result.blocks == [TextBlock("hello there", start_s=0.5, end_s=1.75)]
