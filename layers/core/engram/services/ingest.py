"""Accepting add/message and add/feedback.

The raw request is written first (nothing is lost if a later step fails), then, in async
mode, every turn is embedded and indexed as WorkingMemory (the fast path: searchable on
the next turn) and the task is queued. In sync mode the task runs at once instead and the
client waits for its memories, so the turns are not embedded twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from engram.config import Limits
from engram.errors import PayloadTooLarge
from engram.models.api import AddMessageData, AddMessageRequest, FeedbackRequest
from engram.models.domain import (
    Memory,
    MemoryType,
    MessageRecord,
    Role,
    Task,
    TaskRef,
    TaskStatus,
)
from engram.models.pipeline import IngestJob, request_key
from engram.ports import (
    Embedder,
    MemoryIndex,
    MemoryStore,
    MessageStore,
    ObjectStore,
    TaskStore,
    WorkflowStarter,
)
from engram.services.dedupe import content_hash

WORKING_ROLES = (Role.user, Role.assistant)


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:20]


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

    def add_messages(self, tenant_id: str, req: AddMessageRequest) -> AddMessageData:
        for i, message in enumerate(req.messages):
            if len(message.text) > self.limits.max_message_chars:
                raise PayloadTooLarge(
                    f"messages[{i}].content has {len(message.text)} characters; the limit is "
                    f"{self.limits.max_message_chars}")
        task = Task(tenant_id=tenant_id, user_id=req.user_id,
                    conversation_id=req.conversation_id, message_count=len(req.messages))
        seq = self.messages.next_seq(tenant_id, req.user_id, req.conversation_id)
        records = [
            MessageRecord(
                tenant_id=tenant_id, user_id=req.user_id, conversation_id=req.conversation_id,
                message_id=m.message_id or new_message_id(), seq=seq + i, role=Role(m.role),
                text=m.text, speaker=m.name, chat_time=m.chat_time, task_id=task.task_id,
                agent_id=req.agent_id, app_id=req.app_id)
            for i, m in enumerate(req.messages)
        ]
        job = IngestJob(
            task_id=task.task_id, tenant_id=tenant_id, user_id=req.user_id,
            conversation_id=req.conversation_id, agent_id=req.agent_id, app_id=req.app_id,
            tags=req.tags or [], info=req.info or {}, allow_public=req.allow_public,
            knowledgebase_ids=req.allow_knowledgebase_ids or [], messages=records)
        return self._accept(task, job, req.async_mode)

    def add_feedback(self, tenant_id: str, req: FeedbackRequest) -> AddMessageData:
        conversation = req.conversation_id or "feedback"
        task = Task(tenant_id=tenant_id, user_id=req.user_id, conversation_id=conversation,
                    kind="feedback", message_count=1)
        record = MessageRecord(
            tenant_id=tenant_id, user_id=req.user_id, conversation_id=conversation,
            message_id=new_message_id(),
            seq=self.messages.next_seq(tenant_id, req.user_id, conversation), role=Role.user,
            text=req.feedback_content, chat_time=req.feedback_time, task_id=task.task_id,
            agent_id=req.agent_id, app_id=req.app_id)
        job = IngestJob(
            task_id=task.task_id, tenant_id=tenant_id, user_id=req.user_id,
            conversation_id=conversation, kind="feedback", agent_id=req.agent_id,
            app_id=req.app_id, allow_public=req.allow_public,
            knowledgebase_ids=req.allow_knowledgebase_ids or [], messages=[record])
        return self._accept(task, job, async_mode=True)

    def _accept(self, task: Task, job: IngestJob, async_mode: bool) -> AddMessageData:
        # Order matters: the raw request and the task row first, so a crash after this
        # point leaves a waiting task that is resumed, never a half-accepted request.
        turns = [m for m in job.messages if m.role in WORKING_ROLES and m.text.strip()]
        fast_path = async_mode and job.kind == "add"
        working = [working_memory(job, m) for m in turns] if fast_path else []
        job.working_ids = task.memory_views.working = [m.id for m in working]
        self.objects.put_bytes(request_key(task.tenant_id, task.user_id, task.task_id),
                               job.model_dump_json().encode())
        self.tasks.create(task)
        self.messages.add_many(job.messages)
        if working:
            self.memories.put_many(working)
            self.index.upsert(working, self.embedder.embed([m.dense_text for m in working]))
        ref = TaskRef(tenant_id=task.tenant_id, task_id=task.task_id, user_id=task.user_id)
        message_ids = [m.message_id for m in job.messages]
        if async_mode:
            self.workflow.start(ref)
            return AddMessageData(task_id=task.task_id, status=TaskStatus.waiting.value,
                                  message_ids=message_ids)
        done = self.run_now(ref)
        return AddMessageData(success=done.status == TaskStatus.completed, task_id=done.task_id,
                              status=done.status.value, message_ids=message_ids,
                              memory_views=task_views(done))


def working_memory(job: IngestJob, message: MessageRecord) -> Memory:
    speaker = message.speaker or message.role.value
    return Memory(
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
