"""The state machine's wait for a content job (`lambda:invoke.waitForTaskToken`): store
the task token under the job's business key, then start the Textract or Transcribe job.
The task ends when the job's completion answers the token, or at its TimeoutSeconds."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from engram.aws import content_waits
from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime
from engram.pipeline.content_jobs import ContentJobs


@logger.inject_lambda_context(correlation_id_path="task_id")  # the event holds a token
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return start_job(event, aws_runtime().content_jobs)


def start_job(event: dict[str, Any], jobs: ContentJobs) -> dict[str, Any]:
    return content_waits.start_content_job(jobs, event)
