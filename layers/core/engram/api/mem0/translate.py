"""mem0 requests → Engram's services, and back. mem0's entities map onto Engram's
scopes: user_id is the user partition (an add with only agent_id, app_id or run_id gets a
partition of its own, `agent:<id>` …), agent_id and app_id are the memory's, run_id is
the conversation; metadata is kept as JSON in the memory's `info`, categories are its
tags. Memories keep Engram's dedupe, supersede and history; mem0's `history` reads the
versions a memory kept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engram.api.mem0 import models as m
from engram.api.mem0.filters import (
    DEFAULT_RUN,
    ENTITIES,
    METADATA_KEY,
    compile_filters,
    metadata_of,
    partition_of,
    partitions,
)
from engram.api.mem0.presenters import iso, present
from engram.container import Services
from engram.errors import NotFound, Unprocessable
from engram.models.domain import FACT_TYPES, Memory, MemoryStatus, MemoryType, Role, TaskStatus
from engram.models.knowledge import is_shared_scope
from engram.models.requests import AddSpec, MemoryEdit, MessageDraft, PageSpec, SearchSpec
from engram.services.webhooks import WebhookService

ENTITY_DIRECTORY = "mem0-entities"  # "<type>:<name>" → {"created": ms}, for users()
LISTED_TYPES = (*FACT_TYPES[1:], MemoryType.preference, MemoryType.tool_schema,
                MemoryType.tool_trajectory)  # not the fast-path turns an add retires
PAGE = 500
MEM0_EVENTS = {"memory_add": "memory.added", "memory_update": "memory.updated",
               "memory_delete": "memory.deleted"}
ENGRAM_TO_MEM0 = {v: k for k, v in MEM0_EVENTS.items()}
ORG = "engram"


@dataclass
class Mem0Translator:
    services: Services

    # --- ping ----------------------------------------------------------------------
    def ping(self, tenant_id: str) -> m.Mem0Ping:
        return m.Mem0Ping(org_id=ORG, project_id=tenant_id)

    # --- add -----------------------------------------------------------------------
    def add(self, tenant_id: str, req: m.Mem0AddRequest) -> m.Mem0Queued | m.Mem0AddResults:
        entities = {e: getattr(req, e) for e in ENTITIES}
        for entity, value in (req.filters or {}).items():
            if entity not in ENTITIES:
                raise Unprocessable(f"filters.{entity}: an add takes only "
                                    f"{', '.join(ENTITIES)} in filters")
            if not isinstance(value, str) or not value:
                raise Unprocessable(f"filters.{entity}: must be a non-empty string")
            entities[entity] = entities[entity] or value
        named = [e for e in ENTITIES if entities[e]]
        if not named:
            raise Unprocessable("name user_id (or agent_id, app_id, run_id): an add "
                                "needs someone to remember for")
        user = partition_of(named[0], entities[named[0]])
        info = {METADATA_KEY: json.dumps(req.metadata)} if req.metadata else {}
        spec = AddSpec(user_id=user, conversation_id=entities["run_id"] or DEFAULT_RUN,
                       async_mode=req.async_mode, agent_id=entities["agent_id"],
                       app_id=entities["app_id"], info=info)
        chat_time = req.timestamp * 1000 if req.timestamp is not None else None
        drafts = [MessageDraft(role=Role(msg.role), text=msg.content, chat_time=chat_time,
                               speaker=msg.name) for msg in req.messages]
        self._note_entities(tenant_id, entities)
        accepted = self.services.ingest.accept(tenant_id, spec, drafts)
        if req.async_mode:
            return m.Mem0Queued(event_id=accepted.task_id)
        return m.Mem0AddResults(results=self._results(tenant_id, accepted.task_id),
                            event_id=accepted.task_id)

    def _note_entities(self, tenant_id: str, entities: dict[str, str | None]) -> None:
        store = self.services.directory.store
        for entity, value in entities.items():
            if value:
                key = f"{entity.removesuffix('_id')}:{value}"
                if store.get_entry(tenant_id, ENTITY_DIRECTORY, key) is None:
                    store.put_entry(tenant_id, ENTITY_DIRECTORY, key, json.dumps(
                        {"created": int(datetime.now(UTC).timestamp() * 1000)}))

    def _results(self, tenant_id: str, task_id: str) -> list[m.Mem0AddEvent]:
        views = self.services.tasks.get(tenant_id, task_id).memory_views
        out = []
        for event, ids in (("ADD", views.added), ("UPDATE", views.updated),
                           ("DELETE", views.deleted)):
            for memory in self.services.memories.memories.get_many(tenant_id, ids):
                out.append(m.Mem0AddEvent(id=memory.id, event=event, memory=memory.memory_value))
        return out

    def event(self, tenant_id: str, event_id: str) -> m.Mem0EventStatus:
        task = self.services.tasks.get(tenant_id, event_id)
        status = {TaskStatus.waiting: "PENDING", TaskStatus.running: "RUNNING",
                  TaskStatus.completed: "SUCCEEDED", TaskStatus.failed: "FAILED"}[task.status]
        return m.Mem0EventStatus(
            id=task.task_id, status=status, error=task.error,
            results=self._results(tenant_id, task.task_id)
            if task.status == TaskStatus.completed else [],
            created_at=iso(task.create_time), updated_at=iso(task.update_time))

    # --- read ----------------------------------------------------------------------
    def search(self, tenant_id: str, req: m.Mem0SearchRequest) -> m.Mem0SearchResults:
        keep = compile_filters(req.filters)
        extra = compile_filters({"metadata": req.metadata}, "metadata") \
            if req.metadata else (lambda _: True)
        scored: list[tuple[float, Memory]] = []
        for user in partitions(req.filters):
            found = self.services.search.search(tenant_id, SearchSpec(
                user_id=user, query=req.query, fact_limit=min(req.top_k * 3, 100),
                preference_limit=req.top_k, tool_limit=req.top_k,
                relativity=req.threshold))
            for hit in [*found.facts, *found.preferences, *found.tools]:
                memory = hit.memory
                if memory.memory_type == MemoryType.working or not keep(memory) \
                        or not extra(memory):
                    continue
                if req.categories and not set(req.categories) & set(memory.tags):
                    continue
                scored.append((hit.relativity, memory))
        scored.sort(key=lambda pair: -pair[0])
        return m.Mem0SearchResults(results=[present(memory, round(score, 4))
                                        for score, memory in scored[:req.top_k]])

    def memory(self, tenant_id: str, memory_id: str) -> Memory:
        memory = self.services.memories.get(tenant_id, memory_id)
        if memory.status == MemoryStatus.deleted or is_shared_scope(memory.user_id):
            raise NotFound(f"memory {memory_id} not found")
        return memory

    def get(self, tenant_id: str, memory_id: str) -> m.Mem0MemoryOut:
        return present(self.memory(tenant_id, memory_id))

    def current(self, tenant_id: str, users: list[str]) -> list[Memory]:
        out: list[Memory] = []
        for user in users:
            offset = 0
            while True:
                page = self.services.memories.page(tenant_id, PageSpec(
                    user_id=user, types=LISTED_TYPES, offset=offset, limit=PAGE))
                out.extend(page.items)
                offset += len(page.items)
                if not page.items or offset >= page.total:
                    break
        return out

    def get_all(self, tenant_id: str, req: m.Mem0GetAllRequest, page: int,
                page_size: int) -> m.Mem0MemoryPageOut:
        keep = compile_filters(req.filters)
        start = _date(req.start_date, "start_date")
        end = _date(req.end_date, "end_date")
        chosen = [mem for mem in self.current(tenant_id, partitions(req.filters))
                  if keep(mem) and (start is None or mem.create_time >= start)
                  and (end is None or mem.create_time <= end)
                  and (not req.categories or set(req.categories) & set(mem.tags))]
        chosen.sort(key=lambda mem: (-mem.create_time, mem.id))
        first = (page - 1) * page_size
        window = chosen[first:first + page_size]
        more = first + page_size < len(chosen)
        return m.Mem0MemoryPageOut(
            count=len(chosen), results=[present(mem) for mem in window],
            next=f"/v3/memories/?page={page + 1}&page_size={page_size}" if more else None,
            previous=f"/v3/memories/?page={page - 1}&page_size={page_size}"
            if page > 1 else None)

    def history(self, tenant_id: str, memory_id: str) -> list[m.Mem0HistoryEntry]:
        memory = self.services.memories.get(tenant_id, memory_id)
        if is_shared_scope(memory.user_id):
            raise NotFound(f"memory {memory_id} not found")
        meta = metadata_of(memory) or None
        entries: list[m.Mem0HistoryEntry] = []
        versions = sorted(memory.history, key=lambda v: v.version)
        values = [v.memory_value for v in versions] + [memory.memory_value]
        starts = [v.valid_from for v in versions] + [memory.valid_from]
        reasons = [None] + [v.reason for v in versions]
        for i, value in enumerate(values):
            entries.append(m.Mem0HistoryEntry(
                id=f"{memory.id}:{i + 1}", memory_id=memory.id,
                old_memory=values[i - 1] if i else None, new_memory=value,
                user_id=memory.user_id, categories=list(memory.tags),
                event="ADD" if i == 0 else "UPDATE", metadata=meta, reason=reasons[i],
                created_at=iso(starts[i]), updated_at=iso(starts[i])))
        if memory.status == MemoryStatus.deleted:
            when = iso(memory.valid_to or memory.update_time)
            entries.append(m.Mem0HistoryEntry(
                id=f"{memory.id}:{len(values) + 1}", memory_id=memory.id,
                old_memory=memory.memory_value, new_memory=None, user_id=memory.user_id,
                categories=list(memory.tags), event="DELETE", metadata=meta,
                created_at=when, updated_at=when))
        return entries

    # --- write ---------------------------------------------------------------------
    def update(self, tenant_id: str, memory_id: str, text: str | None,
               metadata: dict[str, Any] | None) -> m.Mem0MemoryOut:
        if text is None and metadata is None:
            raise Unprocessable("give text or metadata to update")
        memory = self.memory(tenant_id, memory_id)
        info = None
        if metadata is not None:
            info = {k: v for k, v in memory.info.items() if k != METADATA_KEY}
            info[METADATA_KEY] = json.dumps(metadata)
        return present(self.services.memories.update(tenant_id, MemoryEdit(
            memory_id=memory_id, content=text, info=info)))

    def delete(self, tenant_id: str, memory_ids: list[str]) -> int:
        for memory_id in memory_ids:
            self.memory(tenant_id, memory_id)  # each must exist: else a 404 naming it
        return self.services.memories.delete(tenant_id, memory_ids)

    def delete_all(self, tenant_id: str, entities: dict[str, str | None]) -> int:
        given = {k: v for k, v in entities.items() if v}
        keep = compile_filters(given)
        ids = [mem.id for mem in self.current(tenant_id, partitions(given, "query"))
               if keep(mem)]
        return self.delete(tenant_id, ids) if ids else 0

    def feedback(self, tenant_id: str, req: m.Mem0FeedbackRequest) -> m.Mem0FeedbackOut:
        memory = self.memory(tenant_id, req.memory_id)
        info = dict(memory.info)
        info["mem0.feedback"] = req.feedback or ""
        info["mem0.feedback_reason"] = req.feedback_reason or ""
        self.services.memories.update(tenant_id, MemoryEdit(memory_id=memory.id, info=info))
        return m.Mem0FeedbackOut(id=memory.id, feedback=req.feedback,
                             feedback_reason=req.feedback_reason)

    # --- entities ------------------------------------------------------------------
    def entities(self, tenant_id: str) -> m.Mem0EntityPage:
        results = []
        for key, body in self.services.directory.store.list_entries(tenant_id,
                                                                    ENTITY_DIRECTORY):
            kind, _, name = key.partition(":")
            entity = f"{kind}_id"
            users = [partition_of(entity, name)] if kind != "user" else [name]
            memories = [mem for mem in self.current(tenant_id, users)]
            if kind != "user":
                memories += [mem for mem in self.current(tenant_id, self._users(tenant_id))
                             if compile_filters({entity: name})(mem)]
            created = json.loads(body).get("created", 0)
            results.append(m.Mem0Entity(id=key, name=name, type=kind, created_at=iso(created),
                                    updated_at=iso(created),
                                    total_memories=len({mem.id for mem in memories})))
        return m.Mem0EntityPage(count=len(results), results=results)

    def _users(self, tenant_id: str) -> list[str]:
        return [key.partition(":")[2] for key, _ in
                self.services.directory.store.list_entries(tenant_id, ENTITY_DIRECTORY)
                if key.startswith("user:")]

    def delete_entity(self, tenant_id: str, kind: str, name: str) -> None:
        key = f"{kind}:{name}"
        store = self.services.directory.store
        if store.get_entry(tenant_id, ENTITY_DIRECTORY, key) is None:
            raise NotFound(f"{kind} {name} not found")
        if kind == "user":
            # delete is erasure: memories, versions, messages, tasks, files
            self.services.memories.erase_user(tenant_id, name)
        else:
            entity = f"{kind}_id"
            self.services.memories.erase_user(tenant_id, partition_of(entity, name))
            keep = compile_filters({entity: name})
            ids = [mem.id for mem in self.current(tenant_id, self._users(tenant_id))
                   if keep(mem)]
            if ids:
                self.delete(tenant_id, ids)
        store.delete_entry(tenant_id, ENTITY_DIRECTORY, key)

    # --- webhooks ------------------------------------------------------------------
    def hooks(self) -> WebhookService:
        if self.services.webhooks is None:
            raise Unprocessable("webhooks are not served by this deployment")
        return self.services.webhooks

    def check_project(self, tenant_id: str, project_id: str) -> None:
        if project_id != tenant_id:
            raise NotFound(f"project {project_id} not found")

    def webhook_out(self, tenant_id: str, record: Any, secret: bool = False) -> m.Mem0WebhookOut:
        return m.Mem0WebhookOut(
            webhook_id=record.webhook_id, name=record.name, url=record.url,
            event_types=[ENGRAM_TO_MEM0.get(t, t) for t in record.event_types],
            project=tenant_id, is_active=record.is_active,
            secret=record.secret if secret else None,
            created_at=iso(record.create_time), updated_at=iso(record.update_time))


def engram_event_types(types: list[str]) -> list[str]:
    """mem0's names (memory_add …) or Engram's (memory.added, task.completed …)."""
    if "memory_categorize" in types:
        raise Unprocessable("event_types: memory_categorize is not supported by Engram "
                            "(memories are not categorised)")
    return [MEM0_EVENTS.get(t, t) for t in types]


def _date(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    from engram.models.times import to_epoch_ms

    try:
        return to_epoch_ms(value, field)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
