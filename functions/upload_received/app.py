"""S3 ObjectCreated notifications via the upload queue (SQS + DLQ): an inbox file becomes
a message task, or a failed task saying why. Once per bucket + key + sequencer (S3
redelivers); S3's test event is skipped; failed records are redelivered alone."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch import process_partial_response as process

from engram.aws.events import UploadQueueRecord
from engram.aws.intake import IdempotentIntake
from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime

processor = BatchProcessor(EventType.SQS, model=UploadQueueRecord,
                           raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return receive_uploads(event, context, aws_runtime().intake)


def receive_uploads(event: dict[str, Any], context: Any,
                    intake: IdempotentIntake) -> dict[str, Any]:
    intake.register_lambda_context(context)

    def receive(record: UploadQueueRecord) -> None:
        for created in record.created_objects():
            intake.inbox_object(created=created)

    return process(event=event, record_handler=receive, processor=processor, context=context)
