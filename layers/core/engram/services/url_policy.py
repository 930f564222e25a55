"""The one policy for URLs that messages name: which a server may fetch (SSRF), and how
inline content (`data:` URLs, base64) is decoded.

SsrfPolicy answers twice for every URL, with the same rules and the same reasons: when an
add arrives (`services/attachments.py`, from the URL alone: a 422 naming the part) and when
the URL is fetched (`adapters/url_fetcher.py`, which gets the policy through the
`ports.UrlPolicy` Protocol), on the URL and again on the addresses its host resolves to,
on every redirect. Refused: other schemes than http(s), credentials in the URL, cloud
metadata hosts and addresses, and loopback, link-local, private, carrier-grade NAT,
multicast, unspecified and reserved addresses, IPv4 ones inside IPv6 included. An
allow-list (ENGRAM_FETCH_ALLOW_HOSTS, empty by default) names hosts that may be fetched
although private (tests, private deployments); metadata is refused even then.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from engram.errors import Unprocessable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.internal",
})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack
        "169.254.170.2",  # ECS task credentials
        "169.254.169.253",  # AWS DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address reached through a gateway
ALLOW_LIST_HINT = " (ENGRAM_FETCH_ALLOW_HOSTS names hosts that may be fetched anyway)"


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo or (None, None))[1]
    if embedded is None and ip in NAT64:
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return embedded


def is_metadata_address(ip: IPAddress) -> bool:
    embedded = _embedded_ipv4(ip)
    return ip in METADATA_ADDRESSES or (embedded is not None and embedded in METADATA_ADDRESSES)


def address_refusal(ip: IPAddress) -> str | None:
    """Why a server must not connect to this address, or None if it is public."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = address_refusal(embedded)
        return f"{reason} (as IPv6 {ip})" if reason else None
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip in SHARED_ADDRESS_SPACE, "a carrier-grade NAT address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for failed, reason in checks if failed), None)


class Refusal(NamedTuple):
    reason: str  # what is shown after "refused: "
    allow_listable: bool  # the allow-list could let it through (never for metadata)


class SsrfPolicy:
    """ports.UrlPolicy: the rules above, with this deployment's allow-list."""

    def __init__(self, allow_hosts: Iterable[str] = ()):
        self._allow = {_allow_entry(entry) for entry in allow_hosts if entry.strip()}

    def allows(self, host: str, port: int) -> bool:
        return (host, port) in self._allow or (host, None) in self._allow

    def url_refusal(self, url: str) -> str | None:
        refusal = self.check_url(url)
        return refusal.reason if refusal else None

    def accept_refusal(self, url: str) -> str | None:
        """The refusal as an add shows it, after the URL: "is refused: …"."""
        refusal = self.check_url(url)
        if refusal is None:
            return None
        return f"is refused: {refusal.reason}{ALLOW_LIST_HINT if refusal.allow_listable else ''}"

    def check_url(self, url: str) -> Refusal | None:
        """Why this URL may not be fetched, judged from the URL alone (a name that resolves
        to a refused address is caught by `resolved_refusal`, after DNS), or None."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            return Refusal(f"not a valid URL ({exc})", False)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            return Refusal(f"only http and https URLs are fetched, not {scheme or 'this'}",
                           False)
        if not parts.hostname:
            return Refusal("the URL names no host", False)
        if parts.username is not None or parts.password is not None:
            return Refusal("URLs with credentials in them are not fetched", False)
        host = parts.hostname.lower().rstrip(".")
        if host in METADATA_HOSTS:
            return Refusal(f"{host} is a cloud metadata host", False)
        allowed = self.allows(host, port or (443 if scheme == "https" else 80))
        literal = _ip_or_none(host)
        if literal is not None:
            return self._address(literal, allowed, str(literal))
        if (host == "localhost" or host.endswith(".localhost")) and not allowed:
            return Refusal(f"{host} is the local machine", True)
        return None  # a name: the addresses it resolves to are checked before connecting

    def resolved_refusal(self, host: str, port: int, addresses: Sequence[str]) -> str | None:
        """Why `host` may not be connected to at these (resolved) addresses: one refused
        address is enough."""
        allowed = self.allows(host, port)
        for text in addresses:
            ip = _ip_or_none(text)
            if ip is None:
                return f"{host} resolves to {text}, which is not an IP address"
            refusal = self._address(ip, allowed, f"{host} resolves to {ip}, which")
            if refusal:
                return refusal.reason
        return None

    @staticmethod
    def _address(ip: IPAddress, allowed: bool, subject: str) -> Refusal | None:
        reason = address_refusal(ip)
        metadata = is_metadata_address(ip)
        if reason is None or (allowed and not metadata):
            return None
        return Refusal(f"{subject} is {reason}", not metadata)


def _allow_entry(entry: str) -> tuple[str, int | None]:
    """'host', 'host:port', '[v6]:port' or a bare IPv6 address → (host, port or None)."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host.rstrip("."), int(port)
    return entry.rstrip("."), None


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# --- inline content ------------------------------------------------------------------------

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?);base64,",
                       re.I)
_B64_CHARS = re.compile(r"^[A-Za-z0-9+/=\s_-]+$")


def _bad(where: str, message: str) -> Unprocessable:
    return Unprocessable(f"{where}: {message}")


def decode_base64(value: str, where: str) -> bytes:
    """Base64 as clients send it: line breaks, the URL-safe alphabet and missing padding
    are accepted."""
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
    """data:<type>;base64,<content> → (bytes, the declared type or None). Only base64
    data: URLs are taken (MemOS sends images that way)."""
    match = _DATA_URL.match(value)
    if not match:
        raise _bad(where, "a data: URL must be data:<type>;base64,<content>")
    content_type = (match.group("type") or "").lower() or None
    return decode_base64(unquote(value[match.end():]), where), content_type
