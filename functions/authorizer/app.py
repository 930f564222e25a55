"""REQUEST authorizer: `Authorization: Token <key>` → the key's tenant (a SHA-256 lookup);
Allow carries tenant_id to the routes, Deny the reason (ACCESS_DENIED makes it a 401)."""

from typing import Any

from engram.aws.coldstart import after_first_response  # first: see its docstring

# isort: split

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from engram.aws.observability import logger, tracer
from engram.aws.runtime import api_key_service
from engram.aws.snapstart import prime_authorizer, primed_by
from engram.errors import Unauthorized
from engram.services.keys import ApiKeyService


@primed_by(prime_authorizer)  # SnapStart only: loaded before the snapshot
@after_first_response
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def lambda_handler(event: APIGatewayAuthorizerRequestEvent, context: Any) -> dict[str, Any]:
    return authorize(event, api_key_service()).asdict()


def authorize(event: APIGatewayAuthorizerRequestEvent,
              keys: ApiKeyService) -> APIGatewayAuthorizerResponse:
    try:
        tenant = keys.tenant_for_header(event.headers.get("Authorization"))
        context, allowed = {"tenant_id": tenant}, True
    except Unauthorized as denied:
        tenant, context, allowed = "anonymous", {"reason": denied.message}, False
    policy = APIGatewayAuthorizerResponse.from_route_arn(event.method_arn, tenant, context)
    # Every route: API Gateway reuses the cached answer for all routes this key calls.
    if allowed:
        policy.allow_all_routes()
    else:
        policy.deny_all_routes()
    return policy
