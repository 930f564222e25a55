"""Fetching the URLs that messages name (image_url, file_data), without becoming a proxy
into the network the server runs in (SSRF).

SafeFetcher asks its UrlPolicy (ports.py; the one policy is services/url_policy.py) about
the URL, resolves the host itself and asks again about every address it got, then connects
to exactly an address that passed (no second DNS lookup an attacker could answer
differently), with the URL's host in the Host header and TLS SNI/certificate check.
Redirects are followed by hand, each hop checked again. Bytes and total time are capped.

Only http(s): `data:` URLs and base64 never get here, they are decoded when the add
arrives (services/attachments.py) and read from the object store.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from functools import cached_property
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

from engram.ports import UrlPolicy

Resolver = Callable[[str, int], list[str]]  # (host, port) → IP addresses

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


class SafeFetcher:
    def __init__(
        self,
        policy: UrlPolicy,
        *,
        max_bytes: int = 100 * 2**20,
        timeout_s: float = 30.0,
        max_redirects: int = 5,
        resolve: Resolver | None = None,
        tls_context: ssl.SSLContext | None = None,
        user_agent: str = "Engram/0.1 (+url-fetch)",
    ):
        self.policy = policy
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.resolve = resolve or resolve_host
        self._tls_context = tls_context
        self.user_agent = user_agent

    @cached_property
    def tls_context(self) -> ssl.SSLContext:
        # made by the first https fetch: loading the CA bundle takes ~20 ms of a cold start
        return self._tls_context or ssl.create_default_context()

    def fetch(self, url: str, *, max_bytes: int | None = None) -> FetchedContent:
        cap = self.max_bytes if max_bytes is None else max_bytes
        deadline = time.monotonic() + self.timeout_s
        for _ in range(self.max_redirects + 1):
            response = self._get(url, cap, deadline)
            if isinstance(response, FetchedContent):
                return response
            url = response  # a redirect: its target goes through every check again
        raise FetchFailed(f"too many redirects (the limit is {self.max_redirects})")

    def _get(self, url: str, cap: int, deadline: float) -> FetchedContent | str:
        """One hop: the content, or the URL a redirect points to."""
        refusal = self.policy.url_refusal(url)
        if refusal:
            raise FetchRefused(f"refused: {refusal}")
        target = _target(url)
        ips = self._addresses(target)
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

    def _addresses(self, target: _Target) -> list[str]:
        """The addresses to connect to, each one passed by the policy."""
        if _is_ip(target.host):
            return [target.host]  # the policy has judged it with the URL
        try:
            ips = self.resolve(target.host, target.port)
        except OSError as exc:
            raise FetchFailed(f"could not resolve {target.host}: {exc}") from exc
        if not ips:
            raise FetchFailed(f"could not resolve {target.host}: no addresses")
        refusal = self.policy.resolved_refusal(target.host, target.port, ips)
        if refusal:
            raise FetchRefused(f"refused: {refusal}")
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


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


def _target(url: str) -> _Target:
    """Where to connect, for a URL the policy let through (http(s), with a host)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = parts.hostname.lower().rstrip(".")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, parts.port or (443 if scheme == "https" else 80), path)


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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n // 2**20} MB" if n % 2**20 == 0 else f"{n / 2**20:.1f} MB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} bytes"
