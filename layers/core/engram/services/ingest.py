"""Accepting an add (messages, feedback, an agent's trajectory), whichever API sent it.

The raw request is written first (nothing is lost if a later step fails), then, in async
mode, every turn is indexed as WorkingMemory (the fast path: searchable on the next turn)
and the task is queued. The turns' vectors are kept with the request, so the pipeline
does not embed them again. In sync mode the task runs at once instead and the client
waits for its memories. An add holding images, documents or other files always runs
asynchronously (see `accept`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from engram.config import Limits
from engram.errors import Conflict, PayloadTooLarge, Unprocessable
from engram.models.content import ItemInput
from engram.models.domain import (
    Memory,
    MemoryType,
    MessageRecord,
    Role,
    Task,
    TaskRef,
    TaskStatus,
    content_hash,
    new_id,
)
from engram.models.pipeline import IngestJob, ToolCallRecord, request_key, task_prefix
from engram.models.requests import AcceptResult, AddSpec, MessageDraft
from engram.ports import (
    AcceptOnce,
    Embedder,
    MemoryIndex,
    MemoryStore,
    MessageStore,
    ObjectStore,
    TaskStore,
    WorkflowStarter,
)
from engram.retrieval.vectors import embed_turns, kept_turns, working_vectors
from engram.services.attachments import AcceptedItems, AttachmentIntake

if TYPE_CHECKING:  # annotations only: get/status imports no numpy
    import numpy as np

WORKING_ROLES = (Role.user, Role.assistant)


@dataclass
class IngestService:
    objects: ObjectStore
    tasks: TaskStore
    messages: MessageStore
    memories: MemoryStore
    index: MemoryIndex
    embedder: Embedder
    workflow: WorkflowStarter
    run_now: Callable[[TaskRef], Task]  # runs the whole pipeline before returning
    limits: Limits
    attachments: AttachmentIntake | None = None  # None: non-text content is refused
    once: AcceptOnce | None = None  # None: replays are not recognised (tests of other parts)

    def accept(self, tenant_id: str, spec: AddSpec, drafts: list[MessageDraft]
               ) -> AcceptResult:
        """Check, store and queue (or run) an add, once.

        An add with an idempotency key (the client's, or, when every message carries a
        message id, its content) is accepted once per tenant and key within the replay
        window: a replay gets the first answer. Its task id and generated message ids
        derive from the key, so an accept retried after failing half-way (a crash, a
        workflow that did not start) finds the same task and rewrites the same rows."""
        self._check(drafts)
        fingerprint = request_fingerprint(spec, drafts)
        key = spec.idempotency_key or implicit_key(drafts, fingerprint)
        if key is None:
            return self._accept_new(tenant_id, spec, drafts, new_id())
        task_id = str(uuid.uuid5(TASK_ID_NAMESPACE, f"{tenant_id}\n{key}\n{fingerprint}"))
        if self.once is None:
            return self._accept_new(tenant_id, spec, drafts, task_id)
        ran = False

        def accept_new() -> AcceptResult:
            nonlocal ran
            ran = True
            return self._accept_new(tenant_id, spec, drafts, task_id)

        answer = self.once.run(tenant_id, key, fingerprint, accept_new)
        if not ran and self.tasks.get(tenant_id, answer.task_id) is None:
            # A replay of an add whose task is gone (its user was erased since): the first
            # answer names nothing any more, so the add is taken anew.
            self.once.forget(tenant_id, key, fingerprint)
            answer = self.once.run(tenant_id, key, fingerprint, accept_new)
        return answer

    def _check(self, drafts: list[MessageDraft]) -> None:
        seen: dict[str, int] = {}
        for i, draft in enumerate(drafts):
            if len(draft.text) > self.limits.max_message_chars:
                raise PayloadTooLarge(
                    f"messages[{i}].content has {len(draft.text)} characters; the limit is "
                    f"{self.limits.max_message_chars}")
            if draft.message_id is not None:
                first = seen.setdefault(draft.message_id, i)
                if first != i:  # one would silently replace the other
                    raise Unprocessable(
                        f"messages[{i}].message_id repeats messages[{first}].message_id "
                        f"({draft.message_id!r}): a message id names one message")

    def _accept_new(self, tenant_id: str, spec: AddSpec, drafts: list[MessageDraft],
                    task_id: str) -> AcceptResult:
        """Any non-text item makes an add asynchronous whatever `async_mode` says: parsing
        files takes longer than a request may wait."""
        task = Task(task_id=task_id, tenant_id=tenant_id, user_id=spec.user_id,
                    conversation_id=spec.conversation_id, kind=spec.kind,
                    message_count=len(drafts))
        records = [
            MessageRecord(
                tenant_id=tenant_id, user_id=spec.user_id,
                conversation_id=spec.conversation_id,
                message_id=d.message_id or derived_message_id(task_id, i), seq=i,
                role=d.role, text=d.text, speaker=d.speaker, chat_time=d.chat_time,
                task_id=task.task_id, agent_id=spec.agent_id, app_id=spec.app_id)
            for i, d in enumerate(drafts)
        ]
        pending = [(r.message_id, item) for r, d in zip(records, drafts, strict=True)
                   for item in d.items]
        accepted = AcceptedItems()
        if pending:
            if self.attachments is None:
                raise Unprocessable(f"{pending[0][1].where}: non-text content is not "
                                    "supported by this deployment")
            accepted = self.attachments.accept(tenant_id, spec.user_id, task.task_id, pending)
        task.items = accepted.statuses
        job = IngestJob(
            task_id=task.task_id, tenant_id=tenant_id, user_id=spec.user_id,
            conversation_id=spec.conversation_id, kind=spec.kind, agent_id=spec.agent_id,
            app_id=spec.app_id, tags=spec.tags, info=spec.info,
            allow_public=spec.allow_public, knowledgebase_ids=spec.knowledgebase_ids,
            messages=records, items=accepted.items,
            tool_calls=tool_call_records(records, drafts))
        for key, data in accepted.blobs:
            self.objects.put_bytes(key, data)
        return self._accept(task, job, spec.async_mode or bool(accepted.items))

    def _accept(self, task: Task, job: IngestJob, async_mode: bool) -> AcceptResult:
        # Order matters: the raw request and the task row first, so a crash after this
        # point leaves a waiting task that is resumed, never a half-accepted request.
        # Every write here is keyed by ids derived from the task, so running it again
        # (an accept retried under the same key) rewrites the same rows.
        turns = [m for m in job.messages if m.role in WORKING_ROLES and m.text.strip()]
        fast_path = async_mode and job.kind != "feedback"
        working = [working_memory(job, m) for m in turns] if fast_path else []
        job.working_ids = task.memory_views.working = [m.id for m in working]
        if working:  # before the request is written: it keeps the turn vectors (see below)
            vectors = self._embed_turns(job, turns, working)
        self.objects.put_bytes(request_key(task.tenant_id, task.user_id, task.task_id),
                               job.model_dump_json().encode())
        message_ids = [m.message_id for m in job.messages]
        if not self.tasks.create(task):
            existing = self.tasks.get(task.tenant_id, task.task_id)
            if existing is not None and existing.status != TaskStatus.waiting:
                # Accepted and started before: what it is now, without running it again.
                return AcceptResult(success=existing.status != TaskStatus.failed,
                                    task_id=existing.task_id, status=existing.status.value,
                                    message_ids=message_ids,
                                    memory_views=None if async_mode else task_views(existing))
        self.messages.add_many(job.messages)
        if working:
            self.memories.put_many(working)
            self.index.upsert(working, vectors)
        if self.tasks.get(task.tenant_id, task.task_id) is None:
            self._withdraw(task, job, working)
        ref = TaskRef(tenant_id=task.tenant_id, task_id=task.task_id, user_id=task.user_id)
        if async_mode:
            self.workflow.start(ref)
            return AcceptResult(task_id=task.task_id, status=TaskStatus.waiting.value,
                                message_ids=message_ids)
        done = self.run_now(ref)
        return AcceptResult(success=done.status == TaskStatus.completed, task_id=done.task_id,
                            status=done.status.value, message_ids=message_ids,
                            memory_views=task_views(done))

    def _embed_turns(self, job: IngestJob, turns: list[MessageRecord],
                     working: list[Memory]) -> np.ndarray:
        """The fast-path turns' vectors. The user turns' are the turn vectors the pipeline
        mixes into the memories it extracts from them, kept with the request so it does not
        embed the turns again (retrieval/vectors.py): an async add costs one embedding per
        turn, as a sync add does."""
        of_turns = embed_turns(self.embedder, job.messages)
        job.turn_vectors = kept_turns(self.embedder, of_turns)
        return working_vectors(self.embedder, turns, working, of_turns)

    def _withdraw(self, task: Task, job: IngestJob, working: list[Memory]) -> None:
        """The user was erased while this add was being written (erasure removes task rows
        first, then what they lead to): whatever of the add the erasure did not see is
        removed too, and the client is told so."""
        self.index.remove(task.tenant_id, [m.id for m in working])
        self.memories.erase(task.tenant_id, [m.id for m in working])
        self.messages.remove(job.messages)
        for stored in (request_key(task.tenant_id, task.user_id, task.task_id),  # the request
                       task_prefix(task.tenant_id, task.user_id, task.task_id)):  # its files
            self.objects.delete_prefix(stored)
        raise Conflict(f"user {task.user_id!r} was erased while this add was being accepted; "
                       "nothing of it was kept: send it again to add it anew")


# Task ids of keyed adds: uuid5(this, tenant + key + request fingerprint).
TASK_ID_NAMESPACE = uuid.UUID("6f1d3c2e-4b1a-5e0f-9a57-0c2d8e4b7a31")


def derived_message_id(task_id: str, position: int) -> str:
    """The id of a message sent without one: fixed by its task and place in the request,
    so a retried accept writes the same message rows."""
    return "msg_" + hashlib.sha256(f"{task_id}#{position}".encode()).hexdigest()[:20]


def request_fingerprint(spec: AddSpec, drafts: list[MessageDraft]) -> str:
    """A digest of everything an add says (the key itself and inline bytes aside, the
    latter by their own digest): two adds with equal fingerprints are the same request."""
    def item(i: ItemInput) -> dict:
        data = hashlib.sha256(i.data).hexdigest() if i.data is not None else None
        return {**i.model_dump(mode="json", exclude={"data"}), "data": data}

    def plain(obj: object, leave: str) -> dict:
        return {f.name: getattr(obj, f.name) for f in fields(obj) if f.name != leave}

    body = {"spec": plain(spec, "idempotency_key"),
            "messages": [{**plain(d, "items"), "items": [item(i) for i in d.items]}
                         for d in drafts]}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def implicit_key(drafts: list[MessageDraft], fingerprint: str) -> str | None:
    """Without an Idempotency-Key, an add whose every message carries a message id is
    known by its content: sent again unchanged it is the same add. Adds without message
    ids have no such identity ("ok" said twice is two messages) and are never merged."""
    if drafts and all(d.message_id for d in drafts):
        return f"content:{fingerprint}"
    return None


def tool_call_records(records: list[MessageRecord], drafts: list[MessageDraft]
                      ) -> list[ToolCallRecord]:
    calls = [ToolCallRecord(message_id=r.message_id, call_id=call_id, name=name,
                            arguments=arguments)
             for r, d in zip(records, drafts, strict=True)
             for call_id, name, arguments in d.tool_calls]
    by_id = {c.call_id: c for c in calls}
    for record, draft in zip(records, drafts, strict=True):
        if draft.tool_call_id and draft.tool_call_id in by_id:
            by_id[draft.tool_call_id].result_message_id = record.message_id
    return calls


def working_memory(job: IngestJob, message: MessageRecord) -> Memory:
    speaker = message.speaker or message.role.value
    return Memory(
        # fixed by task and message, so a retried accept replaces rather than adds it
        id=str(uuid.uuid5(TASK_ID_NAMESPACE, f"{job.task_id}#{message.message_id}")),
        tenant_id=job.tenant_id, user_id=job.user_id, conversation_id=job.conversation_id,
        agent_id=job.agent_id, app_id=job.app_id, memory_type=MemoryType.working,
        memory_key=f"{speaker} message", memory_value=message.text.strip(),
        tags=list(job.tags), info=dict(job.info), confidence=1.0,
        sources=[message.message_id], event_time=message.event_time,
        valid_from=message.event_time, task_id=job.task_id, public=job.allow_public,
        knowledgebase_ids=list(job.knowledgebase_ids),
        content_hash=content_hash(MemoryType.working, message.text))


def task_views(task: Task) -> dict:
    return {**task.memory_views.model_dump(), "counts": task.memory_views.counts}
