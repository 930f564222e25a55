"""One Router per resource. Each is built by a function that takes the services, so a
resolver (and its routers) can be created per worker thread and per test."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from engram.errors import Unauthorized


def tenant_of(router: Router) -> str:
    """The tenant the authorizer (Lambda authorizer on AWS, the local server here)
    resolved from the API key. Never taken from the request body."""
    context = router.current_event.request_context.authorizer.get_context() or {}
    tenant = context.get("tenant_id")
    if not tenant:
        raise Unauthorized("request was not authenticated")
    return tenant
