"""The EverOS API (/api/v1/...) over Engram's services: each EverOS request becomes a
call on the core (models/requests.py), each answer the EverOS response data the routes
wrap.

What maps to what:
- `user_id` is the Engram user; a group (`memories/group`, `group_id`) is the Engram user
  `group:<group_id>`, its messages' `sender_name`/`sender_id` the speakers. `session_id`
  is the conversation (default "default"; a group's conversation is the group id).
- episodic_memory = Engram facts (LongTermMemory, UserMemory); profile = preferences;
  raw_message = turns not yet turned into memories (WorkingMemory); agent_memory = tool
  memory (cases: ToolTrajectoryMemory, skills: ToolSchemaMemory).
- Filters: user_id / group_id (eq, in) choose the partitions, which are always searched
  one by one; session_id (eq, in) filters inside the index; timestamp (event time:
  gt/gte/lt/lte/eq) is applied to the results. Unknown fields are ignored, as EverOS does.
- flush: Engram processes every add as it comes, so there is never anything to flush.
- groups, senders, settings: services/directory.py. A group add records its group and
  members; a message with a sender_id but no sender_name is spoken by the sender's name.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engram.api.everos import presenters as present
from engram.api.everos.models import (
    AddResult,
    AgentAddRequest,
    AgentMemory,
    ContentItem,
    DeleteResult,
    GetMemoriesData,
    GroupAddRequest,
    GroupCreateRequest,
    GroupData,
    GroupPatchRequest,
    MemoryAddRequest,
    MemoryDeleteRequest,
    MemoryGetRequest,
    MemorySearchRequest,
    ObjectSignData,
    ObjectSignedInfo,
    ObjectSignItem,
    ObjectSignRequest,
    SearchData,
    SearchQuery,
    SenderCreateRequest,
    SenderData,
    SenderPatchRequest,
    SettingsData,
    SettingsUpdateRequest,
    TaskStatusResult,
)
from engram.api.everos.presenters import GROUP_PREFIX
from engram.config import Limits
from engram.errors import BadRequest, NotFound, Unprocessable
from engram.models.content import ItemInput, guess_content_type
from engram.models.domain import Memory, MemoryStatus, MemoryType, Role
from engram.models.filters import Condition, FilterNode
from engram.models.identifiers import not_reserved
from engram.models.requests import (
    AcceptResult,
    AddSpec,
    MessageDraft,
    PageSpec,
    SearchSpec,
    shown_text,
)
from engram.models.times import to_epoch_ms
from engram.services.attachments import is_http_url
from engram.services.directory import DirectoryService
from engram.services.ingest import IngestService
from engram.services.memories import MemoryService
from engram.services.search import ScoredMemory, SearchService
from engram.services.tasks import TaskService
from engram.services.uploads import UploadService, safe_file_name

DEFAULT_SESSION = "default"
EPISODIC_TYPES = (MemoryType.long_term, MemoryType.user)
GET_TYPES = {
    "episodic_memory": EPISODIC_TYPES,
    "profile": (MemoryType.preference,),
    "agent_case": (MemoryType.tool_trajectory,),
    "agent_skill": (MemoryType.tool_schema,),
}
TIME_OPS = ("eq", "gt", "gte", "lt", "lte")
DELETE_BATCH = 500
MAX_LISTED = 100_000  # memories of one partition sorted and paged in one get


def group_partition(group_id: str) -> str:
    return f"{GROUP_PREFIX}{group_id}"


@dataclass
class Scope:
    """Partitions a request reads (Engram user ids) and what it filters on inside them."""

    partitions: list[str]
    is_group: bool
    sessions: FilterNode | None  # conversation_id conditions, applied inside the index
    times: list[Condition]  # event_time conditions, applied to the results


def _values(value: Any, field: str) -> list[str]:
    if isinstance(value, dict):
        if set(value) == {"in"} and isinstance(value["in"], list):
            if not value["in"]:
                raise Unprocessable(f"filters.{field}.in needs at least one value")
            return [str(v) for v in value["in"]]
        if set(value) == {"eq"}:
            value = value["eq"]
        else:
            raise Unprocessable(f"filters.{field} takes a value, {{'eq': v}} or {{'in': [...]}}")
    if not isinstance(value, str) or not value:
        raise Unprocessable(f"filters.{field} must be a non-empty string")
    return [value]


def client_users(filters: Any) -> None:
    """A client's filters may not name a partition by its reserved prefix ("group:g" is
    group g's; v2 hands its own partitions to listed/_search, past this check)."""
    if isinstance(filters, dict):
        for key, value in filters.items():
            if key == "user_id":
                for user in _values(value, key):
                    try:
                        not_reserved(user)
                    except ValueError as exc:
                        raise Unprocessable(f"filters.user_id: {exc}") from None
            else:
                client_users(value)
    elif isinstance(filters, list):
        for node in filters:
            client_users(node)


def compile_scope(filters: dict[str, Any]) -> Scope:
    users: list[str] = []
    groups: list[str] = []
    times: list[Condition] = []

    def sessions_of(node: dict[str, Any], where: str) -> FilterNode | None:
        out = FilterNode()
        for key, value in node.items():
            if key.upper() in ("AND", "OR"):
                if not isinstance(value, list):
                    raise Unprocessable(f"filters{where}.{key} must be a list")
                children = [c for c in (sessions_of(v, f"{where}.{key}") for v in value
                                        if isinstance(v, dict)) if c]
                (out.all_of if key.upper() == "AND" else out.any_of).extend(children)
                if key.upper() == "OR" and any("timestamp" in v for v in value
                                               if isinstance(v, dict)):
                    raise Unprocessable("filters: timestamp inside OR is not supported")
            elif key == "user_id":
                users.extend(_values(value, key))
            elif key == "group_id":
                groups.extend(_values(value, key))
            elif key == "session_id":
                found = _values(value, key)
                out.all_of.append(Condition(field="conversation_id",
                                            op="in" if len(found) > 1 else "eq",
                                            value=found if len(found) > 1 else found[0]))
            elif key == "timestamp":
                times.extend(_time_conditions(value))
            # anything else is ignored, as EverOS's allow-list does
        return out if (out.all_of or out.any_of) else None

    if not isinstance(filters, dict):
        raise Unprocessable("filters must be an object")
    sessions = sessions_of(filters, "")
    if groups:
        return Scope([group_partition(g) for g in dict.fromkeys(groups)], True, sessions, times)
    if users:
        return Scope(list(dict.fromkeys(users)), False, sessions, times)
    raise Unprocessable("filters must contain user_id or group_id")


def _time_conditions(value: Any) -> list[Condition]:
    if not isinstance(value, dict):
        value = {"eq": value}
    out = []
    for op, operand in value.items():
        if op not in TIME_OPS:
            raise Unprocessable(f"filters.timestamp: unknown operator '{op}' "
                                f"(use {', '.join(TIME_OPS)})")
        try:
            out.append(Condition(field="event_time", op=op,
                                 value=to_epoch_ms(operand, "filters.timestamp")))
        except ValueError as exc:
            raise Unprocessable(str(exc)) from None
    return out


def _when(memory: Memory) -> int:
    return memory.event_time if memory.event_time is not None else memory.create_time


def _in_time(memory: Memory, times: Sequence[Condition]) -> bool:
    if not times:
        return True
    return FilterNode(all_of=list(times)).matches(
        memory.model_copy(update={"event_time": _when(memory)}))


@dataclass
class EverosSearchResult:
    episodes: list[ScoredMemory]
    profiles: list[ScoredMemory]
    raw: list[ScoredMemory]
    cases: list[ScoredMemory]
    skills: list[ScoredMemory]


def sign_objects(uploads: UploadService, tenant_id: str, req: ObjectSignRequest,
                 limit: int | None = None) -> list[ObjectSignItem]:
    """object/sign: a form per file, after the checks that name EverOS's fields (every
    file is checked before any is signed). `limit`: files per request (v1: Engram's
    max_files_per_request)."""
    limit = limit or uploads.limits.max_files_per_request
    if len(req.objectList) > limit:
        raise Unprocessable(f"objectList has {len(req.objectList)} files; the limit is "
                            f"{limit} files per request")
    for i, item in enumerate(req.objectList):
        if item.fileType == "image" and \
                not guess_content_type(safe_file_name(item.fileName)).startswith("image/"):
            raise Unprocessable(
                f"objectList[{i}]: fileType is image but fileName {item.fileName!r} is not "
                "an image (jpg, png, gif, webp)")
    signed = []
    for item in req.objectList:
        form = uploads.sign(tenant_id, req.userId, item.fileName, item.fileType)
        signed.append(ObjectSignItem(
            fileId=item.fileId, fileName=item.fileName, fileType=item.fileType,
            objectKey=form.key, objectSignedInfo=ObjectSignedInfo(
                url=form.url, fields=form.fields, maxSize=form.max_bytes)))
    return signed


def add_result(accepted: AcceptResult) -> AddResult:
    """"extracted" when the add ran to its end (sync), "accumulated" while it runs."""
    count = len(accepted.message_ids)
    if accepted.status in ("completed", "failed"):
        return AddResult(task_id=accepted.task_id, message_count=count, status="extracted",
                         message=f"processed {count} messages ({accepted.status})")
    return AddResult(task_id=accepted.task_id, message_count=count, status="accumulated",
                     message=f"accepted {count} messages; follow GET /api/v1/tasks/"
                             f"{accepted.task_id}")


@dataclass
class EverosTranslator:
    """The /api/v1 routes' one dependency: every EverOS operation over the core services."""

    ingest: IngestService
    search_service: SearchService
    memories: MemoryService
    tasks: TaskService
    uploads: UploadService
    limits: Limits
    directory: DirectoryService

    def sign(self, tenant_id: str, req: ObjectSignRequest) -> ObjectSignData:
        return ObjectSignData(objectList=sign_objects(self.uploads, tenant_id, req))

    # --- add ---------------------------------------------------------------------------

    def _content(self, i: int, content: str | list[ContentItem] | None
                 ) -> tuple[str, list[ItemInput]]:
        if content is None or isinstance(content, str):
            return content or "", []
        texts, items = [], []
        for j, item in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            if item.type == "text":
                if item.text is None:
                    raise Unprocessable(f"{where}: a text item needs 'text'")
                texts.append(item.text)
                continue
            items.append(self._item(where, item))
        if len(items) > self.limits.max_items_per_message:
            raise Unprocessable(
                f"messages[{i}].content has {len(items)} non-text items; the limit is "
                f"{self.limits.max_items_per_message} per message")
        return "\n".join(texts), items

    @staticmethod
    def _item(where: str, item: ContentItem) -> ItemInput:
        common = dict(where=where, type=item.type, name=item.name or "", ext=item.ext,
                      source=item.source, source_info=item.source_info, extras=item.extras)
        if item.uri:
            uri = item.uri.strip()
            if is_http_url(uri):
                return ItemInput(**common, url=uri)
            return ItemInput(**common, key=uri)
        if item.base64:
            try:
                data = base64.b64decode("".join(item.base64.split()), validate=True)
            except (binascii.Error, ValueError):
                raise Unprocessable(f"{where}.base64 is not valid base64") from None
            return ItemInput(**common, data=data)
        if item.text:
            return ItemInput(**common, data=item.text.encode())
        raise Unprocessable(f"{where}: a {item.type} item needs a uri (an object key from "
                            "object/sign), base64 or text")

    def add(self, tenant_id: str, req: MemoryAddRequest,
            idempotency_key: str | None = None) -> AddResult:
        drafts = []
        for i, m in enumerate(req.messages):
            text, items = self._content(i, m.content)
            drafts.append(MessageDraft(role=Role(m.role), text=text, chat_time=m.timestamp,
                                       message_id=m.message_id, items=items))
        spec = AddSpec(user_id=req.user_id, conversation_id=req.session_id or DEFAULT_SESSION,
                       async_mode=req.async_mode, idempotency_key=idempotency_key)
        return add_result(self.ingest.accept(tenant_id, spec, drafts))

    def add_group(self, tenant_id: str, req: GroupAddRequest,
                  idempotency_key: str | None = None) -> AddResult:
        drafts = []
        names = self.directory.sender_names(
            tenant_id, [m.sender_id for m in req.messages if not m.sender_name])
        for i, m in enumerate(req.messages):
            text, items = self._content(i, m.content)
            speaker = m.sender_name or names.get(m.sender_id) or m.sender_id
            drafts.append(MessageDraft(role=Role(m.role), text=text, chat_time=m.timestamp,
                                       message_id=m.message_id, speaker=speaker, items=items))
        spec = AddSpec(user_id=group_partition(req.group_id), conversation_id=req.group_id,
                       async_mode=req.async_mode, idempotency_key=idempotency_key)
        result = add_result(self.ingest.accept(tenant_id, spec, drafts))
        self.directory.note_group_messages(
            tenant_id, req.group_id, [(m.sender_id, m.sender_name) for m in req.messages])
        return result

    def add_agent(self, tenant_id: str, req: AgentAddRequest,
                  idempotency_key: str | None = None) -> AddResult:
        drafts = []
        for i, m in enumerate(req.messages):
            text, items = self._content(i, m.content)
            if m.role == "user" and not text.strip() and not items:
                raise Unprocessable(f"messages[{i}].content: a user message needs content")
            if m.role == "tool" and not m.tool_call_id:
                raise Unprocessable(f"messages[{i}].tool_call_id is required for role 'tool'")
            calls = [(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or []]
            if calls and m.role != "assistant":
                raise Unprocessable(f"messages[{i}].tool_calls: only assistant messages make "
                                    "tool calls")
            if m.role == "assistant" and not calls and not text.strip() and not items:
                raise Unprocessable(f"messages[{i}].content: an assistant message without "
                                    "tool_calls needs content")
            drafts.append(MessageDraft(role=Role(m.role), text=shown_text(text, calls),
                                       chat_time=m.timestamp, items=items, tool_calls=calls,
                                       tool_call_id=m.tool_call_id))
        spec = AddSpec(user_id=req.user_id, conversation_id=req.session_id or DEFAULT_SESSION,
                       async_mode=req.async_mode, kind="agent", idempotency_key=idempotency_key)
        return add_result(self.ingest.accept(tenant_id, spec, drafts))

    # --- read ----------------------------------------------------------------------------

    def get(self, tenant_id: str, req: MemoryGetRequest) -> GetMemoriesData:
        client_users(req.filters)
        memories, total = self.listed(tenant_id, req)
        data = GetMemoriesData(count=len(memories), total_count=total)
        if req.memory_type == "episodic_memory":
            data.episodes = [present.episode(m) for m in memories]
        elif req.memory_type == "profile":
            data.profiles = [present.profile(m) for m in memories]
        elif req.memory_type == "agent_case":
            data.agent_cases = [present.agent_case(m) for m in memories]
        else:
            data.agent_skills = [present.agent_skill(m) for m in memories]
        return data

    def listed(self, tenant_id: str, req: MemoryGetRequest) -> tuple[list[Memory], int]:
        """The page of memories a get asks for, and how many there are in all."""
        scope = compile_scope(req.filters)
        if scope.is_group and req.memory_type != "episodic_memory":
            raise BadRequest(f"memory_type {req.memory_type} is per user: filter by user_id, "
                             "not group_id")
        types = GET_TYPES[req.memory_type]
        found: list[Memory] = []
        for partition in scope.partitions:
            page = self.memories.page(tenant_id, PageSpec(
                user_id=partition, types=types, offset=0, limit=MAX_LISTED,
                where=scope.sessions))
            found += [m for m in page.items if _in_time(m, scope.times)]
        key = (lambda m: m.create_time) if req.rank_by in (None, "create_time") \
            else (lambda m: m.update_time) if req.rank_by == "update_time" else _when
        found.sort(key=key, reverse=req.rank_order == "desc")
        start = (req.page - 1) * req.page_size
        return found[start:start + req.page_size], len(found)

    def search(self, tenant_id: str, req: MemorySearchRequest) -> SearchData:
        client_users(req.filters)
        found = self._search(tenant_id, req)
        kinds = set(req.memory_types)
        data = SearchData(query=SearchQuery(method="hybrid", text=req.query,
                                            filters_applied=req.filters))
        if "episodic_memory" in kinds:
            data.episodes = [present.episode(s.memory, s.relativity) for s in found.episodes]
        if "profile" in kinds:
            data.profiles = [present.profile(s.memory, s.relativity) for s in found.profiles]
        if "raw_message" in kinds:
            data.raw_messages = [present.raw_message(s.memory, s.relativity) for s in found.raw]
        if "agent_memory" in kinds:
            data.agent_memory = AgentMemory(
                cases=[present.agent_case(s.memory, s.relativity) for s in found.cases],
                skills=[present.agent_skill(s.memory, s.relativity) for s in found.skills])
        if req.include_original_data:
            every = [*found.episodes, *found.profiles, *found.raw, *found.cases, *found.skills]
            data.original_data = {s.memory.id: {"sources": s.memory.sources,
                                                "memory_type": s.memory.memory_type.value}
                                  for s in every}
        return data

    def _search(self, tenant_id: str, req: MemorySearchRequest) -> EverosSearchResult:
        scope = compile_scope(req.filters)
        kinds = set(req.memory_types)
        if scope.is_group and kinds & {"profile", "agent_memory"}:
            raise BadRequest("profile and agent_memory are per user: filter by user_id, "
                             "not group_id")
        limit = self.limits.max_memory_limit if req.top_k == -1 else min(
            req.top_k, self.limits.max_memory_limit)
        result = EverosSearchResult([], [], [], [], [])
        for partition in scope.partitions:
            found = self.search_service.search(tenant_id, SearchSpec(
                user_id=partition, query=req.query, where=scope.sessions, fact_limit=limit,
                preference_limit=limit if "profile" in kinds else 0,
                tool_limit=limit if "agent_memory" in kinds else 0, relativity=req.radius,
                reference_time=req.reference_time, as_of=req.as_of))
            for scored in found.facts:
                if not _in_time(scored.memory, scope.times):
                    continue
                if scored.memory.memory_type == MemoryType.working:
                    result.raw.append(scored)
                else:
                    result.episodes.append(scored)
            result.profiles += [s for s in found.preferences if _in_time(s.memory, scope.times)]
            for scored in found.tools:
                if _in_time(scored.memory, scope.times):
                    (result.cases if scored.memory.memory_type == MemoryType.tool_trajectory
                     else result.skills).append(scored)

        def best(items: list[ScoredMemory], wanted: str) -> list[ScoredMemory]:
            if wanted not in kinds:
                return []
            return sorted(items, key=lambda s: -s.relativity)[:limit]

        return EverosSearchResult(
            episodes=best(result.episodes, "episodic_memory"),
            profiles=best(result.profiles, "profile"), raw=best(result.raw, "raw_message"),
            cases=best(result.cases, "agent_memory"), skills=best(result.skills, "agent_memory"))

    # --- delete, tasks ---------------------------------------------------------------------

    def delete(self, tenant_id: str, req: MemoryDeleteRequest) -> DeleteResult:
        """By id, or every active memory of a user's or group's session: soft, as EverOS
        deletes (the rows stay, out of search). A user_id or a group_id alone erases all
        of that user's or group's data, as delete/memory by user_id does."""
        scoped = [f for f in ("user_id", "group_id", "session_id", "sender_id")
                  if getattr(req, f) not in (None, "")]
        if req.memory_id:
            if scoped:
                raise Unprocessable("give memory_id alone, or filters (user_id / group_id)")
            return DeleteResult(deleted=self.memories.delete(tenant_id, [req.memory_id]))
        if not req.user_id and not req.group_id:
            raise Unprocessable("give memory_id, or user_id and/or group_id")
        if req.sender_id:
            raise Unprocessable("deleting by sender_id is not supported")
        partition = group_partition(req.group_id) if req.group_id else req.user_id
        if scoped in (["user_id"], ["group_id"]):
            receipt = self.memories.erase_user(tenant_id, partition)
            if req.group_id:  # who spoke in it goes with what they said
                self.directory.forget_members(tenant_id, req.group_id)
            return DeleteResult(deleted=receipt.memories, receipt=receipt)
        where = FilterNode(all_of=[Condition(field="conversation_id", op="eq",
                                             value=req.session_id)]) if req.session_id else None
        types = (*EPISODIC_TYPES, MemoryType.working, MemoryType.preference,
                 MemoryType.tool_trajectory, MemoryType.tool_schema)
        deleted = 0
        while True:
            page = self.memories.page(tenant_id, PageSpec(
                user_id=partition, types=types, offset=0, limit=DELETE_BATCH, where=where))
            ids = [m.id for m in page.items if m.status == MemoryStatus.activated]
            if not ids:
                return DeleteResult(deleted=deleted)
            deleted += self.memories.delete(tenant_id, ids)

    def task(self, tenant_id: str, task_id: str) -> TaskStatusResult:
        try:
            return present.task_status(self.tasks.get(tenant_id, task_id))
        except NotFound:
            raise NotFound(f"task {task_id} not found") from None

    # --- groups, senders, settings ------------------------------------------------------

    def put_group(self, tenant_id: str, req: GroupCreateRequest) -> GroupData:
        record = self.directory.put_group(tenant_id, req.group_id, req.name, req.description)
        return present.group(record, self.directory.members(tenant_id, req.group_id))

    def get_group(self, tenant_id: str, group_id: str) -> GroupData:
        record = self.directory.get_group(tenant_id, group_id)
        return present.group(record, self.directory.members(tenant_id, group_id))

    def patch_group(self, tenant_id: str, group_id: str, req: GroupPatchRequest) -> GroupData:
        record = self.directory.patch_group(tenant_id, group_id, req.name, req.description)
        return present.group(record, self.directory.members(tenant_id, group_id))

    def put_sender(self, tenant_id: str, req: SenderCreateRequest) -> SenderData:
        return present.sender(self.directory.put_sender(tenant_id, req.sender_id, req.name))

    def get_sender(self, tenant_id: str, sender_id: str) -> SenderData:
        return present.sender(self.directory.get_sender(tenant_id, sender_id))

    def patch_sender(self, tenant_id: str, sender_id: str, req: SenderPatchRequest
                     ) -> SenderData:
        return present.sender(self.directory.patch_sender(tenant_id, sender_id, req.name))

    def settings(self, tenant_id: str) -> SettingsData:
        return present.settings(self.directory.settings(tenant_id))

    def update_settings(self, tenant_id: str, req: SettingsUpdateRequest) -> SettingsData:
        changes = {name: getattr(req, name) for name in req.model_fields_set
                   if getattr(req, name) is not None}
        if "llm_custom_setting" in req.model_fields_set:
            setting = req.llm_custom_setting
            changes["llm_custom_setting"] = None if setting is None else setting.model_dump(
                exclude_none=True)
        return present.settings(self.directory.update_settings(tenant_id, changes))
