"""Pydantic models of what reaches the Lambda functions, besides API Gateway requests
(those are the /v1 API's own models): S3 notifications through the upload queue, jobs
on the ingest queue, and what the state machine's Catch hands the mark-failed step.
A pipeline step's input is a plain TaskRef (models/domain.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsRecordModel
from pydantic import BaseModel, Field, Json, StrictStr

from engram.api.memos.models import AddMessageRequest
from engram.models.domain import TaskRef
from engram.models.pipeline import ContentJob


class S3TestEvent(BaseModel):
    """What S3 sends once when a notification configuration is saved: not work."""

    Service: str
    Event: Literal["s3:TestEvent"]
    Bucket: str


class S3ObjectCreated(BaseModel):
    """One created object. bucket + key + sequencer is the business key: S3 delivers at
    least once, and a duplicate delivery carries the same sequencer."""

    bucket: str
    key: str  # decoded: S3 URL-encodes keys in notifications ("+" for a space)
    sequencer: str
    size: int = 0
    event_time: datetime

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def message_id(self) -> str:
        """A stable message id, so the same object always yields the same message."""
        digest = hashlib.sha256(f"{self.bucket}/{self.key}#{self.sequencer}".encode())
        return "inbox_" + digest.hexdigest()[:20]


class S3NotifiedBucket(BaseModel):
    name: str


class S3NotifiedObject(BaseModel):
    key: str
    size: int = 0
    eTag: str = ""
    sequencer: str | None = None


class S3NotifiedEntity(BaseModel):
    bucket: S3NotifiedBucket
    object: S3NotifiedObject


class S3NotificationRecord(BaseModel):
    eventName: str
    eventTime: datetime
    s3: S3NotifiedEntity


class S3Notification(BaseModel):
    """An S3 event notification as S3 sends it to SQS, reduced to the fields Engram
    reads (Powertools' S3Model also requires userIdentity, requestParameters, ...)."""

    Records: list[S3NotificationRecord]


class UploadQueueRecord(SqsRecordModel):
    """An SQS record of the upload queue: an S3 event notification, or S3's test event."""

    body: Json[S3Notification | S3TestEvent]  # type: ignore[assignment]

    def created_objects(self) -> list[S3ObjectCreated]:
        if isinstance(self.body, S3TestEvent):
            return []
        return [
            S3ObjectCreated(
                bucket=r.s3.bucket.name, key=unquote_plus(r.s3.object.key),
                # S3 always sends a sequencer for ObjectCreated; should one be missing (moto
                # omits it), the event's time and ETag still tell a redelivery apart.
                sequencer=r.s3.object.sequencer or f"{r.eventTime.isoformat()}/{r.s3.object.eTag}",
                size=r.s3.object.size, event_time=r.eventTime)
            for r in self.body.Records
            # Console "folders" are empty objects whose key ends in "/": not files.
            if r.eventName.startswith("ObjectCreated:") and not r.s3.object.key.endswith("/")
        ]


class QueuedAddMessage(AddMessageRequest):
    """An add/message job that another AWS service put on the ingest queue. The queue's
    access policy is the authentication, so the job names its tenant."""

    tenant_id: str = Field(min_length=1, max_length=256)
    # Business key of the job; without one, the job's content is (tenant, user,
    # conversation and messages), so a redelivered copy is recognised either way.
    idempotency_key: StrictStr | None = Field(default=None, min_length=1, max_length=256)

    def request(self) -> AddMessageRequest:
        """The API request this job stands for; queued jobs always run asynchronously."""
        fields = self.model_dump(exclude={"tenant_id", "idempotency_key"}, exclude_unset=True)
        return AddMessageRequest.model_validate({**fields, "async_mode": True})


class IngestQueueRecord(SqsRecordModel):
    body: Json[QueuedAddMessage]  # type: ignore[assignment]


class IntakeResult(BaseModel):
    """What one inbox file or queued job became (stored as the idempotent result)."""

    task_id: str
    status: str
    error: str | None = None


class CaughtError(BaseModel):
    """What a Catch puts at ResultPath: the error name and, for Lambda tasks, a Cause
    that is itself JSON ({"errorType", "errorMessage", ...})."""

    Error: str
    Cause: str = ""

    def as_exception(self) -> Exception:
        """An exception named like the error, so the task's reason reads as it does when
        `engram serve` runs the pipeline ("dedupe: PermanentError: ...")."""
        try:
            message = json.loads(self.Cause).get("errorMessage") or self.Cause
        except (ValueError, AttributeError):
            message = self.Cause
        return type(self.Error, (Exception,), {})(message or self.Error)


class FailedStepInput(TaskRef):
    """The Catch target's input: the step's TaskRef with the caught error at $.error."""

    error: CaughtError

    def ref(self) -> TaskRef:
        return TaskRef(tenant_id=self.tenant_id, task_id=self.task_id, user_id=self.user_id)


# --- content jobs: the state machine's waits and the services' completion notices --------

class ContentJobTaskInput(TaskRef):
    """What a `.waitForTaskToken` task hands the start-content-job function: the task, the
    item's job and the token that the job's completion will answer."""

    job: ContentJob
    task_token: str = Field(min_length=1, max_length=2048)

    def ref(self) -> TaskRef:
        return TaskRef(tenant_id=self.tenant_id, task_id=self.task_id, user_id=self.user_id)


class OcrCompletionRecord(SqsRecordModel):
    """A Textract completion notice on the OCR queue: the SNS envelope (or, with raw
    message delivery, the notice itself) in the body, read by `parse_completion`."""

    body: str


class TranscribeJobStateDetail(BaseModel):
    TranscriptionJobName: str
    TranscriptionJobStatus: str
    FailureReason: str | None = None


class TranscribeJobStateChange(EventBridgeModel):
    """EventBridge's "Transcribe Job State Change" event (source aws.transcribe)."""

    detail: TranscribeJobStateDetail  # type: ignore[assignment]


# --- workflow executions that ended outside the state machine's own Catch -------------

class ExecutionStatusDetail(BaseModel):
    executionArn: str
    stateMachineArn: str
    name: str
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED | PENDING_REDRIVE
    input: Json[TaskRef] | None = None  # the execution's input: the task's ref
    cause: str | None = None
    error: str | None = None


class ExecutionStatusChange(EventBridgeModel):
    """EventBridge's "Step Functions Execution Status Change" event (source aws.states)."""

    detail: ExecutionStatusDetail  # type: ignore[assignment]
