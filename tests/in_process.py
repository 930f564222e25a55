"""The API called in-process, as a Lambda proxy event: the real resolver and services, no
HTTP server (for tests of what a route does, not of the transport). `local_runtime` (a
fixture in tests/conftest.py) gives the services: SQLite in a temp dir, the hashing
embedder."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engram.api.app import create_app
from engram.container import Services
from engram.local.server import LambdaContext, proxy_event


def memos_caller(services: Services, tenant: str = "tenant-a") -> Callable[[str, dict], dict]:
    """`call(route, body)` → the response's `data`, asserting a 200."""
    app = create_app(services)

    def call(route: str, body: dict) -> dict:
        event = proxy_event("POST", f"/v1/{route}", {"Content-Type": "application/json"},
                            json.dumps(body), tenant, "127.0.0.1")
        response = app.resolve(event, LambdaContext())
        assert response["statusCode"] == 200, response["body"]
        return json.loads(response["body"])["data"]

    return call


def api_caller(services: Services, prefix: str = "/v1"
               ) -> Callable[..., tuple[int, dict[str, Any]]]:
    """`call(route, body, tenant=, method=)` → (status, parsed body), any status. A str
    body is sent as it is (hostile-input tests)."""
    app = create_app(services)

    def call(route: str, body: Any = None, tenant: str = "tenant-a", method: str = "POST",
             version: str | None = None) -> tuple[int, dict[str, Any]]:
        raw = body if isinstance(body, str) or body is None else json.dumps(body)
        base = prefix if version is None else f"/api/{version}"
        event = proxy_event(method, f"{base}/{route}", {"Content-Type": "application/json"},
                            raw, tenant, "127.0.0.1")
        response = app.resolve(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    return call
