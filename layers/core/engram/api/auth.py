"""Who is asking: the tenant the authorizer resolved from the API key (the Lambda
authorizer on AWS, `engram serve` locally), read from the request context. The routes
never take a tenant from the request body."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from engram.errors import Unauthorized


def tenant_of(router: Router) -> str:
    context = router.current_event.request_context.authorizer.get_context() or {}
    tenant = context.get("tenant_id")
    if not tenant:
        raise Unauthorized("request was not authenticated")
    return tenant
