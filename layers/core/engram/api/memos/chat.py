"""chat (/v1): answer `query` for the user with an LLM, their memories (the search
search/memory runs, with the same parameters) in the prompt.

`stream: false` answers the envelope with `data.response`. `stream: true` answers
Server-Sent Events, one `data:` line each: `{"type": "text", "data": <piece>}` as the
model writes, then `{"type": "memory", "data": {"task_id"}}` when the exchange was added,
and `{"type": "end"}` (or `{"type": "error", "data": <why>}` if the model fails part-way).
`engram serve` sends each event as it comes; API Gateway REST cannot stream a Lambda's
answer, so on AWS the same events arrive all at once, when the answer is complete.

`add_message_on_answer` (MemOS's default: true) adds the query and the answer to the
conversation as an add (async_mode, tags, info, agent_id, app_id as in add/message)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, Field, StrictStr, field_validator

from engram.api.auth import tenant_of
from engram.api.memos.models import Envelope, Request, SearchRequest
from engram.api.memos.translate import MemosTranslator
from engram.api.openapi import BODY, responses
from engram.api.streaming import offer_stream
from engram.errors import EngramError
from engram.models.identifiers import Id
from engram.models.requests import AddSpec
from engram.services.chat import ChatContext, ChatService, prompt

SSE_MEDIA_TYPE = "text/event-stream"


class ChatRequest(Request):
    user_id: Id
    conversation_id: Id
    query: str = Field(min_length=1, max_length=4_000)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    model_name: str | None = Field(default=None, max_length=128, description=(
        "Accepted for MemOS's client; Engram answers with its configured model "
        "(ENGRAM_LLM_MODEL)"))
    stream: bool = False
    add_message_on_answer: bool = True
    internet_search: bool = False
    # the search, as search/memory takes it
    agent_id: Id | None = None
    app_id: Id | None = None
    filter: dict[str, Any] | None = None
    knowledgebase_ids: list[Id] | None = None
    memory_limit_number: int = Field(default=6, ge=1, le=25)
    include_preference: bool = True
    preference_limit_number: int = Field(default=6, ge=0, le=25)
    include_tool_memory: bool = False
    tool_memory_limit_number: int = Field(default=6, ge=0, le=25)
    relativity: float | None = Field(default=None, ge=0, le=1)
    # the model's sampling
    max_tokens: int = Field(default=8192, ge=1, le=32_768)
    temperature: float | None = Field(default=0.7, ge=0, le=2)
    top_p: float | None = Field(default=0.95, gt=0, le=1)
    # the add of the exchange, as add/message takes it
    async_mode: bool = True
    tags: list[StrictStr] | None = Field(default=None, max_length=50)
    info: dict[str, StrictStr] | None = None
    allow_public: bool = False
    allow_knowledgebase_ids: list[Id] | None = None

    @field_validator("internet_search")
    @classmethod
    def _no_web(cls, value: bool) -> bool:
        if value:
            raise ValueError("Engram answers from the user's memories only; internet search "
                             "is not available")
        return value


class ChatData(BaseModel):
    response: str
    task_id: str | None = None  # the add of the exchange (add_message_on_answer)


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


@dataclass
class ChatTranslator:
    memos: MemosTranslator  # its search is search/memory's
    chat: ChatService

    def _search(self, req: ChatRequest) -> SearchRequest:
        return SearchRequest(
            query=req.query, user_id=req.user_id, conversation_id=req.conversation_id,
            agent_id=req.agent_id, app_id=req.app_id, filter=req.filter,
            memory_limit_number=req.memory_limit_number,
            include_preference=req.include_preference,
            preference_limit_number=req.preference_limit_number,
            include_tool_memory=req.include_tool_memory,
            tool_memory_limit_number=req.tool_memory_limit_number,
            relativity=req.relativity, knowledgebase_ids=req.knowledgebase_ids)

    def _context(self, tenant_id: str, req: ChatRequest) -> ChatContext:
        found = self.memos.search(tenant_id, self._search(req))
        return ChatContext(
            facts=[m.memory_value for m in found.memory_detail_list]
            + [t.tool_value for t in found.tool_memory_detail_list],
            preferences=[p.preference for p in found.preference_detail_list],
            profile=[line for p in found.profile_detail_list or []
                     for line in p.memory_value.splitlines()])

    def answer(self, tenant_id: str, req: ChatRequest) -> Iterator[str]:
        """The answer's pieces (checked before the search: no model, no work)."""
        self.chat.available()
        messages = prompt(req.query, self._context(tenant_id, req), req.system_prompt)
        return self.chat.answer(messages, max_tokens=req.max_tokens,
                                temperature=req.temperature, top_p=req.top_p)

    def record(self, tenant_id: str, req: ChatRequest, answer: str) -> str | None:
        if not req.add_message_on_answer or not answer.strip():
            return None
        spec = AddSpec(user_id=req.user_id, conversation_id=req.conversation_id,
                       async_mode=req.async_mode, agent_id=req.agent_id, app_id=req.app_id,
                       tags=req.tags or [], info=req.info or {},
                       allow_public=req.allow_public,
                       knowledgebase_ids=req.allow_knowledgebase_ids or [])
        return self.chat.record(tenant_id, spec, req.query, answer).task_id

    def complete(self, tenant_id: str, req: ChatRequest) -> ChatData:
        text = "".join(self.answer(tenant_id, req))
        return ChatData(response=text, task_id=self.record(tenant_id, req, text))

    def events(self, tenant_id: str, req: ChatRequest) -> Iterator[str]:
        """The SSE events; the model's first piece is awaited before this returns (an
        error then is an error answer, not a stream)."""
        pieces = self.answer(tenant_id, req)

        def run() -> Iterator[str]:
            text: list[str] = []
            try:
                for piece in pieces:
                    text.append(piece)
                    yield sse({"type": "text", "data": piece})
                task_id = self.record(tenant_id, req, "".join(text))
            except EngramError as exc:  # the model failed part-way, or the add did
                yield sse({"type": "error", "data": exc.message})
                return
            if task_id:
                yield sse({"type": "memory", "data": {"task_id": task_id}})
            yield sse({"type": "end"})

        return run()


def chat_responses() -> dict[int, Any]:
    out = responses(*BODY, 502, 503)
    out[200] = {"description": "The answer: the envelope, or with `stream: true` Server-Sent "
                "Events (`data: {\"type\": \"text\" | \"memory\" | \"end\" | \"error\", "
                "\"data\": ...}`), sent as they come by engram serve and all at once on AWS",
                "content": {"application/json": {"model": Envelope[ChatData]},
                            SSE_MEDIA_TYPE: {"schema": {"type": "string"}}}}
    return out


def chat_router(chat: ChatTranslator) -> Router:
    router = Router()

    @router.post("/chat", summary="Answer a query with the user's memories (LLM), "
                 "optionally streamed", responses=chat_responses())
    def chat_answer(req: Annotated[ChatRequest, Body()]) -> Envelope[ChatData] | str:
        # str: the SSE body (empty when the server streams it); Powertools validates
        # every answer against this annotation, a Response's body included.
        tenant = tenant_of(router)
        if not req.stream:
            return Envelope(data=chat.complete(tenant, req))
        events = chat.events(tenant, req)
        headers = {"Cache-Control": "no-cache"}
        if offer_stream(events):
            return Response(status_code=200, content_type=SSE_MEDIA_TYPE, body="",
                            headers=headers)
        return Response(status_code=200, content_type=SSE_MEDIA_TYPE,
                        body="".join(events), headers=headers)

    return router
