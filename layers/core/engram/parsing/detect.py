"""What kind of item some bytes are: magic bytes first (they cannot lie about a binary
format), then the file extension and content type, then a look at the text itself."""

from __future__ import annotations

import re
import zipfile
from io import BytesIO
from pathlib import PurePosixPath

from engram.errors import ParseError

EXTENSION_KINDS = {
    **dict.fromkeys(["png", "jpg", "jpeg", "gif", "webp", "bmp", "tif", "tiff"], "image"),
    "pdf": "pdf",
    **dict.fromkeys(["doc", "docx", "dot", "dotx", "rtf"], "doc"),
    **dict.fromkeys(["html", "htm", "xhtml"], "html"),
    "eml": "email",
    **dict.fromkeys(["mp3", "wav", "m4a", "aac", "ogg", "oga", "opus", "flac", "amr"], "audio"),
    **dict.fromkeys(["mp4", "webm", "mov", "mkv", "avi", "m4v"], "video"),
    **dict.fromkeys(["txt", "md", "markdown", "csv", "tsv", "json", "log", "rst", "yaml"], "text"),
}
MIME_KINDS = {
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "doc",
    "application/rtf": "doc",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "message/rfc822": "email",
    "text/plain": "text",
    "text/markdown": "text",
    "text/csv": "text",
    "application/json": "text",
}
# Headers that open an RFC 822 message (and rarely a plain text file).
EMAIL_START = re.compile(
    rb"^(?:Return-Path|Received|From|To|Subject|Date|Message-ID|MIME-Version|Delivered-To"
    rb"|X-[\w-]+):[ \t]",
    re.IGNORECASE,
)


def detect_kind(name: str | None, content_type: str | None, data: bytes) -> str:
    """image|pdf|doc|html|email|audio|video|text; ParseError when it is none of them."""
    kind = _kind_from_magic(data, name, content_type)
    if kind:
        return kind
    hinted = _kind_from_name(name) or _kind_from_mime(content_type)
    if hinted in ("html", "email", "text", "doc"):  # text formats: trust the label
        return hinted
    return _kind_from_text(data, hinted, name, content_type)


def _kind_from_magic(data: bytes, name: str | None, content_type: str | None) -> str | None:
    head = data[:16]
    if b"%PDF-" in data[:1024]:  # readers accept junk before the header
        return "pdf"
    if (
        head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a"))
        or head.startswith((b"II*\x00", b"MM\x00*"))
        or (head[:2] == b"BM" and head[6:10] == b"\x00" * 4)
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    ):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio"
    if head.startswith((b"ID3", b"OggS", b"fLaC", b"#!AMR", b"\xff\xfb", b"\xff\xf3")):
        return "audio"
    if head[4:8] == b"ftyp":  # ISO media: M4A is audio, the rest (mp4, mov) video
        return "audio" if head[8:11] in (b"M4A", b"M4B") else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska/WebM: audio only if labelled so
        hinted = _kind_from_name(name) or _kind_from_mime(content_type)
        return "audio" if hinted == "audio" else "video"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") or head.startswith(b"{\\rtf"):
        return "doc"  # OLE (Word 97–2003) or RTF: catdoc reads both
    if head.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return "doc"
        raise ParseError("unsupported file type: a ZIP archive that is not a Word document")
    return None


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _kind_from_name(name: str | None) -> str | None:
    suffix = PurePosixPath(name or "").suffix.lower().lstrip(".")
    return EXTENSION_KINDS.get(suffix)


def _kind_from_mime(content_type: str | None) -> str | None:
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in MIME_KINDS:
        return MIME_KINDS[mime]
    major = mime.split("/")[0]
    return {"image": "image", "audio": "audio", "video": "video", "text": "text"}.get(major)


def _kind_from_text(
    data: bytes, hinted: str | None, name: str | None, content_type: str | None
) -> str:
    sample = data[:4096]
    if _looks_binary(sample):
        label = name or content_type or "the data"
        what = f"no known {hinted} format" if hinted else "not a supported format"
        raise ParseError(f"unsupported file type: {label} is {what}")
    if EMAIL_START.match(sample) and re.search(rb"\r?\n\r?\n", sample):
        return "email"  # before HTML: a mail's HTML part would look like a page
    stripped = sample.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")) or b"<body" in stripped[:2048]:
        return "html"
    return "text"


def _looks_binary(sample: bytes) -> bool:
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text has NULs but a BOM
        return False
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls > len(sample) // 20
