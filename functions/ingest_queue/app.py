"""The ingest queue (SQS + DLQ): add/message jobs from other AWS services → the API's
IngestService, always async. Once per idempotency_key (else per content); an invalid
job is redelivered, then kept whole in the DLQ; failed records are redelivered alone."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch import process_partial_response as process

from engram.aws.events import IngestQueueRecord
from engram.aws.intake import IdempotentIntake
from engram.aws.observability import logger, metrics, tracer
from engram.aws.runtime import aws_runtime

processor = BatchProcessor(EventType.SQS, model=IngestQueueRecord,
                           raise_on_entire_batch_failure=False)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return ingest_jobs(event, context, aws_runtime().intake)


def ingest_jobs(event: dict[str, Any], context: Any, intake: IdempotentIntake) -> dict[str, Any]:
    intake.register_lambda_context(context)

    def ingest(record: IngestQueueRecord) -> None:  # Powertools passes `record=` by name
        intake.queued_message(job=record.body)

    return process(event=event, record_handler=ingest, processor=processor, context=context)
