"""State machine step after the waits for content jobs: their results merged into the
parse output, each item completed or failed with the reason (a job that never finished
included). In: the task ref with its jobs and how each wait ended; out: the task ref."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from engram.aws import content_waits
from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.pipeline import steps as pipeline


@logger.inject_lambda_context(log_event=True, correlation_id_path="task_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return collect_task(event, aws_runtime().pipeline)


def collect_task(event: dict[str, Any], deps: pipeline.PipelineDeps) -> dict[str, Any]:
    return content_waits.collect_content(deps, event)
