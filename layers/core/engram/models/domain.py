"""Domain records: what Engram stores and passes between pipeline steps.

Times are UTC epoch milliseconds. `event_time` (when something was said, from
`chat_time`) is kept apart from `create_time` (when Engram learnt it).
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from engram.models.content import ItemStatus


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


def index_text(key: str, value: str, context: str) -> str:
    """What the lexical index sees: the memory and the neighbouring turns it came from."""
    return f"{key}. {value} {context}".strip()


CONTEXT_SEPARATOR = " | "  # between the parts of a context; the speaker's own turn is last


_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]*")


def own_turn(context: str) -> str:
    """The statements of the speaker's own turn, the last part of a memory's context ("" when
    none). Its questions are left out: they ask about something else than the memory says."""
    turn = context.rsplit(CONTEXT_SEPARATOR, 1)[-1]
    return " ".join(s.strip() for s in _SENTENCE.findall(turn)
                    if s.strip() and not s.rstrip().endswith(("?", "？"))).strip()


class Role(StrEnum):
    user = "user"
    assistant = "assistant"
    system = "system"
    tool = "tool"


SaidBy = Literal["user", "assistant"]


class MemoryType(StrEnum):
    working = "WorkingMemory"  # a raw turn, searchable at once (fast path)
    long_term = "LongTermMemory"  # a fact about the world or an event
    user = "UserMemory"  # a fact about the user themselves
    preference = "PreferenceMemory"
    tool_schema = "ToolSchemaMemory"
    tool_trajectory = "ToolTrajectoryMemory"


FACT_TYPES = (MemoryType.working, MemoryType.long_term, MemoryType.user)
TOOL_TYPES = (MemoryType.tool_schema, MemoryType.tool_trajectory)


class MemoryStatus(StrEnum):
    activated = "activated"
    archived = "archived"  # superseded or retired; kept for history
    deleted = "deleted"  # invalidated by the user or by feedback; kept for history


class TaskStatus(StrEnum):
    waiting = "waiting"
    running = "running"
    completed = "completed"
    failed = "failed"


class Scope(BaseModel):
    """Who a record belongs to. tenant_id and user_id are hard partitions."""

    tenant_id: str
    user_id: str
    conversation_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None


class MessageRecord(BaseModel):
    """One raw message as received, kept so nothing is lost and get/message can replay it."""

    tenant_id: str
    user_id: str
    conversation_id: str
    message_id: str
    seq: int  # order inside the conversation as received
    role: Role
    text: str  # the text parts joined; what extraction reads
    speaker: str | None = None  # a name when the text says who spoke ("Caroline: ...")
    chat_time: int | None = None  # event time from the client
    create_time: int = Field(default_factory=now_ms)
    task_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None

    @property
    def event_time(self) -> int:
        return self.chat_time if self.chat_time is not None else self.create_time


class MemoryVersion(BaseModel):
    """A past value of a memory, with the window in which it held."""

    version: int
    memory_value: str
    valid_from: int
    valid_to: int
    change: Literal["add", "update", "supersede", "delete", "feedback", "edit"]
    reason: str
    task_id: str | None = None


_PUNCTUATION = re.compile(r"[\W_]+", re.UNICODE)


def content_hash(memory_type: MemoryType, value: str) -> str:
    """A memory's identity for exact dedupe: its type and its words, case, width and
    punctuation aside."""
    normalised = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", value).casefold()).strip()
    return hashlib.sha256(f"{memory_type.value}|{normalised}".encode()).hexdigest()


class Memory(BaseModel):
    id: str = Field(default_factory=new_id)
    tenant_id: str
    user_id: str
    conversation_id: str | None = None
    agent_id: str | None = None
    app_id: str | None = None
    memory_type: MemoryType
    memory_key: str
    memory_value: str
    tags: list[str] = Field(default_factory=list)
    info: dict[str, str] = Field(default_factory=dict)
    confidence: float = 0.9
    sources: list[str] = Field(default_factory=list)  # message ids
    status: MemoryStatus = MemoryStatus.activated
    create_time: int = Field(default_factory=now_ms)
    update_time: int = Field(default_factory=now_ms)
    event_time: int | None = None
    valid_from: int = Field(default_factory=now_ms)
    valid_to: int | None = None
    version: int = 1
    content_hash: str = ""
    preference_type: Literal["explicit", "implicit"] | None = None
    polarity: Literal["positive", "negative"] | None = None
    reasoning: str | None = None
    language: str = "en"
    context: str = ""  # neighbouring text indexed with the memory, never shown as its value
    # Who said it. The user's statements are facts, embedded and ranked as such; what the
    # assistant answered is kept as searchable text (lexical only, so its long answers
    # cost no embedding) and comes forward when a query asks what the assistant said.
    said_by: SaidBy = "user"
    # A turn no statement could be made of (a question, a request), kept whole as said: it
    # ranks a little below what was extracted, so it is found when nothing else covers it.
    whole_turn: bool = False
    # An episode: what one speaker said in one add, its statements in order as one memory
    # (pipeline/episodes.py). It cites every turn they came from, and is found by what the
    # conversation was about where a statement alone ranks low.
    episode: bool = False
    # The episodes this memory's statement is told in: deleting or editing it retires them
    # too, so no episode keeps text its user removed.
    episode_ids: list[str] = Field(default_factory=list)
    task_id: str | None = None
    public: bool = False
    knowledgebase_ids: list[str] = Field(default_factory=list)
    history: list[MemoryVersion] = Field(default_factory=list)

    @property
    def index_text(self) -> str:
        return index_text(self.memory_key, self.memory_value, self.context)

    @property
    def dense_text(self) -> str:
        """What is embedded: the value alone. Context would blur it; the key is a phrase
        cut from the value, so it only cost tokens (a quarter of them) and pulled the
        vector toward its first words: LoCoMo dev recall_frac@10 0.793 → 0.805 (fp32)
        without it."""
        return self.memory_value

    @property
    def turn_text(self) -> str:
        """The turn mixed into the memory's vector (retrieval/vectors.py); none for a turn
        kept whole, which is its own turn."""
        return "" if self.whole_turn else own_turn(self.context)


class Candidate(BaseModel):
    """A memory proposed by extraction, before dedupe decides what to do with it."""

    memory_type: MemoryType
    memory_key: str
    memory_value: str
    tags: list[str] = Field(default_factory=list)
    confidence: float = 0.9
    sources: list[str] = Field(default_factory=list)
    event_time: int | None = None
    preference_type: Literal["explicit", "implicit"] | None = None
    polarity: Literal["positive", "negative"] | None = None
    reasoning: str | None = None
    language: str = "en"
    context: str = ""
    said_by: SaidBy = "user"  # as Memory.said_by
    whole_turn: bool = False  # as Memory.whole_turn

    @property
    def index_text(self) -> str:
        return index_text(self.memory_key, self.memory_value, self.context)

    @property
    def dense_text(self) -> str:
        return self.memory_value  # as Memory.dense_text

    @property
    def turn_text(self) -> str:
        return "" if self.whole_turn else own_turn(self.context)  # as Memory.turn_text


class TokenUsage(BaseModel):
    """What a task's LLM calls cost: tokens in (prompt) and out (completion)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                          completion_tokens=self.completion_tokens + other.completion_tokens,
                          calls=self.calls + other.calls)


class Decision(BaseModel):
    """One conflict-resolution decision of a task: what happened to which memory, why."""

    action: Literal["add", "update", "delete", "noop"]
    memory_id: str | None = None  # the memory added, updated or deleted (noop: the match)
    reason: str = ""
    by: Literal["llm", "rules"] = "rules"


class MemoryViews(BaseModel):
    """What a task did, as MemOS's get/status reports it."""

    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    noop: int = 0
    working: list[str] = Field(default_factory=list)  # fast-path turns indexed at once
    decisions: list[Decision] = Field(default_factory=list)

    @property
    def memory_ids(self) -> list[str]:
        """Every memory the task wrote or touched."""
        return [*self.added, *self.updated, *self.deleted, *self.working]

    @property
    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "deleted": len(self.deleted),
            "noop": self.noop,
        }


class Task(BaseModel):
    task_id: str = Field(default_factory=new_id)
    tenant_id: str
    user_id: str
    conversation_id: str | None = None
    kind: Literal["add", "feedback", "agent"] = "add"
    status: TaskStatus = TaskStatus.waiting
    step: str | None = None  # the pipeline step running or last run
    create_time: int = Field(default_factory=now_ms)
    update_time: int = Field(default_factory=now_ms)
    message_count: int = 0
    error: str | None = None
    memory_views: MemoryViews = Field(default_factory=MemoryViews)
    items: list[ItemStatus] = Field(default_factory=list)  # non-text content, in order
    usage: TokenUsage = Field(default_factory=TokenUsage)  # LLM tokens, all steps and runs
    attempt: int = 1  # 2, 3, …: the task was retried after failing
    # What did not go as asked but did not fail the task ("LLM reply invalid twice for
    # messages 1-20; rule-based extraction used")
    warnings: list[str] = Field(default_factory=list)


class TaskRef(BaseModel):
    """The pointer a pipeline step receives: never the documents themselves."""

    tenant_id: str
    task_id: str
    user_id: str  # lets a runner serialise the tasks of one user


class ErasureReceipt(BaseModel):
    """What deleting a user's data removed, counted per kind."""

    memories: int = 0  # memory rows, whatever their status (current, archived, deleted)
    versions: int = 0  # earlier values those memories kept in their history
    messages: int = 0  # raw messages
    requests: int = 0  # stored add requests
    files: int = 0  # inline files (base64, data: URLs) stored beside those requests
    uploads: int = 0  # uploaded objects: signed for the user, or named by their adds
    work_objects: int = 0  # step outputs and content-job records of unfinished tasks
    index_rows: int = 0  # search index rows
    tasks: int = 0  # task rows (get/status of each now answers 404)
    # profile instances (MemOS profiles) of the user; left out of the answer when none
    profiles: int = Field(default=0, exclude_if=lambda v: v == 0)
