"""EventBridge "Transcribe Job State Change" (COMPLETED or FAILED, job names of this
stack): the transcript JSON → blocks with time spans, stored for the collect step, and
the waiting task's token answered. A repeated event is harmless."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from engram.aws import content_waits
from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.pipeline.content_jobs import ContentJobs


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return receive_event(event, aws_runtime().content_jobs)


def receive_event(event: dict[str, Any], jobs: ContentJobs) -> dict[str, Any]:
    return content_waits.transcription_notice(jobs, event)
