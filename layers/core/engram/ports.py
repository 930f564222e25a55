"""The ports services depend on. Adapters implement them: SQLite/files/numpy locally,
DynamoDB/S3/OpenSearch on AWS. Services never import an adapter."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel

from engram.models.domain import (
    Candidate,
    Memory,
    MemoryType,
    MessageRecord,
    Task,
    TaskRef,
    TokenUsage,
)
from engram.models.filters import FilterNode
from engram.models.knowledge import KnowledgeBase, KnowledgeFile
from engram.models.parsed import ParseResult, Transcript
from engram.models.pipeline import ToolCallRecord
from engram.models.profiles import Profile, ProfileTemplate
from engram.models.requests import AcceptResult

if TYPE_CHECKING:  # in annotations only: a request that needs no vector imports no numpy
    import numpy as np


class ObjectInfo(NamedTuple):
    size: int
    content_type: str | None


class ObjectStore(Protocol):
    """Raw requests, uploaded files and the pointers pipeline steps hand each other."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file to stream an object into (an upload too large to hold in memory): the
        object appears under `key` only when the block ends without an error, else
        nothing is left behind."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def head(self, key: str) -> ObjectInfo | None:
        """Size and content type of an object, or None when there is none under `key`."""
        ...

    def delete_prefix(self, prefix: str) -> list[str]:
        """Delete the object named `prefix` and every object under `prefix/`; the keys
        that were removed."""
        ...


class SignedUpload(NamedTuple):
    """An upload form: POST `fields` plus the file (as the last field, named `file`) to
    `url` as multipart/form-data; the answer is 204 No Content."""

    url: str
    fields: dict[str, str]


class UploadSigner(Protocol):
    """Makes pre-signed POST forms (S3's, or the local server's look-alike) whose policy
    pins the exact key and content type, caps the size and expires."""

    def sign(self, key: str, content_type: str, max_bytes: int,
             expires_in: int) -> SignedUpload: ...


class Fetched(Protocol):
    data: bytes
    content_type: str | None
    name: str  # from Content-Disposition or the URL's path ("" if none)


class UrlFetcher(Protocol):
    """Server-side fetch of an http(s) URL that refuses private, loopback, link-local and
    metadata addresses (after DNS and redirects) and caps bytes and time. Raises with the
    reason to show the user."""

    def fetch(self, url: str) -> Fetched: ...


class TaskStore(Protocol):
    def create(self, task: Task) -> bool:
        """Store a new task. False when a task with its id exists already (an accept
        retried under the same idempotency key got this far before): that one is left
        as it is."""
        ...

    def get(self, tenant_id: str, task_id: str) -> Task | None: ...

    def save(self, task: Task) -> None:
        """Overwrite an existing task row; never recreates one that was erased (raises)."""
        ...

    def tasks_of_user(self, tenant_id: str, user_id: str) -> list[Task]:
        """Every task row of a user (without a scan)."""
        ...

    def erase_tasks(self, tasks: Sequence[Task]) -> list[Task]:
        """Remove these task rows for good; the rows as they were when removed (a task
        still running may have moved on since it was read)."""
        ...


class MessageStore(Protocol):
    def add_many(self, messages: Sequence[MessageRecord]) -> None:
        """Raw messages, keyed by (tenant, user, conversation, message id): writers of one
        conversation never overwrite each other, and a message id written again (a
        replay) replaces its own row, never adds one."""
        ...

    def list_conversation(
        self, tenant_id: str, user_id: str, conversation_id: str, limit: int
    ) -> list[MessageRecord]:
        """The last `limit` messages, oldest first: by event time (chat_time, or when the
        message arrived), then arrival."""
        ...

    def delete_user(self, tenant_id: str, user_id: str) -> int: ...

    def remove(self, messages: Sequence[MessageRecord]) -> None:
        """These messages' rows, by key (an add withdrawn half-way)."""
        ...


class MemoryCursor(NamedTuple):
    """Where a keyset page of memories ended: the last memory's create_time and id."""

    create_time: int
    id: str


class MemoryPage(BaseModel):
    items: list[Memory]
    total: int


class MemoryStore(Protocol):
    """The source of truth for memories and their history."""

    def put_many(self, memories: Sequence[Memory]) -> None: ...

    def get_many(self, tenant_id: str, ids: Sequence[str]) -> list[Memory]: ...

    def find_by_hash(self, tenant_id: str, user_id: str, content_hash: str) -> Memory | None: ...

    def list_active(
        self,
        tenant_id: str,
        user_id: str,
        types: Sequence[MemoryType],
        offset: int,
        limit: int,
        where: FilterNode | None = None,
    ) -> MemoryPage: ...

    def ids_for_user(self, tenant_id: str, user_id: str) -> list[str]: ...

    def page_active(self, tenant_id: str, user_id: str, after: MemoryCursor | None,
                    limit: int) -> list[Memory]:
        """Up to `limit` current (activated) memories of the user, of every type, newest
        first (create_time, then id, both descending), strictly after `after`: a keyset
        page, so reading a large user whole costs one bounded read per page (export)."""
        ...

    def erase(self, tenant_id: str, ids: Sequence[str]) -> None:
        """Remove rows for good (delete by user); everything else only changes status."""
        ...


@dataclass(frozen=True, slots=True)
class IndexHit:
    id: str
    dense: float  # cosine similarity in [-1, 1]
    lexical: float  # BM25, unbounded
    # the memory's unit vector, for diversifying results; None when the index has not
    # returned it (search then keeps score order)
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)


class IndexQuery(NamedTuple):
    """One list of candidates wanted from a search: these memory types, k results."""

    types: Sequence[MemoryType]
    k: int


class MemoryIndex(Protocol):
    """Hybrid dense + lexical search over active memories. tenant_id and user_id are
    applied inside the index, before scoring, never as a post-filter."""

    def upsert(self, memories: Sequence[Memory], vectors: np.ndarray) -> None: ...

    def remove(self, tenant_id: str, ids: Sequence[str]) -> None: ...

    def remove_user(self, tenant_id: str, user_id: str, ids: Sequence[str] = ()) -> int:
        """Remove every row of a user (erasure): the rows of `ids`, and any other row the
        index holds for the user. How many rows were removed."""
        ...

    def search(
        self,
        tenant_id: str,
        user_id: str,
        vector: np.ndarray,
        text: str,
        k: int,
        types: Sequence[MemoryType],
        where: FilterNode | None = None,
    ) -> list[IndexHit]: ...

    def search_groups(
        self,
        tenant_id: str,
        user_id: str,
        vector: np.ndarray,
        text: str,
        queries: Sequence[IndexQuery],
        where: FilterNode | None = None,
    ) -> list[list[IndexHit]]:
        """`search` for each query, in order; an index may share the scoring between them
        (search/memory asks for facts, preferences and tool memories at once)."""
        ...

    def nearest(
        self,
        tenant_id: str,
        user_id: str,
        vectors: np.ndarray,
        k: int,
        types: Sequence[MemoryType],
    ) -> list[list[IndexHit]]:
        """For each row of `vectors`, the k memories of these types with the highest
        cosine, best first, `lexical` 0 (dedupe compares a request's candidates at once)."""
        ...

    def matching_ids(self, tenant_id: str, where: FilterNode, limit: int,
                     scope: str | None = None) -> list[str]:
        """Up to `limit` ids of the tenant's indexed (activated) memories that `where`
        admits. Without `scope`: across its users (delete/memory by agent_id or filter),
        rows a user owns, never a shared scope's own rows (knowledge-base passages). With
        a shared `scope`: every row readable in it, whoever owns it."""
        ...


class KnowledgeStore(Protocol):
    """Knowledge bases and their files' records, by tenant. The passages themselves are
    memories (MemoryStore, MemoryIndex) and the files' bytes objects (ObjectStore)."""

    def put_base(self, base: KnowledgeBase) -> None: ...

    def get_base(self, tenant_id: str, knowledgebase_id: str) -> KnowledgeBase | None: ...

    def delete_base(self, tenant_id: str, knowledgebase_id: str) -> None: ...

    def put_file(self, file: KnowledgeFile) -> None: ...

    def claim_file(self, file: KnowledgeFile) -> KnowledgeFile | None:
        """Store the record unless one with its file_id is there, atomically: None when
        stored, else the record already there (a replay, or the same add at once)."""
        ...

    def get_files(self, tenant_id: str, file_ids: Sequence[str]) -> list[KnowledgeFile]:
        """These files of the tenant, in the order asked (unknown ids left out)."""
        ...

    def list_files(self, tenant_id: str, knowledgebase_id: str) -> list[KnowledgeFile]:
        """Every file of a knowledge base, oldest first."""
        ...

    def delete_files(self, files: Sequence[KnowledgeFile]) -> None: ...


class Embedder(Protocol):
    model_name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text. Called from background work (see
        `background_work`) or for a request; an embedder sharing the host's cores with
        requests may let the request go first."""
        ...


# Background work yields the CPU to requests: the ingest pipeline runs inside
# background_work(), and CPU-heavy adapters (the local embedder) ask is_background() to let
# foreground work, a search's query, go first.
_background = contextvars.ContextVar("engram_background_work", default=False)


def is_background() -> bool:
    return _background.get()


@contextmanager
def background_work() -> Iterator[None]:
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


class Extraction(NamedTuple):
    candidates: list[Candidate]
    usage: TokenUsage = TokenUsage()
    warnings: list[str] = []  # e.g. a batch the LLM failed on, extracted by rules instead


class Extractor(Protocol):
    """Messages (and the tool calls among them) → candidate memories."""

    name: str

    def extract(self, messages: Sequence[MessageRecord],
                tool_calls: Sequence[ToolCallRecord] = ()) -> Extraction: ...


class ChatReply(NamedTuple):
    text: str  # the assistant message's content, as returned
    usage: TokenUsage


class LanguageModel(Protocol):
    """A chat model behind an OpenAI-compatible endpoint, asked for JSON."""

    model: str

    def complete_json(self, messages: Sequence[dict[str, str]], schema_name: str,
                      schema: dict) -> ChatReply:
        """One chat completion whose reply should follow the JSON `schema` (sent as
        `response_format` json_schema). Throttling and server errors are retried with
        backoff; when the endpoint still cannot answer, raises LlmUnavailable. The reply
        text is returned as is: validating it is the caller's job."""
        ...


class ExistingMemory(NamedTuple):
    memory: Memory
    similarity: float  # cosine to the candidate


class ResolveOperation(NamedTuple):
    """add: store candidate `candidate` as a new memory. update: memory `target` takes
    `value` (the old version goes to its history). delete: memory `target` is invalidated
    (kept in history, no longer current). noop: nothing to store for the candidate
    (`target`, if any, already says it)."""

    op: str  # add | update | delete | noop
    candidate: int  # index into the candidates asked about
    target: str | None = None  # an existing memory id (update, delete, noop)
    value: str | None = None  # update: the memory's new value
    reason: str = ""


class Resolution(NamedTuple):
    """What to do with each candidate: `operations` in the candidates' order."""

    operations: list[ResolveOperation]
    usage: TokenUsage = TokenUsage()
    warnings: list[str] = []


class ConflictResolver(Protocol):
    """Decides, in one go, how new candidates merge with the user's existing memories."""

    name: str

    def resolve(self, candidates: Sequence[Candidate],
                neighbours: Sequence[Sequence[ExistingMemory]],
                feedback: bool = False) -> Resolution:
        """`neighbours[i]`: the existing memories nearest candidate i, best first.
        `feedback`: the candidates are the user's corrections of what is remembered.
        Every candidate gets at least one operation; a candidate left out is added."""
        ...


class DirectoryStore(Protocol):
    """Small records of a tenant kept beside its memories (services/directory.py): JSON
    text under (tenant, collection, key); a collection lists its records by key."""

    def get_entry(self, tenant_id: str, collection: str, key: str) -> str | None: ...

    def put_entry(self, tenant_id: str, collection: str, key: str, body: str) -> None: ...

    def list_entries(self, tenant_id: str, collection: str) -> list[tuple[str, str]]:
        """(key, body) of every record in the collection, by key."""
        ...

    def delete_entry(self, tenant_id: str, collection: str, key: str) -> None: ...

    def delete_collection(self, tenant_id: str, collection: str) -> int:
        """Remove every record of the collection; how many there were."""
        ...


class ApiKeyStore(Protocol):
    def put(self, key_hash: str, tenant_id: str, label: str) -> None: ...

    def tenant_for(self, key_hash: str) -> str | None: ...

    def count(self) -> int: ...


class AcceptOnce(Protocol):
    """Runs an accept once per (tenant, idempotency key) within the replay window (24 h):
    a replay gets the first answer; the same key with a different request (another
    `fingerprint`) is an Unprocessable error, and one still being accepted a Conflict."""

    def run(self, tenant_id: str, key: str, fingerprint: str,
            accept: Callable[[], AcceptResult]) -> AcceptResult: ...

    def forget(self, tenant_id: str, key: str, fingerprint: str) -> None:
        """Drop the record of an accept, so the key may be used again (its task is gone)."""
        ...


class WorkflowStarter(Protocol):
    """Starts parse → extract → dedupe → index for a task (Step Functions or in-process)."""

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        """Run the task's pipeline (`attempt` > 1: again, after it failed)."""
        ...


# --- content engines: OCR, speech and vision for the parse step ---

class Ocr(Protocol):
    name: str

    def image_text(self, image: bytes) -> str:
        """PNG/JPEG bytes → the text on the image ("" when there is none)."""
        ...


class ImageDescriber(Protocol):
    """A vision-capable model that says what an image shows (OCR reads its text)."""

    name: str

    def describe(self, image: bytes, content_type: str) -> str:
        """PNG/JPEG/GIF/WebP bytes and their MIME type → one sentence on what the image
        shows. Raises ImageDescriptionFailed (with a reason fit to show) when it cannot."""
        ...


class Transcriber(Protocol):
    name: str

    def transcribe(self, audio: bytes, *, name: str = "") -> Transcript:
        """16-bit PCM WAV bytes, any rate, mono or not (the media parser has ffmpeg decode
        everything else first) → timed text."""
        ...


# --- asynchronous content jobs (AWS: Textract for scanned PDFs, Transcribe for media) ---

class OcrJobs(Protocol):
    """OCR of a whole PDF in the object store as one asynchronous job, whose completion
    notice arrives later (Textract → SNS)."""

    def start(self, key: str, *, job_tag: str, request_token: str) -> str:
        """Start (or, with the same request token, find again) the job: its id."""
        ...

    def status(self, job_id: str) -> str:
        """IN_PROGRESS, SUCCEEDED, PARTIAL_SUCCESS or FAILED."""
        ...

    def result(self, job_id: str) -> ParseResult:
        """The finished job's page-numbered blocks; ParseError when it failed."""
        ...


class JobState(NamedTuple):
    state: str  # QUEUED | IN_PROGRESS | COMPLETED | FAILED
    reason: str | None = None


class TranscriptionJobs(Protocol):
    """Speech → timed text for audio/video in the object store, as a named asynchronous
    job writing its transcript back to the store (Transcribe → EventBridge)."""

    def start(self, key: str, *, job_name: str, output_key: str,
              media_format: str | None) -> bool:
        """Start the job; False when a job of that name exists already (started before)."""
        ...

    def status(self, job_name: str) -> JobState: ...

    def parse_transcript(self, data: bytes) -> Transcript:
        """The transcript file the job wrote → timed blocks."""
        ...


class TaskCallbacks(Protocol):
    """Answers a workflow step that waits for a callback (Step Functions' task token)."""

    def succeed(self, token: str, output: dict) -> bool:
        """False when the step is no longer waiting (timed out, answered already)."""
        ...

    def fail(self, token: str, error: str, cause: str) -> bool: ...


class UrlPolicy(Protocol):
    """Which URLs a server-side fetch may reach: the one SSRF policy (services/url_policy.py),
    handed to the URL fetcher. Each answer is None (go ahead) or the reason to show."""

    def url_refusal(self, url: str) -> str | None:
        """Judged from the URL alone: scheme, credentials, metadata hosts, a literal
        address, the allow-list."""
        ...

    def resolved_refusal(self, host: str, port: int, addresses: Sequence[str]) -> str | None:
        """Judged on the addresses `host` resolved to, before connecting to any."""
        ...


# --- profiles (MemOS bind/edit/delete profile), chat ---

class ProfileStore(Protocol):
    """Profile templates (per tenant) and instances (per tenant and subject: a user or an
    agent). Every read is keyed by tenant: another tenant's id is simply not found."""

    def put_template(self, template: ProfileTemplate) -> None: ...

    def get_template(self, tenant_id: str, template_id: str) -> ProfileTemplate | None: ...

    def list_templates(self, tenant_id: str) -> list[ProfileTemplate]: ...

    def put_profile(self, profile: Profile) -> None: ...

    def get_profile(self, tenant_id: str, kind: str, subject_id: str,
                    template_id: str) -> Profile | None: ...

    def profiles_of(self, tenant_id: str, kind: str, subject_id: str) -> list[Profile]: ...

    def delete_profile(self, tenant_id: str, kind: str, subject_id: str,
                       template_id: str) -> bool:
        """False when there was no such profile."""
        ...

    def erase_subject(self, tenant_id: str, kind: str, subject_id: str) -> int:
        """Every profile of the subject, for good (user erasure); how many."""
        ...


@runtime_checkable
class ChatModel(Protocol):
    """A chat model that answers in plain text, streamed: `chat` on the MemOS API."""

    model: str

    def stream_text(self, messages: Sequence[dict[str, str]], *, max_tokens: int,
                    temperature: float | None, top_p: float | None) -> Iterator[str]:
        """The reply's text, piece by piece as the endpoint sends it. Raises
        LlmUnavailable (endpoint down, timed out) or PermanentError (refused), also
        part-way through."""
        ...


# --- events out (webhooks, EventBridge) ---

class EventBus(Protocol):
    """Where Engram's events go besides webhooks (AWS: an EventBridge bus)."""

    def put(self, events: Sequence[dict]) -> None:
        """Publish events ({"type", "tenant_id", "id", "time", "data"}); raises on failure."""
        ...


class WebhookTransport(Protocol):
    """Sends one signed webhook request. Answers the receiver's HTTP status; raises
    OSError-like errors when it cannot be reached, and `errors.WebhookRefused` when
    the URL's resolved addresses are refused by the SSRF policy."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int: ...


class TaskEvents(Protocol):
    """What the pipeline tells when a task ends (services/webhooks.py)."""

    def task_done(self, task: Task) -> None:
        """Publish its events; never raises."""
        ...
