"""EverOS's v2 API (/api/v2/...) over the same services as v1 (api/everos/translate.py).

What maps to what:
- The owner of memories: `user_id` is the Engram user of that id (the same one v1's
  user_id names); `agent_id` is the Engram user `agent:<agent_id>`. An app_id /
  project_id other than "default" puts both under `app:<app>/<project>/`, apart.
- add: a chat add is stored for each user that speaks in it (the sender_id of its user
  messages); an add with tool calls or tool turns, or mode "agent", is an agent
  trajectory stored for the agent that answers in it (its assistant sender_id), whose
  tool memory becomes agent cases and skills. `session_id` is the conversation.
  async_mode true answers 202 "queued" with the add's task; false runs it and answers
  200 "extracted" (202 "queued" still, when files must be read first).
- search: user_id → episodes (facts), unprocessed_messages (turns not yet turned into
  memories, when filters.session_id is one value), and the profile with
  include_profile; agent_id → agent_cases and agent_skills. Filters as in v1.
- get: episode, profile (the user's profile as one entry), agent_case, agent_skill.
- delete: with session_id, that conversation's memories are taken out of search (the
  profile and skills, which no one conversation makes, stay); user_id or agent_id alone
  erases all of that owner's data, as v1's delete by user_id does.
- flush: Engram extracts every add as it arrives; flush waits for the conversation's
  adds still running and answers "extracted" once they are done.
- edit: the user's profile items (services/profile_items.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from engram.api.everos.models import (
    MemoryGetRequest,
    MemorySearchRequest,
    ObjectSignData,
    ObjectSignRequest,
)
from engram.api.everos.translate import EverosTranslator, sign_objects
from engram.api.everos.v2 import presenters as present
from engram.api.everos.v2.models import (
    Owned,
    V2AddData,
    V2AddRequest,
    V2DeleteData,
    V2DeleteRequest,
    V2EditData,
    V2EditRequest,
    V2EditResult,
    V2FlushData,
    V2FlushRequest,
    V2GetData,
    V2GetRequest,
    V2MessageItem,
    V2SearchData,
    V2SearchRequest,
    V2SignRequest,
)
from engram.api.everos.v2.presenters import Owner
from engram.errors import Conflict, NotFound, Unprocessable
from engram.models.domain import MemoryStatus, MemoryType, Role, TaskStatus
from engram.models.filters import Condition, FilterNode
from engram.models.identifiers import AGENT_OWNER, APP_SCOPE, not_reserved
from engram.models.requests import AcceptResult, AddSpec, MessageDraft, PageSpec, shown_text
from engram.services.directory import DirectoryService
from engram.services.profile_items import ProfileItemService

AGENT_PREFIX = AGENT_OWNER
SCOPE_PREFIX = APP_SCOPE
DEFAULT_SCOPE = ("default", "default")
MAX_SIGNED_FILES = 50  # v2's limit per object/sign request
OWNER_FIELDS = ("user_id", "group_id", "agent_id", "sender_id")  # the request names the owner
GET_KINDS = {"episode": "episodic_memory", "agent_case": "agent_case",
             "agent_skill": "agent_skill"}
ALL_TYPES = tuple(MemoryType)
# A conversation's delete leaves what no one conversation makes: the profile and skills.
SESSION_TYPES = tuple(t for t in MemoryType
                      if t not in (MemoryType.preference, MemoryType.tool_schema))
DELETE_BATCH = 500
FLUSH_WAIT_SECONDS = 25.0  # under API Gateway's 29 s
FLUSH_POLL_SECONDS = 0.1
RUNNING = (TaskStatus.waiting, TaskStatus.running)


def partition_of(app_id: str, project_id: str, user_id: str | None = None,
                 agent_id: str | None = None) -> str:
    base = user_id if user_id is not None else f"{AGENT_PREFIX}{agent_id}"
    if (app_id, project_id) == DEFAULT_SCOPE:
        return base
    return f"{SCOPE_PREFIX}{quote(app_id, safe='')}/{quote(project_id, safe='')}/{base}"


def session_key(app_id: str, project_id: str, session_id: str) -> str:
    """A conversation, within its scope (the key its owners are recorded under)."""
    return partition_of(app_id, project_id, user_id=session_id)


def scoped_filters(filters: dict[str, Any] | None, partition: str) -> dict[str, Any]:
    """The client's filters without owner conditions, on the request's owner."""
    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: clean(v) for k, v in node.items() if k not in OWNER_FIELDS}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    return {**clean(filters or {}), "user_id": partition}


def one_session(filters: dict[str, Any] | None) -> bool:
    value = (filters or {}).get("session_id")
    if isinstance(value, dict) and set(value) == {"eq"}:
        value = value["eq"]
    return isinstance(value, str)


def _text_field(data: dict[str, Any], name: str, where: str, required: bool,
                max_length: int) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise Unprocessable(f"{where}.{name} must be a non-empty string")
    if len(value) > max_length:
        raise Unprocessable(f"{where}.{name} is {len(value)} characters; the limit is "
                            f"{max_length}")
    return value


@dataclass
class EverosV2Translator:
    """The /api/v2 routes' one dependency: v1's translator (the same services) plus the
    profile's items."""

    v1: EverosTranslator
    profiles: ProfileItemService
    flush_wait_seconds: float = FLUSH_WAIT_SECONDS

    @property
    def directory(self) -> DirectoryService:
        return self.v1.directory

    @staticmethod
    def owner(req: Owned) -> Owner:
        if (req.user_id is None) == (req.agent_id is None):
            raise Unprocessable("give exactly one of user_id or agent_id")
        return Owner(app_id=req.app_id, project_id=req.project_id, user_id=req.user_id,
                     agent_id=req.agent_id, partition=partition_of(
                         req.app_id, req.project_id, req.user_id, req.agent_id))

    # --- object/sign -------------------------------------------------------------------

    def sign(self, tenant_id: str, req: V2SignRequest) -> ObjectSignData:
        seen: set[str] = set()
        for i, item in enumerate(req.objectList):
            if item.fileId in seen:
                raise Unprocessable(f"objectList[{i}].fileId {item.fileId!r} appears twice; "
                                    "each fileId must be unique in a request")
            seen.add(item.fileId)
        signed = sign_objects(self.v1.uploads, tenant_id,
                              ObjectSignRequest(objectList=req.objectList), MAX_SIGNED_FILES)
        return ObjectSignData(objectList=signed)

    # --- add ---------------------------------------------------------------------------

    def add(self, tenant_id: str, req: V2AddRequest, idempotency_key: str | None = None
            ) -> V2AddData:
        agentic = req.mode == "agent" or any(m.role == "tool" or m.tool_calls
                                             for m in req.messages)
        if agentic:
            agents = [m.sender_id for m in req.messages if m.role == "assistant"]
            if not agents:
                raise Unprocessable("messages: an agent trajectory needs an assistant message "
                                    "(its sender_id is the agent_id that owns it)")
            owners = [partition_of(req.app_id, req.project_id, agent_id=agents[0])]
        else:
            users = list(dict.fromkeys(m.sender_id for m in req.messages if m.role == "user"))
            if not users:
                raise Unprocessable("messages: a chat add needs a user message (its "
                                    "sender_id is the user_id that owns the memories)")
            for i, m in enumerate(req.messages):
                if m.role == "user":
                    try:
                        not_reserved(m.sender_id)
                    except ValueError as exc:  # a user's sender_id is their user_id
                        raise Unprocessable(f"messages.{i}.sender_id: {exc}") from None
            owners = [partition_of(req.app_id, req.project_id, user_id=u) for u in users]
        conversation = session_key(req.app_id, req.project_id, req.session_id)
        drafts = self._drafts(tenant_id, req.messages)  # checked before anything is stored
        accepted: list[AcceptResult] = []
        for i, partition in enumerate(owners):
            # recorded first, so a delete of the conversation finds every add under way
            self.directory.note_owner(tenant_id, conversation, partition)
            key = idempotency_key if idempotency_key is None or len(owners) == 1 \
                else f"{idempotency_key}#{i}"
            spec = AddSpec(user_id=partition, conversation_id=req.session_id,
                           async_mode=req.async_mode, kind="agent" if agentic else "add",
                           app_id=req.app_id, idempotency_key=key)
            accepted.append(self.v1.ingest.accept(
                tenant_id, spec, drafts if i == 0 else self._drafts(tenant_id, req.messages)))
        done = all(a.status in ("completed", "failed") for a in accepted)
        return V2AddData(message_count=len(req.messages),
                       status="extracted" if done else "queued",
                       task_id=accepted[0].task_id, task_ids=[a.task_id for a in accepted])

    def _drafts(self, tenant_id: str, messages: Sequence[V2MessageItem]) -> list[MessageDraft]:
        names = self.directory.sender_names(
            tenant_id, [m.sender_id for m in messages if not m.sender_name])
        several = len({m.sender_id for m in messages if m.role == "user"}) > 1
        drafts = []
        for i, m in enumerate(messages):
            text, items = self.v1._content(i, m.content)
            calls = [(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or []]
            if calls and m.role != "assistant":
                raise Unprocessable(f"messages[{i}].tool_calls: only assistant messages make "
                                    "tool calls")
            if m.role == "tool" and not m.tool_call_id:
                raise Unprocessable(f"messages[{i}].tool_call_id is required for role 'tool'")
            if not calls and not text.strip() and not items:
                raise Unprocessable(f"messages[{i}].content: a {m.role} message needs content")
            # who said it: the name given, else the sender's registered name; the raw id
            # only tells users apart when several speak
            speaker = m.sender_name or names.get(m.sender_id) or (
                m.sender_id if several and m.role == "user" else None)
            drafts.append(MessageDraft(role=Role(m.role), text=shown_text(text, calls),
                                       chat_time=m.timestamp, speaker=speaker, items=items,
                                       tool_calls=calls, tool_call_id=m.tool_call_id))
        return drafts

    # --- search / get ------------------------------------------------------------------

    def search(self, tenant_id: str, req: V2SearchRequest) -> V2SearchData:
        owner = self.owner(req)
        agent = owner.agent_id is not None
        kinds = ["agent_memory"] if agent else ["episodic_memory"]
        if not agent and one_session(req.filters):
            kinds.append("raw_message")
        threshold = req.min_score if req.min_score is not None else req.radius
        found = self.v1._search(tenant_id, MemorySearchRequest(
            filters=scoped_filters(req.filters, owner.partition), query=req.query,
            memory_types=kinds, method=req.method, radius=threshold, top_k=req.top_k))
        data = V2SearchData(
            episodes=[present.episode(owner, s.memory, s.relativity) for s in found.episodes],
            unprocessed_messages=[present.unprocessed(owner, s.memory) for s in found.raw],
            agent_cases=[present.agent_case(owner, s.memory, s.relativity)
                         for s in found.cases],
            agent_skills=[present.agent_skill(owner, s.memory, s.relativity)
                          for s in found.skills])
        if req.include_profile and not agent:
            items = self.profiles.items(tenant_id, owner.partition)
            data.profiles = [present.profile(owner, items)] if items else []
        return data

    def get(self, tenant_id: str, req: V2GetRequest) -> V2GetData:
        owner = self.owner(req)
        if req.memory_type == "profile":
            if owner.agent_id is not None:
                raise Unprocessable("memory_type profile is a user's: give user_id, "
                                    "not agent_id")
            items = self.profiles.items(tenant_id, owner.partition)
            entries = [present.profile(owner, items)] if items and req.page == 1 else []
            return V2GetData(profiles=entries, count=len(entries), total_count=int(bool(items)))
        memories, total = self.v1.listed(tenant_id, MemoryGetRequest(
            filters=scoped_filters(req.filters, owner.partition),
            memory_type=GET_KINDS[req.memory_type], page=req.page, page_size=req.page_size,
            rank_by="timestamp" if req.sort_by == "timestamp" else "update_time",
            rank_order=req.sort_order))
        data = V2GetData(count=len(memories), total_count=total)
        if req.memory_type == "episode":
            data.episodes = [present.episode(owner, m) for m in memories]
        elif req.memory_type == "agent_case":
            data.agent_cases = [present.agent_case(owner, m) for m in memories]
        else:
            data.agent_skills = [present.agent_skill(owner, m) for m in memories]
        return data

    # --- delete / flush ----------------------------------------------------------------

    def delete(self, tenant_id: str, req: V2DeleteRequest) -> V2DeleteData:
        given = [f for f in ("user_id", "agent_id", "session_id") if getattr(req, f)]
        if not given:
            raise Unprocessable("give user_id, agent_id and/or session_id")
        if req.user_id and req.agent_id:
            raise Unprocessable("give user_id or agent_id, not both")
        owned = bool(req.user_id or req.agent_id)
        if owned and not req.session_id:
            partition = self.owner(req).partition
            receipt = self.v1.memories.erase_user(tenant_id, partition)
            return V2DeleteData(filters=given, count=receipt.memories)
        assert req.session_id is not None
        partitions = [self.owner(req).partition] if owned else self.directory.owners(
            tenant_id, session_key(req.app_id, req.project_id, req.session_id))
        where = FilterNode(all_of=[Condition(field="conversation_id", op="eq",
                                             value=req.session_id)])
        count = sum(self._take_out(tenant_id, p, where) for p in partitions)
        return V2DeleteData(filters=given, count=count)

    def _take_out(self, tenant_id: str, partition: str, where: FilterNode) -> int:
        """Every current memory of the conversation in the partition, out of search."""
        deleted = 0
        while True:
            page = self.v1.memories.page(tenant_id, PageSpec(
                user_id=partition, types=SESSION_TYPES, offset=0, limit=DELETE_BATCH,
                where=where))
            ids = [m.id for m in page.items if m.status == MemoryStatus.activated]
            if not ids:
                return deleted
            deleted += self.v1.memories.delete(tenant_id, ids)

    def flush(self, tenant_id: str, req: V2FlushRequest) -> V2FlushData:
        store = self.v1.tasks.tasks
        owners = self.directory.owners(
            tenant_id, session_key(req.app_id, req.project_id, req.session_id))
        running = [t.task_id for p in owners for t in store.tasks_of_user(tenant_id, p)
                   if t.conversation_id == req.session_id and t.status in RUNNING]
        if not running:
            return V2FlushData(status="no_extraction")
        deadline = time.monotonic() + self.flush_wait_seconds
        while running and time.monotonic() < deadline:
            time.sleep(FLUSH_POLL_SECONDS)
            running = [i for i in running if (t := store.get(tenant_id, i)) is not None
                       and t.status in RUNNING]
        if running:
            raise Conflict(f"session {req.session_id}: {len(running)} adds still running after "
                           f"{self.flush_wait_seconds:.0f} s (tasks {', '.join(running)}); "
                           "flush again")
        return V2FlushData(status="extracted")

    # --- edit --------------------------------------------------------------------------

    def edit(self, tenant_id: str, req: V2EditRequest) -> V2EditData:
        partition = partition_of(req.app_id, req.project_id, user_id=req.user_id)
        plans = []
        for i, op in enumerate(req.operations):  # every operation checked before any runs
            implicit = op.type == "implicit_traits"
            name, where = ("trait" if implicit else "category"), f"operations[{i}].data"
            key = value = None
            if op.action != "delete":
                key = _text_field(op.data, name, where, op.action == "add", 256)
                value = _text_field(op.data, "description", where, op.action == "add", 4000)
                if key is None and value is None:
                    raise Unprocessable(f"{where}: give {name} and/or description")
            plans.append((i, op, implicit, key, value))
        results = []
        for i, op, implicit, key, value in plans:
            item_id = getattr(op, "item_id", None)
            result = V2EditResult(op_index=i, action=op.action, type=op.type, status="applied",
                                item_id=item_id)
            try:
                if op.action == "add":
                    result.new_item_id = self.profiles.add(
                        tenant_id, partition, "implicit" if implicit else "explicit",
                        key or "", value or "", op.reason).id
                else:
                    item = self.profiles.own(tenant_id, partition, item_id or "")
                    if (item.preference_type == "implicit") != implicit:
                        raise NotFound(f"item {item_id} is not an {op.type} item")
                    if op.action == "update":
                        result.new_item_id = self.profiles.update(
                            tenant_id, partition, item.id, key, value).id
                    else:
                        self.profiles.delete(tenant_id, partition, item.id)
            except NotFound as exc:
                result.status, result.error = "rejected", exc.message
            results.append(result)
        items = self.profiles.items(tenant_id, partition)
        return V2EditData(user_id=req.user_id,
                        version=max((m.update_time for m in items), default=0),
                        applied=sum(r.status == "applied" for r in results), results=results,
                        profile=present.profile_data(items))
