"""The MemOS API called in-process, as a Lambda proxy event: the real resolver and
services, no HTTP server (for tests of what a route does, not of the transport)."""

from __future__ import annotations

import json
from collections.abc import Callable

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
