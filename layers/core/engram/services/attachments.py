"""Non-text content at accept time: the MemOS parts (`image_url`, `file`) and the EverOS
content items become `ItemInput`s, which are checked (counts, sizes, object keys of the
tenant, URLs that may be fetched) and turned into pointers the pipeline follows.

Nothing is fetched or parsed here: an add answers at once, and the parse step reads the
bytes later. Inline content (base64, data: URLs) is stored beside the raw request so the
request itself stays small (a Step Functions state carries pointers only)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from engram.config import Limits
from engram.errors import PayloadTooLarge, Unprocessable
from engram.models.content import (
    ContentItem,
    ItemInput,
    ItemStatus,
    guess_content_type,
    size_class,
)
from engram.models.pipeline import item_key
from engram.services.uploads import UploadService, safe_file_name
from engram.services.url_policy import SsrfPolicy


def _bad(where: str, message: str) -> Unprocessable:
    return Unprocessable(f"{where}: {message}")


def is_http_url(value: str) -> bool:
    return value[:8].lower().startswith(("http://", "https://"))




@dataclass
class AcceptedItems:
    items: list[ContentItem] = field(default_factory=list)
    statuses: list[ItemStatus] = field(default_factory=list)
    blobs: list[tuple[str, bytes]] = field(default_factory=list)  # inline content to store


@dataclass
class AttachmentIntake:
    uploads: UploadService
    limits: Limits
    allow_hosts: tuple[str, ...] = ()  # ENGRAM_FETCH_ALLOW_HOSTS (see services/url_policy.py)

    def __post_init__(self) -> None:
        self._urls = SsrfPolicy(self.allow_hosts)

    def _limit(self, item_type: str, content_type: str | None) -> tuple[int, str]:
        kind = size_class(item_type, content_type)
        label = {"image": "images", "media": "audio and video",
                 "document": "documents"}[kind]
        return self.uploads.max_bytes(kind), label

    def _check_size(self, where: str, size: int, item_type: str,
                    content_type: str | None) -> None:
        limit, label = self._limit(item_type, content_type)
        if size > limit:
            raise PayloadTooLarge(f"{where} is {size} bytes; the limit for {label} is "
                                  f"{limit} bytes ({limit // (1024 * 1024)} MB)")

    def accept(self, tenant_id: str, user_id: str, task_id: str,
               drafts: Sequence[tuple[str, ItemInput]]) -> AcceptedItems:
        """Check every item of a request (all before any is stored: a refused request
        leaves nothing behind) and make their pointers. `drafts`: (message id, item)."""
        if len(drafts) > self.limits.max_files_per_request:
            raise Unprocessable(
                f"the request has {len(drafts)} files or other non-text items; the limit is "
                f"{self.limits.max_files_per_request} per request")
        out = AcceptedItems()
        positions: dict[str, int] = {}
        for message_id, draft in drafts:
            index = _content_index(draft.where, positions.get(message_id, 0))
            positions[message_id] = index + 1
            name = draft.name or ""
            key, url, content_type = draft.key, draft.url, draft.content_type
            if draft.data is not None:
                content_type = content_type or (guess_content_type(name) if name else None)
                self._check_size(draft.where, len(draft.data), draft.type, content_type)
                if not draft.data:
                    raise _bad(draft.where, "is empty")
                key = item_key(tenant_id, user_id, task_id, message_id, index)
                out.blobs.append((key, draft.data))
            elif url is not None:
                refusal = self._urls.accept_refusal(url)
                if refusal:
                    raise _bad(draft.where, f"{_shown(url)} {refusal}")
            elif key is not None:
                info = self.uploads.check_key(tenant_id, key, draft.where)
                name = name or key.rsplit("/", 1)[-1]
                content_type = content_type or info.content_type
                self._check_size(draft.where, info.size, draft.type, content_type)
            else:
                raise _bad(draft.where, "needs a uri (an object key from object/sign), a "
                                        "base64 content or a text")
            name = safe_file_name(name) if name else ""
            ext = draft.ext or (name.rsplit(".", 1)[-1].lower() if "." in name else None)
            item = ContentItem(message_id=message_id, index=index, type=draft.type, name=name,
                               ext=ext, key=key, url=url, content_type=content_type,
                               source=draft.source, source_info=draft.source_info,
                               extras=draft.extras)
            out.items.append(item)
            out.statuses.append(ItemStatus(message_id=message_id, index=index, type=draft.type,
                                           name=name, uri=item.location))
        return out


def _content_index(where: str, default: int) -> int:
    """The content position named at the end of `where` ("...content[3]..." → 3)."""
    found = re.findall(r"content\[(\d+)\]", where)
    return int(found[-1]) if found else default


def _shown(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "…"
