"""extract/memory (/v1): the candidate memories the deployment's extractor finds in the
given messages, nothing stored. Shapes after MemOS's "Extract Memory" reference:
`data.memory_detail_list` (memory_key, memory_value, memory_type, tags) and
`data.preference_detail_list` (preference, reasoning, preference_type)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, Field, model_validator

from engram.api.auth import tenant_of
from engram.api.memos.models import ChatMessage, Envelope, Request
from engram.api.openapi import BODY, responses
from engram.models.domain import MemoryType, Role, TokenUsage
from engram.services.extract_preview import ExtractionPreview

MAX_MESSAGES = 500  # as add/message
MAX_TEXT_CHARS = 100_000  # all messages' text together


class ExtractMemoryRequest(Request):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    extraction_types: list[Literal["memory", "preference"]] | None = Field(
        default=None, min_length=1,
        description="What to extract: facts (memory), preferences, or both (the default)")
    model: str | None = Field(default=None, max_length=128, description=(
        "Accepted for MemOS's client; Engram runs its configured extractor (the LLM's "
        "when ENGRAM_LLM_MODEL is set, else the rule-based one)"))

    @model_validator(mode="after")
    def _within_size(self) -> ExtractMemoryRequest:
        size = sum(len(m.text) for m in self.messages)
        if size > MAX_TEXT_CHARS:
            raise ValueError(f"messages: {size} characters of text in all; the limit for "
                             f"extract/memory is {MAX_TEXT_CHARS}")
        return self


class ExtractedMemory(BaseModel):
    memory_key: str
    memory_value: str
    memory_type: str
    tags: list[str]
    confidence: float
    event_time: int | None = None
    message_indexes: list[int]  # the messages (0-based) it came from


class ExtractedPreference(BaseModel):
    preference: str
    reasoning: str
    preference_type: Literal["explicit_preference", "implicit_preference"]
    memory_key: str
    polarity: str | None = None
    tags: list[str]
    confidence: float
    message_indexes: list[int]


class ExtractMemoryData(BaseModel):
    success: bool = True
    memory_detail_list: list[ExtractedMemory]
    preference_detail_list: list[ExtractedPreference]
    extractor: str  # "rule-based", or the LLM extractor's name
    usage: TokenUsage
    warnings: list[str]


def _indexes(sources: list[str]) -> list[int]:
    return sorted({int(s[1:]) for s in sources if s[:1] == "m" and s[1:].isdigit()})


@dataclass
class ExtractTranslator:
    preview: ExtractionPreview

    def extract(self, tenant_id: str, req: ExtractMemoryRequest) -> ExtractMemoryData:
        kinds = set(req.extraction_types or ("memory", "preference"))
        found = self.preview.extract(tenant_id, [(Role(m.role), m.text, m.chat_time)
                                                 for m in req.messages if m.text.strip()])
        facts = [c for c in found.candidates if c.memory_type != MemoryType.preference]
        preferences = [c for c in found.candidates if c.memory_type == MemoryType.preference]
        return ExtractMemoryData(
            memory_detail_list=[ExtractedMemory(
                memory_key=c.memory_key, memory_value=c.memory_value,
                memory_type=c.memory_type.value, tags=c.tags, confidence=c.confidence,
                event_time=c.event_time, message_indexes=_indexes(c.sources))
                for c in facts] if "memory" in kinds else [],
            preference_detail_list=[ExtractedPreference(
                preference=c.memory_value, reasoning=c.reasoning or "",
                preference_type=f"{c.preference_type or 'explicit'}_preference",
                memory_key=c.memory_key, polarity=c.polarity, tags=c.tags,
                confidence=c.confidence, message_indexes=_indexes(c.sources))
                for c in preferences] if "preference" in kinds else [],
            extractor=self.preview.extractor.name, usage=found.usage,
            warnings=list(found.warnings))


def extract_router(extract: ExtractTranslator) -> Router:
    router = Router()

    @router.post("/extract/memory", summary="Extract candidate memories from messages, "
                 "storing nothing", responses=responses(*BODY, 502, 503))
    def extract_memory(req: Annotated[ExtractMemoryRequest, Body()]
                       ) -> Envelope[ExtractMemoryData]:
        return Envelope(data=extract.extract(tenant_of(router), req))

    return router
