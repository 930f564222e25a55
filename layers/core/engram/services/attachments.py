"""Non-text content at accept time: the MemOS parts (`image_url`, `file`) and the EverOS
content items become `ItemInput`s, which are checked (counts, sizes, object keys of the
tenant, URLs that may be fetched) and turned into pointers the pipeline follows.

Nothing is fetched or parsed here: an add answers at once, and the parse step reads the
bytes later. Inline content (base64, data: URLs) is stored beside the raw request so the
request itself stays small (a Step Functions state carries pointers only)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

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

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?);base64,",
                       re.I)
_B64_CHARS = re.compile(r"^[A-Za-z0-9+/=\s_-]+$")
# Cloud metadata services: never fetched, allow-listed or not (the fetcher agrees).
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog",
                             "instance-data", "instance-data.ec2.internal",
                             "metadata.azure.internal"})
_METADATA_ADDRESSES = frozenset({"169.254.169.254", "169.254.170.2", "169.254.169.253",
                                 "fd00:ec2::254", "fd00:ec2::253", "100.100.100.200",
                                 "192.0.0.192"})


def _bad(where: str, message: str) -> Unprocessable:
    return Unprocessable(f"{where}: {message}")


def decode_base64(value: str, where: str) -> bytes:
    text = value.strip()
    if not text or not _B64_CHARS.match(text):
        raise _bad(where, "is not base64")
    try:
        compact = re.sub(r"\s+", "", text)
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(where, "is not valid base64") from None


def decode_data_url(value: str, where: str) -> tuple[bytes, str | None]:
    match = _DATA_URL.match(value)
    if not match:
        raise _bad(where, "a data: URL must be data:<type>;base64,<content>")
    content_type = (match.group("type") or "").lower() or None
    return decode_base64(unquote(value[match.end():]), where), content_type


def is_http_url(value: str) -> bool:
    return value[:8].lower().startswith(("http://", "https://"))


def fetch_refusal(url: str, allow_hosts: Sequence[str]) -> str | None:
    """Why this URL may not be fetched, judged from the URL alone (a name that resolves
    to a private address is refused by the fetcher, after DNS), or None."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http(s) URL"
    if not host:
        return "has no host"
    if host in _METADATA_NAMES:
        return f"names a cloud metadata service ({host}); refused"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address is not None and str(address) in _METADATA_ADDRESSES:
        return f"points to a cloud metadata address ({address}); refused"
    allowed = {h.lower() for h in allow_hosts}
    if host in allowed or (port and f"{host}:{port}" in allowed):
        return None
    hint = " (ENGRAM_FETCH_ALLOW_HOSTS names hosts that may be fetched anyway)"
    if address is None:
        if host == "localhost" or host.endswith(".localhost"):
            return f"names the local machine ({host}); refused{hint}"
        return None  # a name: the fetcher checks the addresses it resolves to
    if not address.is_global or address.is_multicast:
        kind = ("a loopback address" if address.is_loopback
                else "a link-local address" if address.is_link_local
                else "a private or reserved address")
        return f"points to {kind} ({address}); refused{hint}"
    return None


@dataclass
class AcceptedItems:
    items: list[ContentItem] = field(default_factory=list)
    statuses: list[ItemStatus] = field(default_factory=list)
    blobs: list[tuple[str, bytes]] = field(default_factory=list)  # inline content to store


@dataclass
class AttachmentIntake:
    uploads: UploadService
    limits: Limits
    allow_hosts: tuple[str, ...] = ()

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
                refusal = fetch_refusal(url, self.allow_hosts)
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
