"""State machine step `index`: apply the plan: store, embed, index, complete the task.
A TaskRef in, the same TaskRef out; the work itself goes through the object store."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.aws.steps import run_step
from engram.pipeline import steps as pipeline


@logger.inject_lambda_context(log_event=True, correlation_id_path="task_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return index_task(event, aws_runtime().pipeline)


def index_task(event: dict[str, Any], deps: pipeline.PipelineDeps) -> dict[str, Any]:
    try:
        return run_step(pipeline.index, deps, event)
    finally:
        # Webhook deliveries run in threads; a frozen Lambda would hold them, so the step
        # waits a bounded while for them (EventBridge got its events synchronously).
        drain = getattr(deps.events, "drain", None)
        if drain is not None:
            drain(DELIVERY_WAIT_SECONDS)


DELIVERY_WAIT_SECONDS = 20
