"""Fetching the URLs that messages name (image_url, file_data), without becoming a proxy
into the network the server runs in (SSRF).

SafeFetcher resolves the host itself, refuses private, loopback, link-local, multicast,
reserved, CGNAT and cloud-metadata addresses, then connects to exactly the address it
checked (no second DNS lookup an attacker could answer differently), with the URL's host
in the Host header and TLS SNI/certificate check. Redirects are followed by hand, each hop
checked again. Bytes and total time are capped. An allow-list (empty by default) names
hosts that may be fetched although private: tests, private deployments.

`data:` URLs are decoded here too, with the same size cap.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from pathlib import PurePosixPath
from urllib.parse import unquote, unquote_to_bytes, urljoin, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]  # (host, port) → IP addresses

METADATA_HOSTS = {
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.internal",
}
METADATA_ADDRESSES = {
    ipaddress.ip_address(a) for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack
        "169.254.170.2",  # ECS task credentials
        "169.254.169.253",  # AWS DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
}
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address reached through a gateway
REDIRECTS = {301, 302, 303, 307, 308}
CHUNK = 64 * 1024


class FetchError(Exception):
    """A URL could not be fetched; str() is the reason shown to the user."""


class FetchRefused(FetchError):
    """Policy said no: scheme, address, size. Retrying will not help."""


class FetchFailed(FetchError):
    """The fetch was tried and failed: DNS, connection, TLS, HTTP status, time."""


@dataclass(frozen=True)
class FetchedContent:
    data: bytes
    content_type: str | None
    name: str  # file name from Content-Disposition or the URL's path ("" if none)
    url: str  # the URL finally fetched, after redirects


def address_refusal(ip: IPAddress) -> str | None:
    """Why a server must not connect to this address, or None if it is public."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo or (None, None))[1]
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
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


class SafeFetcher:
    def __init__(
        self,
        *,
        allow_hosts: Iterable[str] = (),
        max_bytes: int = 100 * 2**20,
        timeout_s: float = 30.0,
        max_redirects: int = 5,
        resolve: Resolver | None = None,
        tls_context: ssl.SSLContext | None = None,
        user_agent: str = "Engram/0.1 (+url-fetch)",
    ):
        self.allow = {_allow_entry(entry) for entry in allow_hosts if entry.strip()}
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.resolve = resolve or resolve_host
        self.tls_context = tls_context or ssl.create_default_context()
        self.user_agent = user_agent

    def fetch(self, url: str, *, max_bytes: int | None = None) -> FetchedContent:
        cap = self.max_bytes if max_bytes is None else max_bytes
        if url.strip().lower().startswith("data:"):
            return parse_data_url(url.strip(), max_bytes=cap)
        deadline = time.monotonic() + self.timeout_s
        for _ in range(self.max_redirects + 1):
            response = self._get(url, cap, deadline)
            if isinstance(response, FetchedContent):
                return response
            url = response  # a redirect: its target goes through every check again
        raise FetchFailed(f"too many redirects (the limit is {self.max_redirects})")

    def _get(self, url: str, cap: int, deadline: float) -> FetchedContent | str:
        """One hop: the content, or the URL a redirect points to."""
        target = _checked_url(url)
        ips = self._checked_addresses(target.host, target.port)
        connection = self._connect(target, ips, deadline)
        try:
            connection.request("GET", target.path, headers={
                "User-Agent": self.user_agent, "Accept": "*/*",
                "Accept-Encoding": "identity", "Connection": "close",
            })
            response = connection.getresponse()
            if response.status in REDIRECTS and response.getheader("Location"):
                return urljoin(url, response.getheader("Location").strip())
            if response.status != 200:
                raise FetchFailed(f"HTTP {response.status} {response.reason} from {target.host}")
            data = _read_capped(response, connection, cap, deadline, self.timeout_s)
            return FetchedContent(
                data=data,
                content_type=response.getheader("Content-Type"),
                name=_file_name(response.getheader("Content-Disposition"), target.path),
                url=url,
            )
        except TimeoutError as exc:
            raise FetchFailed(self._timed_out()) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise FetchFailed(f"could not fetch from {target.host}: {exc}") from exc
        finally:
            connection.close()

    def _checked_addresses(self, host: str, port: int) -> list[str]:
        if host in METADATA_HOSTS:
            raise FetchRefused(f"refused: {host} is a cloud metadata host")
        allowed = (host, port) in self.allow or (host, None) in self.allow
        literal = _ip_or_none(host)
        if literal is not None:
            ips = [str(literal)]
        else:
            try:
                ips = self.resolve(host, port)
            except OSError as exc:
                raise FetchFailed(f"could not resolve {host}: {exc}") from exc
            if not ips:
                raise FetchFailed(f"could not resolve {host}: no addresses")
        for text in ips:
            ip = _ip_or_none(text)
            reason = address_refusal(ip) if ip else "not an IP address"
            if reason is None or (allowed and reason != "a cloud metadata address"):
                continue
            where = f"{ip}" if literal is not None else f"{host} resolves to {ip}, which"
            raise FetchRefused(f"refused: {where} is {reason}")
        return ips

    def _connect(self, target: _Target, ips: list[str], deadline: float):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed(self._timed_out())
        last_error: OSError | None = None
        for ip in ips:  # every one of them passed the checks
            if target.scheme == "https":
                connection = PinnedHTTPSConnection(
                    target.host, target.port, ip, remaining, self.tls_context)
            else:
                connection = PinnedHTTPConnection(target.host, target.port, ip, remaining)
            try:
                connection.connect()
                return connection
            except TimeoutError as exc:
                raise FetchFailed(self._timed_out()) from exc
            except ssl.SSLError as exc:
                raise FetchFailed(f"TLS with {target.host} failed: {exc}") from exc
            except OSError as exc:
                last_error = exc
        raise FetchFailed(f"could not connect to {target.host}: {last_error}")

    def _timed_out(self) -> str:
        return f"timed out: the fetch took longer than {self.timeout_s:g} s"


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a given IP; the Host header still names the URL's host."""

    def __init__(self, host: str, port: int, ip: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self.ip, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given IP; SNI and the certificate check use the URL's host."""

    def __init__(self, host: str, port: int, ip: str, timeout: float, tls: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=tls)
        self.ip = ip
        self.tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self.ip, self.port), self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def resolve_host(host: str, port: int) -> list[str]:
    """All the host's addresses, in the resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def parse_data_url(url: str, *, max_bytes: int) -> FetchedContent:
    """data:[<media type>][;base64],<data> (RFC 2397), refused before decoding if too big."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise FetchFailed("malformed data URL: no ',' before the data")
    params = [p.strip() for p in header.split(";")]
    is_base64 = params[-1].lower() == "base64"
    media_type = (params[0] if params[0] and "=" not in params[0] else "text/plain").lower()
    estimated = len(payload) * 3 // 4 if is_base64 else len(payload)
    if estimated > max_bytes + 3:
        raise FetchRefused(f"refused: the data URL holds about {_size(estimated)}; "
                           f"the limit is {_size(max_bytes)}")
    try:
        data = (
            base64.b64decode("".join(unquote(payload).split()), validate=True)
            if is_base64 else unquote_to_bytes(payload)
        )
    except (binascii.Error, ValueError) as exc:
        raise FetchFailed(f"malformed data URL: {exc}") from exc
    if len(data) > max_bytes:
        raise FetchRefused(
            f"refused: the data URL holds {_size(len(data))}; the limit is {_size(max_bytes)}")
    return FetchedContent(data=data, content_type=media_type, name="", url="data:")


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


def _checked_url(url: str) -> _Target:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchRefused(f"refused: not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused(f"refused: only http and https URLs are fetched, not {scheme or 'this'}")
    if not parts.hostname:
        raise FetchRefused("refused: the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise FetchRefused("refused: URLs with credentials in them are not fetched")
    host = parts.hostname.lower().rstrip(".")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _read_capped(response, connection, cap: int, deadline: float, timeout_s: float) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise FetchRefused(
            f"refused: the response is {_size(int(declared))}; the limit is {_size(cap)}")
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed(f"timed out: the fetch took longer than {timeout_s:g} s")
        if connection.sock is not None:
            connection.sock.settimeout(remaining)  # a slow sender cannot outlast the deadline
        chunk = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:  # stop reading: the rest is never downloaded
            raise FetchRefused(f"refused: the response is over the limit of {_size(cap)}")
        chunks.append(chunk)


def _file_name(disposition: str | None, path: str) -> str:
    if disposition:
        message = Message()
        message["Content-Disposition"] = disposition
        name = message.get_filename()
        if name:
            return PurePosixPath(name).name
    return PurePosixPath(unquote(path.split("?")[0])).name


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


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n // 2**20} MB" if n % 2**20 == 0 else f"{n / 2**20:.1f} MB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} bytes"
