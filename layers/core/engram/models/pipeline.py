"""What pipeline steps write to the object store and read back (by key, never inline)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from engram.models.content import ContentItem, TextBlockRef
from engram.models.domain import (
    Candidate,
    Decision,
    Memory,
    MessageRecord,
    TaskRef,
    TokenUsage,
)


class ToolCallRecord(BaseModel):
    """A tool call an assistant turn made (OpenAI format), with the tool turn answering it."""

    message_id: str
    call_id: str
    name: str
    arguments: str = ""
    result_message_id: str | None = None


class TurnVectors(BaseModel):
    """The vectors of a request's turn texts (retrieval/vectors.py `embed_turns`), made at
    accept for the fast path and kept with the request, so the pipeline does not embed the
    turns again."""

    model: str  # the embedder's model_name: another model's vectors are not used
    texts: list[str]
    vectors: str  # base64 of float32 rows, one per text: exact, and ~4× smaller than JSON


class IngestJob(BaseModel):
    """The raw add/message (or add/feedback) request, kept as received."""

    task_id: str
    tenant_id: str
    user_id: str
    conversation_id: str | None
    # "agent": an agent trajectory (EverOS memories/agent); its tool calls become tool memory
    kind: Literal["add", "feedback", "agent"] = "add"
    agent_id: str | None = None
    app_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    info: dict[str, str] = Field(default_factory=dict)
    allow_public: bool = False
    knowledgebase_ids: list[str] = Field(default_factory=list)
    messages: list[MessageRecord]
    items: list[ContentItem] = Field(default_factory=list)  # non-text content, by pointer
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)  # agent trajectories
    working_ids: list[str] = Field(default_factory=list)  # fast-path memories to retire
    turn_vectors: TurnVectors | None = None  # None: not made at accept (a sync add)


class ParsedMessages(BaseModel):
    messages: list[MessageRecord]
    blocks: list[TextBlockRef] = Field(default_factory=list)  # text parsed from the items


class ExtractedCandidates(BaseModel):
    extractor: str
    candidates: list[Candidate]


class MemoryWrite(BaseModel):
    memory: Memory
    # base64 of the float32 vector (pipeline/dedupe.py `packed`): exact, and a plan of 65
    # memories is written and read in 0.4 ms against 2.2 as JSON lists (8× fewer bytes).
    # A list is still read (a plan written before this). None: the stored vector is right.
    vector: str | list[float] | None = None


class DedupePlan(BaseModel):
    """Final states of every memory the task touches, and what the task did."""

    writes: list[MemoryWrite]
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    noop: int = 0
    decisions: list[Decision] = Field(default_factory=list)  # one per operation, with why
    usage: TokenUsage = Field(default_factory=TokenUsage)  # the conflict resolver's LLM calls
    warnings: list[str] = Field(default_factory=list)  # e.g. an LLM reply the rules replaced


MAX_SEGMENT = 200  # bytes: a file name holds 255, an S3 key 1024 (a few segments each)


def segment(value: str) -> str:
    """An id made safe as one object-key segment ("/" and ".." cannot walk the tree). An id
    whose encoding is longer than MAX_SEGMENT (ids reach 256 characters, up to 9 bytes each
    once encoded) keeps its start and ends in `%~` and its SHA-256: still one segment per
    id, since quote() never writes `%~`."""
    quoted = quote(value, safe="").replace(".", "%2E")
    if len(quoted) <= MAX_SEGMENT:
        return quoted
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{quoted[:MAX_SEGMENT - len(digest) - 2]}%~{digest}"


def user_prefix(tenant_id: str, user_id: str) -> str:
    return f"requests/{segment(tenant_id)}/{segment(user_id)}"


def task_prefix(tenant_id: str, user_id: str, task_id: str) -> str:
    """What an add stored under its user: its request and its inline files."""
    return f"{user_prefix(tenant_id, user_id)}/{segment(task_id)}"


def request_key(tenant_id: str, user_id: str, task_id: str) -> str:
    return f"{task_prefix(tenant_id, user_id, task_id)}.json"


def item_key(tenant_id: str, user_id: str, task_id: str, message_id: str, index: int) -> str:
    """Where inline content (base64, data: URLs) of an add request is kept: beside the
    request, so deleting the user's data removes it too."""
    return f"{task_prefix(tenant_id, user_id, task_id)}/items/{segment(message_id)}-{index}"


def upload_prefix(tenant_id: str) -> str:
    """Every key object/sign hands out for a tenant starts with this."""
    return f"uploads/{segment(tenant_id)}/"


def work_prefix(tenant_id: str, task_id: str) -> str:
    return f"work/{segment(tenant_id)}/{segment(task_id)}"


def work_key(tenant_id: str, task_id: str, name: str) -> str:
    return f"{work_prefix(tenant_id, task_id)}/{name}.json"


# --- items read by an asynchronous service (AWS: Textract for a PDF's scanned pages,
# Transcribe for audio and video), waited for by a Step Functions callback -------------

ContentEngine = Literal["ocr", "transcription"]


class ContentJob(BaseModel):
    """One item an asynchronous job reads: what the parse step hands the state machine's
    Map (a pointer, like everything else that travels between states)."""

    message_id: str
    index: int
    engine: ContentEngine


class ContentJobsRef(TaskRef):
    """The parse step's output when some items wait for asynchronous jobs."""

    content_jobs: list[ContentJob] = Field(default_factory=list)


class DeferredItem(BaseModel):
    """What the parse step read of an item itself (a PDF's text layer) and what its job
    must read: stored beside the step outputs until the collect step merges them."""

    message_id: str
    index: int
    engine: ContentEngine
    item_type: str
    kind: str  # pdf | audio | video
    name: str
    location: str  # the item's object key or URL, as its sources cite it
    key: str  # the object the job reads (the upload, or the fetched bytes stored by parse)
    blocks: list[TextBlockRef] = Field(default_factory=list)  # read already (text layer)
    pages: int | None = None
    ocr_pages: list[int] = Field(default_factory=list)  # pages without a text layer
    media_format: str | None = None
    warnings: list[str] = Field(default_factory=list)


class ContentJobRecord(BaseModel):
    """jobs/<job key>.json: how a completion notice finds its task, item and the task
    token to answer. Written before the job is started, so a notice always finds it."""

    job_key: str
    tenant_id: str
    task_id: str
    user_id: str
    message_id: str
    index: int
    engine: ContentEngine
    task_token: str
    job_id: str = ""  # Textract's JobId or Transcribe's job name, once started
    output_key: str = ""  # where Transcribe writes the transcript
    delivered: bool = False  # the result is written and the token answered


class ContentJobResult(BaseModel):
    """What a finished job yielded for its item, or why it yielded nothing."""

    blocks: list[TextBlockRef] = Field(default_factory=list)
    pages: int | None = None
    seconds: float | None = None
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None


def content_job_key(tenant_id: str, task_id: str, message_id: str, index: int) -> str:
    """A business key per (task, item): the same item always gets the same job (Textract's
    ClientRequestToken, Transcribe's job name), so a retried start starts nothing new."""
    digest = hashlib.sha256(f"{tenant_id}\n{task_id}\n{message_id}\n{index}".encode())
    return digest.hexdigest()[:32]


def content_key(tenant_id: str, task_id: str, message_id: str, index: int, name: str) -> str:
    """Per-item files of the async path, under the task's work prefix."""
    return (f"{work_prefix(tenant_id, task_id)}/content/{segment(message_id)}-{index}."
            f"{name}")


JOBS_PREFIX = "jobs/"


def job_record_key(job_key: str) -> str:
    return f"{JOBS_PREFIX}{job_key}.json"


def job_alias_key(engine: str, job_id: str) -> str:
    """Textract's JobId → job key, for a notice without its JobTag."""
    return f"{JOBS_PREFIX}{engine}/{segment(job_id)}"


class CaughtStepError(BaseModel):
    """What a workflow's Catch records: the error's name and its cause (for a Lambda
    task, JSON with "errorMessage")."""

    Error: str
    Cause: str | None = ""  # absent for some errors (States.Timeout)

    @property
    def message(self) -> str:
        if not self.Cause:
            return ""
        try:
            parsed = json.loads(self.Cause)
        except ValueError:
            return self.Cause
        return (parsed.get("errorMessage") if isinstance(parsed, dict) else None) or self.Cause


class ContentJobOutcome(BaseModel):
    """One iteration of the wait for a content job: its job, and the error if the wait
    ended in one (a timeout, a failed job, a start that was refused)."""

    job: ContentJob
    error: CaughtStepError | None = None


class CollectContentInput(TaskRef):
    """What the collect step receives: the task, its jobs and how each wait ended."""

    content_jobs: list[ContentJob] = Field(default_factory=list)
    content_results: list[ContentJobOutcome] = Field(default_factory=list)
