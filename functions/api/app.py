"""API function: API Gateway (REST) proxy events → the /v1 routes. The resolver is the
one `engram serve` runs, over the AWS adapters; the Lambda authorizer has already put
the caller's tenant in requestContext.authorizer, where the routes read it."""

from typing import Any

from engram.aws.coldstart import after_first_response  # first: see its docstring

# isort: split

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.aws.snapstart import prime_api, primed_by


@primed_by(prime_api)  # SnapStart only: loaded before the snapshot
@after_first_response
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)  # responses hold user memories
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime = aws_runtime()
    # an add's idempotency claim lapses with this invocation's time, should it die
    runtime.accept_once.register_lambda_context(context)
    return handle_request(event, context, runtime.api)


def handle_request(event: dict[str, Any], context: LambdaContext,
                   api: APIGatewayRestResolver) -> dict[str, Any]:
    return api.resolve(event, context)
