"""get/memory (paged), get/memory/{id}, update/memory, delete/memory."""

from __future__ import annotations

from math import ceil
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.memos.models import (
    DeleteMemoryData,
    DeleteMemoryRequest,
    Envelope,
    GetMemoryData,
    GetMemoryRequest,
    MemoryDetail,
    UpdateMemoryData,
    UpdateMemoryRequest,
)
from engram.api.memos.presenters import memory_detail, preference_detail, tool_detail
from engram.api.openapi import BODY, PARAMS, responses
from engram.api.params import PathId, tenant_of
from engram.container import Services


def memories_router(services: Services) -> Router:
    router = Router()

    @router.post("/get/memory", summary="A user's current memories, newest first, paged",
                 responses=responses(*BODY))
    def get_memory(req: Annotated[GetMemoryRequest, Body()]) -> Envelope[GetMemoryData]:
        pages = services.memories.page(tenant_of(router), req)
        return Envelope(data=GetMemoryData(
            memory_detail_list=[memory_detail(m) for m in pages.facts.items],
            preference_detail_list=[preference_detail(m) for m in pages.preferences],
            tool_memory_detail_list=[tool_detail(m) for m in pages.tools],
            total=pages.facts.total, size=req.size, current=req.page,
            pages=ceil(pages.facts.total / req.size)))

    @router.get("/get/memory/<memory_id>", summary="One memory by id, with its history",
                responses=responses(*PARAMS, 404))
    def get_memory_by_id(memory_id: PathId) -> Envelope[MemoryDetail]:
        memory = services.memories.get(tenant_of(router), memory_id)
        return Envelope(data=memory_detail(memory, with_history=True))

    @router.post("/update/memory", summary="Edit a memory's content, title or status",
                 responses=responses(*BODY, 404))
    def update_memory(req: Annotated[UpdateMemoryRequest, Body()]) -> Envelope[UpdateMemoryData]:
        memory = services.memories.update(tenant_of(router), req)
        return Envelope(data=UpdateMemoryData(memory=memory_detail(memory)))

    @router.post("/delete/memory", summary="Delete memories by id, or erase all of a user's data",
                 responses=responses(*BODY, 404))
    def delete_memory(req: Annotated[DeleteMemoryRequest, Body()]) -> Envelope[DeleteMemoryData]:
        deleted = services.memories.delete(tenant_of(router), req)
        return Envelope(data=DeleteMemoryData(deleted=deleted.deleted, receipt=deleted.receipt))

    return router
