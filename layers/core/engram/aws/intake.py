"""Work that reaches Engram from other AWS services instead of the API: files put under
inbox/<tenant_id>/<user_id>/ in the bucket, and add/message jobs sent to the ingest
queue. Both become tasks through the same IngestService the API uses (a queued job, and
an inbox text file, through the MemOS translation: api/memos/translate.py).

S3 and SQS deliver at least once, so `IdempotentIntake` runs each business key once
(bucket + key + sequencer for an inbox file; the job's idempotency_key, or its content,
for a queued job) and hands a repeat delivery the first result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (
    PydanticSerializer,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from engram.adapters.idempotency import PowertoolsAcceptOnce
from engram.api.memos.models import AddMessageRequest
from engram.api.memos.translate import accept_args
from engram.aws.events import IntakeResult, QueuedAddMessage, S3ObjectCreated
from engram.aws.observability import count
from engram.errors import EngramError, PermanentError
from engram.models.content import ItemInput
from engram.models.domain import Role, Task, TaskStatus
from engram.models.requests import AddSpec, MessageDraft
from engram.ports import ObjectStore, TaskStore
from engram.services.ingest import IngestService

log = logging.getLogger(__name__)

INBOX_PREFIX = "inbox/"
INBOX_CONVERSATION = "inbox"
# A text file is one text message; anything else is parsed as a file item.
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})


class InboxLocation(BaseModel):
    tenant_id: str
    user_id: str
    name: str  # the path under the user's folder


def inbox_location(key: str) -> InboxLocation | None:
    """inbox/<tenant_id>/<user_id>/<name...>, or None for any other key."""
    if not key.startswith(INBOX_PREFIX):
        return None
    tenant, _, rest = key.removeprefix(INBOX_PREFIX).partition("/")
    user, _, name = rest.partition("/")
    if not (tenant and user and name) or name.endswith("/"):
        return None
    return InboxLocation(tenant_id=tenant, user_id=user, name=name)


class InboxFileRejected(PermanentError):
    """The file cannot become a message; its task ends failed with this reason."""


def _validation_reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "request"
    return f"{where}: {first.get('msg', 'invalid')}"


@dataclass
class Intake:
    ingest: IngestService
    objects: ObjectStore
    tasks: TaskStore
    bucket: str

    def inbox_object(self, created: S3ObjectCreated) -> IntakeResult:
        """An inbox text file → a text message task; any other file (PDF, DOCX, image,
        email, ...) → a message holding it as an item, parsed like an upload; or a failed
        task that says why; never dropped. A key outside inbox/<tenant>/<user>/ has no
        task to fail, so it is raised: the delivery is retried and ends in the DLQ."""
        where = inbox_location(created.key)
        if created.bucket != self.bucket or where is None:
            raise PermanentError(
                f"{created.uri} is not under s3://{self.bucket}/{INBOX_PREFIX}<tenant>/<user_id>/")
        chat_time = int(created.event_time.timestamp() * 1000)
        try:
            if PurePosixPath(where.name).suffix.lower() not in TEXT_SUFFIXES:
                accepted = self.ingest.accept(
                    where.tenant_id,
                    AddSpec(user_id=where.user_id, conversation_id=INBOX_CONVERSATION,
                            info={"source": created.uri}),
                    [MessageDraft(role=Role.user, text="", chat_time=chat_time,
                                  message_id=created.message_id, items=[ItemInput(
                                      where=created.uri, type="file", key=created.key,
                                      name=PurePosixPath(where.name).name)])])
                count("TasksAccepted")
                return IntakeResult(task_id=accepted.task_id, status=accepted.status)
            request = AddMessageRequest(
                user_id=where.user_id, conversation_id=INBOX_CONVERSATION,
                messages=[{"role": "user", "content": self._read_text(created, where),
                           "message_id": created.message_id, "chat_time": chat_time}],
                info={"source": created.uri}, async_mode=True)
            accepted = self.ingest.accept(where.tenant_id, *accept_args(request))
        except ValidationError as error:
            return self._reject(created, where, _validation_reason(error))
        except EngramError as error:
            if error.status_code >= 500 and not isinstance(error, PermanentError):
                raise  # transient: let the queue redeliver
            return self._reject(created, where, error.message)
        count("TasksAccepted")
        return IntakeResult(task_id=accepted.task_id, status=accepted.status)

    def queued_message(self, job: QueuedAddMessage) -> IntakeResult:
        """A queued add/message job (a MemOS add), run as the API would run it
        (asynchronously). An invalid job raises: it is redelivered, then kept whole in the
        ingest DLQ."""
        accepted = self.ingest.accept(job.tenant_id,
                                      *accept_args(job.request(), job.idempotency_key))
        count("TasksAccepted")
        return IntakeResult(task_id=accepted.task_id, status=accepted.status)

    def _read_text(self, created: S3ObjectCreated, where: InboxLocation) -> str:
        # Checked before reading: an oversized file must not exhaust the function's memory.
        limit = self.ingest.limits.max_message_chars * 4  # UTF-8 needs at most 4 bytes each
        if created.size > limit:
            raise InboxFileRejected(f"the file is {created.size} bytes; a text file may have "
                                    f"at most {self.ingest.limits.max_message_chars} characters")
        try:
            data = self.objects.get_bytes(created.key)
        except KeyError:
            raise InboxFileRejected("the file was deleted before it was read") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InboxFileRejected("the file is not UTF-8 text") from None
        if not text.strip():
            raise InboxFileRejected("the file is empty")
        return text

    def _reject(self, created: S3ObjectCreated, where: InboxLocation,
                reason: str) -> IntakeResult:
        task = Task(tenant_id=where.tenant_id, user_id=where.user_id,
                    conversation_id=INBOX_CONVERSATION, status=TaskStatus.failed,
                    step="inbox", error=f"inbox: {reason} ({created.uri})")
        self.tasks.create(task)
        log.warning("inbox file rejected: %s", task.error,
                    extra={"tenant_id": task.tenant_id, "task_id": task.task_id})
        count("InboxFilesRejected")
        return IntakeResult(task_id=task.task_id, status=task.status.value, error=task.error)


class IdempotentIntake:
    """`Intake` with Powertools idempotency on business keys (never the SQS message id).

    Each function gets its own persistence layer: Powertools configures a layer once,
    from the first config it sees."""

    def __init__(self, intake: Intake, inbox_store: BasePersistenceLayer,
                 queue_store: BasePersistenceLayer, expires_after_seconds: int,
                 accept_once: PowertoolsAcceptOnce | None = None):
        self._accept_once = accept_once  # the ingest service's own, under each accept
        self._configs = (
            IdempotencyConfig(event_key_jmespath="[bucket, key, sequencer]",
                              raise_on_no_idempotency_key=True,
                              expires_after_seconds=expires_after_seconds),
            IdempotencyConfig(
                event_key_jmespath="idempotency_key || [tenant_id, user_id, conversation_id, "
                                   "messages]",
                raise_on_no_idempotency_key=True, expires_after_seconds=expires_after_seconds),
        )
        result = PydanticSerializer(IntakeResult)
        self.inbox_object = idempotent_function(
            intake.inbox_object, data_keyword_argument="created", persistence_store=inbox_store,
            config=self._configs[0], output_serializer=result)
        self.queued_message = idempotent_function(
            intake.queued_message, data_keyword_argument="job", persistence_store=queue_store,
            config=self._configs[1], output_serializer=result)

    def register_lambda_context(self, context: LambdaContext) -> None:
        """Lets an interrupted attempt's lock expire with the invocation's time left."""
        for config in self._configs:
            config.register_lambda_context(context)
        if self._accept_once is not None:
            self._accept_once.register_lambda_context(context)
