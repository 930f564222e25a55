"""Non-text content of a message (images, documents, audio): what an add request says
about each item, the pointer the pipeline keeps (an object key or a URL, never the bytes)
and the per-item status get/status reports.

Provenance: item k of message m is `m#item=k`; a page of it `m#item=k&page=p`, a time span
`m#item=k&t=12.5,30.0` (the media-fragment form). Memories made from an item carry that
reference in `sources`, followed by the object key (or URL) with the same fragment.
"""

from __future__ import annotations

import mimetypes
from typing import Any, Literal

from pydantic import BaseModel, Field

# The EverOS content item types, plus `video` (audio track) and `file` (a MemOS file part,
# whose kind is found from its bytes).
ItemType = Literal["image", "audio", "video", "doc", "pdf", "html", "email", "file"]
ITEM_TYPES: tuple[str, ...] = ("image", "audio", "video", "doc", "pdf", "html", "email", "file")
SizeClass = Literal["image", "document", "media"]

ItemState = Literal["waiting", "processing", "completed", "failed"]
FAILED_PREFIX = "Processing Failed"  # MemOS's wording for an item over a limit


def size_class(item_type: str, content_type: str | None = None) -> SizeClass:
    """Which size limit applies: images 10 MB, audio/video 500 MB, anything else 100 MB."""
    if item_type == "image" or (content_type or "").startswith("image/"):
        return "image"
    if item_type in ("audio", "video") or (content_type or "").startswith(("audio/", "video/")):
        return "media"
    return "document"


def guess_content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def fragment(index: int, page: int | None = None, start_s: float | None = None,
             end_s: float | None = None) -> str:
    """`item=k`, `item=k&page=p` or `item=k&t=start,end` (seconds)."""
    out = f"item={index}"
    if page is not None:
        out += f"&page={page}"
    elif start_s is not None:
        out += f"&t={start_s:g},{end_s if end_s is not None else start_s:g}"
    return out


class ItemInput(BaseModel):
    """A non-text item as a request gave it, before it is checked and stored."""

    where: str  # "messages[0].content[1]": how errors name it
    type: ItemType
    name: str = ""
    ext: str | None = None
    key: str | None = None  # an object key from object/sign
    url: str | None = None  # an http(s) URL, fetched at parse time
    data: bytes | None = None  # inline content (base64 or a data: URL, decoded)
    content_type: str | None = None
    source: str | None = None
    source_info: dict[str, Any] | None = None
    extras: dict[str, Any] | None = None


class ContentItem(BaseModel):
    """A non-text item of a stored add request: a pointer plus what the client said."""

    message_id: str
    index: int  # position in the message's content list
    type: ItemType
    name: str = ""
    ext: str | None = None
    key: str | None = None  # object key: an upload, or inline content stored at accept
    url: str | None = None
    content_type: str | None = None
    source: str | None = None
    source_info: dict[str, Any] | None = None
    extras: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.message_id}#item={self.index}"

    @property
    def location(self) -> str:
        return self.key or self.url or ""


class ItemStatus(BaseModel):
    """One item's progress, as get/status shows it."""

    message_id: str
    index: int
    type: str
    name: str = ""
    uri: str = ""  # the object key or URL it was read from
    state: ItemState = "waiting"
    kind: str | None = None  # what parsing found it to be (pdf, docx, png, ...)
    pages: int | None = None
    seconds: float | None = None
    blocks: int = 0  # text blocks it yielded
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None  # "Processing Failed: <reason>"


class TextBlockRef(BaseModel):
    """A parsed text block with its provenance, as the parse step hands it to extract."""

    message_id: str
    index: int
    item_type: str
    kind: str
    name: str
    location: str  # object key or URL
    text: str
    page: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    origin: str = ""  # how the text was obtained: text layer, ocr, transcript, ...

    @property
    def ref(self) -> str:
        return f"{self.message_id}#{fragment(self.index, self.page, self.start_s, self.end_s)}"

    @property
    def location_ref(self) -> str:
        frag = fragment(self.index, self.page, self.start_s, self.end_s)
        rest = frag.partition("&")[2]
        return f"{self.location}#{rest}" if rest else self.location
