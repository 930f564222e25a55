"""Textract completion notices (SNS topic → OCR queue with DLQ): the job's pages read
with amazon-textract-response-parser, stored for the collect step, and the waiting
task's token answered. Redelivered notices are harmless; failed records retry alone."""

from typing import Any

from engram.aws import content_waits
from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.pipeline.content_jobs import ContentJobs


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return receive_notices(event, context, aws_runtime().content_jobs)


def receive_notices(event: dict[str, Any], context: Any, jobs: ContentJobs) -> dict[str, Any]:
    return content_waits.ocr_notices(event, context, jobs)
