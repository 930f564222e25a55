"""The state machine's waits for content jobs, as the Lambda functions see them: the
start function (a `.waitForTaskToken` task), the two completion consumers (Textract's
SNS notices through the OCR queue; Transcribe's EventBridge events) and the collect
step. The work itself is pipeline/content_jobs.py."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch import process_partial_response as process

from engram.adapters.textract_ocr import parse_completion
from engram.aws.events import (
    ContentJobTaskInput,
    OcrCompletionRecord,
    TranscribeJobStateChange,
)
from engram.aws.observability import count, logger
from engram.aws.steps import classified
from engram.models.pipeline import CollectContentInput
from engram.pipeline.content_jobs import ContentJobs, collect
from engram.pipeline.steps import PipelineDeps

ocr_processor = BatchProcessor(EventType.SQS, model=OcrCompletionRecord,
                               raise_on_entire_batch_failure=False)


def start_content_job(jobs: ContentJobs, event: dict[str, Any]) -> dict[str, Any]:
    """Record the token, start the job. What this returns is not the task's output: the
    task ends when the job's completion answers the token (or at its TimeoutSeconds)."""
    request = ContentJobTaskInput.model_validate(event)
    record = classified(lambda: jobs.start(request.ref(), request.job, request.task_token))
    count("ContentJobsStarted")
    return {"job_id": record.job_id, "engine": record.engine}


def ocr_notices(event: dict[str, Any], context: Any, jobs: ContentJobs) -> dict[str, Any]:
    """Textract completion notices; a failed record is redelivered alone (then DLQ)."""

    def finished(record: OcrCompletionRecord) -> None:
        notice = parse_completion(record.body)
        outcome = classified(lambda: jobs.ocr_finished(notice.job_id, notice.job_tag))
        logger.info("Textract job finished", extra={"job_id": notice.job_id,
                                                    "status": notice.status,
                                                    "outcome": outcome})

    return process(event=event, record_handler=finished, processor=ocr_processor,
                   context=context)


def transcription_notice(jobs: ContentJobs, event: dict[str, Any]) -> dict[str, Any]:
    """A "Transcribe Job State Change" event for a finished (or failed) job."""
    change = TranscribeJobStateChange.model_validate(event)
    name = change.detail.TranscriptionJobName
    outcome = classified(lambda: jobs.transcription_finished(name))
    return {"job_name": name, "status": change.detail.TranscriptionJobStatus,
            "outcome": outcome}


def collect_content(deps: PipelineDeps, event: dict[str, Any]) -> dict[str, Any]:
    request = CollectContentInput.model_validate(event)
    return classified(lambda: collect(deps, request, request.content_results)).model_dump()
