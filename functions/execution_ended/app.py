"""EventBridge "Step Functions Execution Status Change" (ABORTED, TIMED_OUT, FAILED) of
the ingest state machine: a task its execution left waiting or running ends failed,
naming why, where the state machine's own Catch never ran. Redeliveries are harmless."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.aws.steps import close_ended_execution
from engram.pipeline.steps import PipelineDeps


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return execution_ended(event, aws_runtime().pipeline)


def execution_ended(event: dict[str, Any], deps: PipelineDeps) -> dict[str, Any]:
    return close_ended_execution(deps, event)
