"""Email (.eml, RFC 822 / MIME) with the stdlib: the headers that say who wrote to whom
about what and when, the body (plain text preferred, HTML otherwise), and each attachment
parsed as an item of its own, nested mails included, down to a fixed depth."""

from __future__ import annotations

import base64
import quopri
from collections.abc import Callable
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from engram.errors import ParseError
from engram.models.parsed import ParseResult, TextBlock, paragraphs_to_blocks
from engram.parsing.html_text import html_to_text
from engram.parsing.text import split_paragraphs

HEADERS = ("From", "To", "Cc", "Subject", "Date")
MAX_DEPTH = 3  # a mail attached to a mail attached to a mail, and no deeper
MAX_ATTACHMENTS = 50

# (payload, filename, content type, depth) → the attachment's own result
PartParser = Callable[[bytes, str, str, int], ParseResult]


def parse_email(
    data: bytes, *, parse_part: PartParser, depth: int = 0, origin: str = ""
) -> ParseResult:
    try:
        message = BytesParser(policy=policy.default).parsebytes(data)
    except Exception as exc:  # noqa: BLE001 - malformed MIME is reported, not raised raw
        raise ParseError(f"the email could not be read: {exc}") from exc
    result = ParseResult(kind="email", blocks=[])
    header_text = "\n".join(
        f"{name}: {message[name]}" for name in HEADERS if message.get(name) is not None
    )
    if header_text:
        result.blocks.append(TextBlock(header_text, origin=_join(origin, "headers")))
    body = _body_text(message)
    result.blocks += paragraphs_to_blocks(split_paragraphs(body), origin=_join(origin, "body"))
    pages = 0
    for count, part in enumerate(_attachments(message)):
        filename = part.get_filename() or f"attachment-{count + 1}"
        label = f"attachment {filename}"
        if count >= MAX_ATTACHMENTS:
            result.warnings.append(f"{label} skipped: over {MAX_ATTACHMENTS} attachments")
            continue
        if depth + 1 > MAX_DEPTH:
            result.warnings.append(f"{label} skipped: nested deeper than {MAX_DEPTH} mails")
            continue
        try:
            attached = parse_part(_payload(part), filename, part.get_content_type(), depth + 1)
        except (ParseError, ValueError) as exc:  # a bad attachment leaves the mail readable
            result.warnings.append(f"{label} skipped: {exc}")
            continue
        where = _join(origin, label)
        result.blocks += [_relabel(block, where) for block in attached.blocks]
        result.warnings += [f"{label}: {warning}" for warning in attached.warnings]
        pages += attached.pages or 0
    result.pages = pages or None
    return result


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset: decode the bytes as best we can
        content = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if part.get_content_type() == "text/html" else content


def _attachments(message: EmailMessage):
    """Attachments at any level: a multipart inside the mail is opened, not parsed whole."""
    for part in message.iter_attachments():
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            yield from _attachments(part)
        elif part.get_filename() or part.get_content_disposition() == "attachment" or (
            part.get_content_type() == "message/rfc822"
        ):
            yield part  # an unnamed inline part is a logo or a signature image: skipped


def _payload(part: EmailMessage) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) else inner
        raw = inner.as_bytes(policy=policy.default)
        # Some clients encode a forwarded mail (against RFC 2046); the parser then holds
        # the encoded text as a message without headers.
        encoding = (part.get("Content-Transfer-Encoding") or "").strip().lower()
        if encoding == "base64":
            return base64.b64decode(b"".join(raw.split()))
        if encoding == "quoted-printable":
            return quopri.decodestring(raw)
        return raw
    return part.get_payload(decode=True) or b""


def _relabel(block: TextBlock, origin: str) -> TextBlock:
    return replace(block, origin=_join(origin, block.origin))


def _join(outer: str, inner: str) -> str:
    return f"{outer} / {inner}" if outer and inner else outer or inner
