"""search/memory."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.memos.models import Envelope, SearchData, SearchRequest
from engram.api.memos.presenters import memory_detail, preference_detail, tool_detail
from engram.api.openapi import BODY, responses
from engram.api.params import tenant_of
from engram.container import Services


def search_router(services: Services) -> Router:
    router = Router()

    @router.post("/search/memory", summary="The memories that matter for a query",
                 responses=responses(*BODY))
    def search_memory(req: Annotated[SearchRequest, Body()]) -> Envelope[SearchData]:
        result = services.search.search(tenant_of(router), req)
        return Envelope(data=SearchData(
            memory_detail_list=[memory_detail(s.memory, s.relativity) for s in result.facts],
            preference_detail_list=[preference_detail(s.memory, s.relativity)
                                    for s in result.preferences],
            tool_memory_detail_list=[tool_detail(s.memory, s.relativity) for s in result.tools],
            preference_note=result.preference_note,
        ))

    return router
