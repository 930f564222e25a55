"""What the parse step hands to asynchronous jobs on AWS (pipeline/content_reader.AsyncEngines):
a PDF's scanned pages (never its blank ones) and audio/video, with their formats."""

from __future__ import annotations

import pytest
from tests import fixtures_docs as docs

from engram.config import Limits
from engram.errors import CapabilityUnavailable, LimitExceeded
from engram.models.parsed import ParseResult
from engram.parsing.media import media_format
from engram.parsing.pdf import pages_without_text, parse_pdf
from engram.pipeline.content_reader import AsyncEngines, Deferral

LIMITS = Limits()


def test_ocr_later_reads_the_text_layer_and_lists_the_scanned_pages():
    result = parse_pdf(docs.pdf_scanned(), ocr=None, limits=LIMITS, ocr_later=True)
    assert [(b.page, b.text) for b in result.blocks] == [(1, "Cover letter from Acme Corp.")]
    assert result.ocr_pages == [2] and result.warnings == []
    assert pages_without_text(docs.pdf_scanned()) == [2]  # the same criterion


def test_blank_pages_need_no_ocr_job():
    engines = AsyncEngines(ocr=True)
    planned = engines.plan(docs.pdf_text_on_page_two(), "pdf", "r.pdf", LIMITS)
    assert isinstance(planned, ParseResult) and [b.page for b in planned.blocks] == [2]


def test_a_scanned_pdf_is_deferred_with_what_was_read():
    planned = AsyncEngines(ocr=True).plan(docs.pdf_scanned(), "pdf", "s.pdf", LIMITS)
    assert isinstance(planned, Deferral) and planned.engine == "ocr"
    assert planned.partial.pages == 2 and planned.partial.ocr_pages == [2]


def test_limits_apply_before_a_job_is_planned():
    with pytest.raises(LimitExceeded, match="limit is 1 pages"):
        AsyncEngines(ocr=True).plan(docs.pdf_scanned(), "pdf", "s.pdf",
                                    Limits(max_pages=1))
    with pytest.raises(LimitExceeded, match="audio is"):
        AsyncEngines(transcription=True).plan(b"ID3" + b"\0" * 100, "audio", "a.mp3",
                                              Limits(max_media_bytes=10))


def test_media_is_deferred_or_unavailable_with_the_deployment_reason():
    planned = AsyncEngines(transcription=True).plan(b"ID3\x04" + b"\0" * 64, "audio",
                                                    "a.mp3", LIMITS)
    assert isinstance(planned, Deferral) and planned.media_format == "mp3"
    off = AsyncEngines(transcription_off="Transcribe is disabled here")
    with pytest.raises(CapabilityUnavailable, match="^video transcription unavailable: "
                                                    "Transcribe is disabled here$"):
        off.plan(b"\0\0\0\x18ftypmp42", "video", "v.mp4", LIMITS)
    assert AsyncEngines().plan(b"ID3", "audio", "a.mp3", LIMITS) is None  # local: as before


@pytest.mark.parametrize("head, name, expected", [
    (b"RIFF\0\0\0\0WAVEfmt ", "", "wav"), (b"ID3\x04", "", "mp3"), (b"OggS", "", "ogg"),
    (b"fLaC", "", "flac"), (b"\0\0\0\x20ftypM4A ", "", "m4a"),
    (b"\0\0\0\x14ftypqt  ", "", "mov"), (b"\0\0\0\x18ftypisom", "", "mp4"),
    (b"\x1a\x45\xdf\xa3....webm", "", "webm"), (b"????", "talk.AMR", "amr"),
    (b"????", "", None),
])
def test_media_format(head, name, expected):
    assert media_format(head, name) == expected
