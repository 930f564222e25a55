"""The state machine's Catch target: the task row becomes `failed`, naming the step and
the error ("dedupe: PermanentError: ..."), as `engram serve` reports it. The raw
request stays in the bucket, so the task can be run again."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.aws.steps import mark_step_failed
from engram.pipeline.steps import PipelineDeps


@logger.inject_lambda_context(log_event=True, correlation_id_path="task_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return mark_task_failed(event, aws_runtime().pipeline)


def mark_task_failed(event: dict[str, Any], deps: PipelineDeps) -> dict[str, Any]:
    return mark_step_failed(deps, event)
