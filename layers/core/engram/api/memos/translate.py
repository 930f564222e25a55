"""The MemOS API (/v1) over Engram's services: each MemOS request becomes a call on the
core (models/requests.py), each answer the MemOS response data the routes wrap in the
envelope.

What maps to what: a MemOS message is a MessageDraft (its `image_url` / `file` parts
become items, its tool calls are written out after its words); add/feedback is an add of
kind "feedback" with one user turn; `filter` is compiled per source, and the "user"
source (or a global filter) plus `agent_id` / `app_id` / `tags` restricts search and
get/memory; get/memory's preferences and tool memories are their first page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import ceil
from typing import Any
from urllib.parse import unquote, urlsplit

from engram.api.memos.models import (
    AddMessageData,
    AddMessageRequest,
    DeleteMemoryData,
    DeleteMemoryRequest,
    FeedbackRequest,
    GetMemoryData,
    GetMemoryRequest,
    GetMessageData,
    GetMessageRequest,
    MemoryDetail,
    SearchData,
    SearchRequest,
    TaskStatusData,
    UpdateMemoryData,
    UpdateMemoryRequest,
)
from engram.api.memos.presenters import (
    memory_detail,
    message_detail,
    preference_detail,
    shared_detail,
    tool_detail,
)
from engram.api.memos.profile_models import ProfileDetail
from engram.errors import Unprocessable
from engram.models.content import ItemInput
from engram.models.domain import FACT_TYPES, TOOL_TYPES, MemoryStatus, MemoryType, Role, Task
from engram.models.filters import SOURCES, Condition, FilterError, FilterNode, split_sources
from engram.models.knowledge import PUBLIC_SCOPE, kb_scope
from engram.models.requests import (
    AcceptResult,
    AddSpec,
    MemoryEdit,
    MessageDraft,
    PageSpec,
    SearchSpec,
    shown_text,
)
from engram.ports import MemoryPage
from engram.services.attachments import is_http_url
from engram.services.ingest import IngestService, task_views
from engram.services.knowledge import KnowledgeService
from engram.services.memories import MemoryService
from engram.services.search import SearchService
from engram.services.tasks import TaskService
from engram.services.url_policy import decode_base64, decode_data_url

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
              "image/webp": "webp", "application/pdf": "pdf"}

# --- requests → core -------------------------------------------------------------------


def accept_args(req: AddMessageRequest, idempotency_key: str | None = None
                ) -> tuple[AddSpec, list[MessageDraft]]:
    """add/message as the arguments of IngestService.accept."""
    drafts = [MessageDraft(role=Role(m.role), text=shown_text(m.text, calls),
                           chat_time=m.chat_time, message_id=m.message_id, speaker=m.name,
                           items=memos_items(i, m.content), tool_calls=calls,
                           tool_call_id=m.tool_call_id)
              for i, m in enumerate(req.messages)
              for calls in [[(c.id, c.function.name, c.function.arguments)
                             for c in m.tool_calls or []]]]
    spec = AddSpec(
        user_id=req.owner, conversation_id=req.conversation_id,
        async_mode=req.async_mode, agent_id=req.agent_id, app_id=req.app_id,
        tags=req.tags or [], info=req.info or {}, allow_public=req.allow_public,
        knowledgebase_ids=req.allow_knowledgebase_ids or [],
        idempotency_key=idempotency_key)
    return spec, drafts


def feedback_args(req: FeedbackRequest, idempotency_key: str | None = None
                  ) -> tuple[AddSpec, list[MessageDraft]]:
    """add/feedback as the arguments of IngestService.accept."""
    spec = AddSpec(
        user_id=req.user_id, conversation_id=req.conversation_id or "feedback",
        kind="feedback", agent_id=req.agent_id, app_id=req.app_id,
        allow_public=req.allow_public,
        knowledgebase_ids=req.allow_knowledgebase_ids or [],
        idempotency_key=idempotency_key)
    draft = MessageDraft(role=Role.user, text=req.feedback_content,
                         chat_time=req.feedback_time)
    return spec, [draft]


def memos_items(message_index: int, content: Any) -> list[ItemInput]:
    """A MemOS message's non-text parts (`image_url`, `file`), in content order. The
    request model has already checked their shape."""
    if not isinstance(content, list):
        return []
    items = []
    for i, part in enumerate(content):
        where = f"messages[{message_index}].content[{i}]"
        if part.get("type") == "image_url":
            url = part["image_url"]["url"].strip()
            name = str(part["image_url"].get("file_name") or "")
            items.append(_from_reference(where + ".image_url.url", "image", url, name))
        elif part.get("type") == "file":
            spec = part["file"]
            data = spec["file_data"].strip()
            name = str(spec.get("file_name") or spec.get("filename") or "")
            items.append(_from_reference(where + ".file.file_data", "file", data, name))
    return items


def _from_reference(where: str, kind: str, value: str, name: str) -> ItemInput:
    if is_http_url(value):
        if not name:
            name = unquote(urlsplit(value).path.rsplit("/", 1)[-1])
        return ItemInput(where=where, type=kind, url=value, name=name)
    if value[:5].lower() == "data:":
        data, content_type = decode_data_url(value, where)
        if kind == "image" and content_type and not content_type.startswith("image/"):
            raise Unprocessable(f"{where}: a data: URL of type {content_type} is not an image")
        if not name:
            name = f"{kind}.{EXTENSIONS.get(content_type or '', 'bin')}"
        return ItemInput(where=where, type=kind, data=data, content_type=content_type,
                         name=name)
    if kind == "image":
        raise Unprocessable(f"{where}: must be an http(s) URL or a data:image/...;base64,... "
                            "URL")
    return ItemInput(where=where, type=kind, data=decode_base64(value, where),
                     name=name or "file")


def user_filter(raw: dict[str, Any] | None) -> FilterNode | None:
    """The filter's "user" source (or its global form), compiled."""
    try:
        return split_sources(raw)["user"]
    except FilterError as exc:
        raise Unprocessable(str(exc)) from None


def search_filter(req: SearchRequest) -> FilterNode | None:
    """The user-source filter plus the top-level agent_id / app_id / tags constraints."""
    node = user_filter(req.filter)
    extra = [Condition(field=f, op="eq", value=v)
             for f, v in (("agent_id", req.agent_id), ("app_id", req.app_id)) if v]
    extra += [Condition(field="tags", op="contains", value=t) for t in req.tags or []]
    if not extra:
        return node
    return FilterNode(all_of=[*extra, *([node] if node else [])])


def search_spec(req: SearchRequest) -> SearchSpec:
    """search/memory as the argument of SearchService.search."""
    return SearchSpec(
        user_id=req.owner, query=req.query, where=search_filter(req),
        conversation_id=req.conversation_id, fact_limit=req.memory_limit_number,
        preference_limit=req.preference_limit_number if req.include_preference else 0,
        tool_limit=req.tool_memory_limit_number if req.include_tool_memory else 0,
        relativity=req.relativity, reference_time=req.reference_time, as_of=req.as_of)


def source_filters(raw: dict[str, Any] | None) -> dict[str, FilterNode | None]:
    try:
        return split_sources(raw)
    except FilterError as exc:
        raise Unprocessable(str(exc)) from None


def asks_public(req: SearchRequest) -> bool:
    """The flag, or a per-source filter that names the public source."""
    raw = req.filter
    per_source = bool(raw) and isinstance(raw, dict) and set(raw) <= set(SOURCES)
    return req.include_public or (per_source and "public" in raw)  # type: ignore[operator]


def shared_spec(req: SearchRequest, scope: str, where: FilterNode | None) -> SearchSpec:
    """search/memory in a shared scope: facts only, as many as the user's."""
    return SearchSpec(
        user_id=scope, query=req.query, where=where, fact_limit=req.memory_limit_number,
        relativity=req.relativity, reference_time=req.reference_time, as_of=req.as_of)


def delete_filter(req: DeleteMemoryRequest) -> FilterNode:
    """delete/memory by agent_id, or by a search filter (its user source, or global form)."""
    if req.agent_id:
        return FilterNode(all_of=[Condition(field="agent_id", op="eq", value=req.agent_id)])
    node = user_filter(req.filter)
    if node is None:
        raise Unprocessable("filter: name at least one condition for the user source")
    return node


def memory_edit(req: UpdateMemoryRequest) -> MemoryEdit:
    return MemoryEdit(memory_id=req.memory_id, content=req.content, title=req.title,
                      status=MemoryStatus(req.status) if req.status is not None else None,
                      user_id=req.user_id)


# --- core → responses ------------------------------------------------------------------


def added(accepted: AcceptResult) -> AddMessageData:
    return AddMessageData(**accepted.model_dump())


def status_data(task: Task) -> TaskStatusData:
    return TaskStatusData(
        task_id=task.task_id, status=task.status.value, step=task.step,
        memory_views=task_views(task), error=task.error, message_count=task.message_count,
        create_time=task.create_time, update_time=task.update_time, items=task.items,
        usage=task.usage, warnings=task.warnings, attempt=task.attempt)


@dataclass
class MemosTranslator:
    """The /v1 routes' one dependency: every MemOS operation over the core services."""

    ingest: IngestService
    search_service: SearchService
    memories: MemoryService
    tasks: TaskService
    # The user's (and agent's) profiles, shown with search/memory and get/memory
    # (api/memos/profiles.py); None: no profile list.
    profile_details: Callable[[str, str | None, str | None], list[ProfileDetail]] | None = None
    knowledge: KnowledgeService | None = None

    def _knowledge_bases(self, tenant_id: str, ids: list[str] | None, field_name: str) -> None:
        """Each knowledge base named must be the tenant's (404 naming it otherwise)."""
        if not ids:
            return
        if self.knowledge is None:
            raise Unprocessable(f"{field_name}: knowledge bases are not served here")
        self.knowledge.require_all(tenant_id, ids, field_name)

    def add_message(self, tenant_id: str, req: AddMessageRequest,
                    idempotency_key: str | None = None) -> AddMessageData:
        self._knowledge_bases(tenant_id, req.allow_knowledgebase_ids, "allow_knowledgebase_ids")
        return added(self.ingest.accept(tenant_id, *accept_args(req, idempotency_key)))

    def add_feedback(self, tenant_id: str, req: FeedbackRequest,
                     idempotency_key: str | None = None) -> AddMessageData:
        self._knowledge_bases(tenant_id, req.allow_knowledgebase_ids, "allow_knowledgebase_ids")
        return added(self.ingest.accept(tenant_id, *feedback_args(req, idempotency_key)))

    def get_message(self, tenant_id: str, req: GetMessageRequest) -> GetMessageData:
        messages = self.memories.conversation(tenant_id, req.user_id, req.conversation_id,
                                              req.message_limit_number)
        return GetMessageData(message_detail_list=[message_detail(m) for m in messages])

    def search(self, tenant_id: str, req: SearchRequest) -> SearchData:
        """The user's memories; with include_public (or a 'public' source filter) the
        tenant's public memories, and with knowledgebase_ids those knowledge bases: each
        source up to memory_limit_number, all in memory_detail_list by relativity, marked
        with their source."""
        self._knowledge_bases(tenant_id, req.knowledgebase_ids, "knowledgebase_ids")
        result = self.search_service.search(tenant_id, search_spec(req))
        facts = [memory_detail(s.memory, s.relativity) for s in result.facts]
        filters = source_filters(req.filter)
        seen = {d.id for d in facts}
        if asks_public(req):
            found = self.search_service.search(
                tenant_id, shared_spec(req, PUBLIC_SCOPE, filters["public"])).facts
            # the user's own public memories are among their own results already
            facts += [shared_detail(s.memory, s.relativity, "public") for s in found
                      if s.memory.id not in seen and s.memory.user_id != req.owner]
            seen |= {d.id for d in facts}
        for knowledgebase_id in dict.fromkeys(req.knowledgebase_ids or []):
            found = self.search_service.search(
                tenant_id, shared_spec(req, kb_scope(knowledgebase_id),
                                       filters["knowledgebase"])).facts
            facts += [shared_detail(s.memory, s.relativity, "knowledgebase", knowledgebase_id)
                      for s in found if s.memory.id not in seen]
            seen |= {d.id for d in facts}
        facts.sort(key=lambda d: -(d.relativity or 0.0))
        return SearchData(
            memory_detail_list=facts,
            preference_detail_list=[preference_detail(s.memory, s.relativity)
                                    for s in result.preferences],
            tool_memory_detail_list=[tool_detail(s.memory, s.relativity) for s in result.tools],
            preference_note=result.preference_note,
            profile_detail_list=self._profiles(tenant_id, req.user_id, req.agent_id),
        )

    def _profiles(self, tenant_id: str, user_id: str | None,
                  agent_id: str | None) -> list[ProfileDetail] | None:
        if self.profile_details is None:
            return None
        return self.profile_details(tenant_id, user_id, agent_id) or None

    def get_memory(self, tenant_id: str, req: GetMemoryRequest) -> GetMemoryData:
        """A page of facts; preferences and tool memories (when asked for) are their first
        page of the same size. With a user_id and an agent_id, the user's memories of
        that agent; with an agent_id alone, the agent's own."""
        where = user_filter(req.filter)
        if req.user_id and req.agent_id:
            agent = Condition(field="agent_id", op="eq", value=req.agent_id)
            where = FilterNode(all_of=[agent, *([where] if where else [])])

        def page(types: tuple[MemoryType, ...], offset: int = 0) -> MemoryPage:
            return self.memories.page(tenant_id, PageSpec(
                user_id=req.owner, types=types, offset=offset, limit=req.size, where=where))

        facts = page(FACT_TYPES, (req.page - 1) * req.size)
        preferences = page((MemoryType.preference,)).items if req.include_preference else []
        tools = page(TOOL_TYPES).items if req.include_tool_memory else []
        return GetMemoryData(
            memory_detail_list=[memory_detail(m) for m in facts.items],
            preference_detail_list=[preference_detail(m) for m in preferences],
            tool_memory_detail_list=[tool_detail(m) for m in tools],
            total=facts.total, size=req.size, current=req.page,
            pages=ceil(facts.total / req.size),
            profile_detail_list=self._profiles(tenant_id, req.user_id, req.agent_id))

    def get_memory_by_id(self, tenant_id: str, memory_id: str) -> MemoryDetail:
        return memory_detail(self.memories.get(tenant_id, memory_id), with_history=True)

    def update_memory(self, tenant_id: str, req: UpdateMemoryRequest) -> UpdateMemoryData:
        memory = self.memories.update(tenant_id, memory_edit(req))
        return UpdateMemoryData(memory=memory_detail(memory))

    def delete_memory(self, tenant_id: str, req: DeleteMemoryRequest) -> DeleteMemoryData:
        """By memory_ids, agent_id or filter (across the tenant's users): taken out of
        search. By user_id: everything of the user erased, with a receipt of what."""
        if req.user_id:
            receipt = self.memories.erase_user(tenant_id, req.user_id)
            return DeleteMemoryData(deleted=receipt.memories, receipt=receipt)
        if req.agent_id or req.filter is not None:
            return DeleteMemoryData(
                deleted=self.memories.delete_matching(tenant_id, delete_filter(req)))
        return DeleteMemoryData(deleted=self.memories.delete(tenant_id, req.memory_ids or []))

    def task_status(self, tenant_id: str, task_id: str) -> TaskStatusData:
        return status_data(self.tasks.get(tenant_id, task_id))

    def retry_task(self, tenant_id: str, task_id: str) -> TaskStatusData:
        return status_data(self.tasks.retry(tenant_id, task_id))
