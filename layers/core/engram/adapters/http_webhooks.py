"""Webhook requests: one POST to an address the SSRF policy passed after DNS resolution,
connected to that very address (no second lookup a rebinding name could change), no
redirects followed (a 3xx is an answer, not a success)."""

from __future__ import annotations

import http.client
import ssl
from functools import cached_property

from engram.adapters.url_fetcher import (
    PinnedHTTPConnection,
    PinnedHTTPSConnection,
    _is_ip,
    _target,
    resolve_host,
)
from engram.errors import WebhookRefused
from engram.ports import UrlPolicy


class HttpWebhookTransport:
    """Implements WebhookTransport."""

    def __init__(self, policy: UrlPolicy, tls_context: ssl.SSLContext | None = None):
        self.policy = policy
        self._tls_context = tls_context

    @cached_property
    def tls(self) -> ssl.SSLContext:
        # made by the first https delivery, not at cold start (loading the CA bundle)
        return self._tls_context or ssl.create_default_context()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        refusal = self.policy.url_refusal(url)
        if refusal:
            raise WebhookRefused(refusal)
        target = _target(url)
        ips = [target.host] if _is_ip(target.host) else resolve_host(target.host, target.port)
        if not _is_ip(target.host):
            refusal = self.policy.resolved_refusal(target.host, target.port, ips)
            if refusal:
                raise WebhookRefused(refusal)
        last: OSError | None = None
        for ip in ips:
            connection = (PinnedHTTPSConnection(target.host, target.port, ip, timeout, self.tls)
                          if target.scheme == "https"
                          else PinnedHTTPConnection(target.host, target.port, ip, timeout))
            try:
                connection.request("POST", target.path, body=body,
                                   headers={**headers, "Connection": "close"})
                response = connection.getresponse()
                response.read(64 * 1024)  # what it says is not used; a little is drained
                return response.status
            except (OSError, http.client.HTTPException) as exc:
                last = exc if isinstance(exc, OSError) else OSError(str(exc))
            finally:
                connection.close()
        raise last or OSError(f"could not connect to {target.host}")
