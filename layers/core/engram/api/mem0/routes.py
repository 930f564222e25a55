"""mem0's platform routes, one Router per resource, as `mem0ai`'s MemoryClient calls
them (trailing slashes included): ping, memories (v3 add / search / list, v1 get /
update / delete / history), event status, entities, batch, feedback, webhooks."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from engram.api.auth import tenant_of
from engram.api.mem0 import models as m
from engram.api.mem0.translate import Mem0Translator, engram_event_types
from engram.api.openapi import BODY, INDEX, PARAMS
from engram.api.openapi import mem0_responses as responses
from engram.api.params import PathId

Entity = Annotated[str | None, Query(min_length=1, max_length=256)]


def mem0_ping_router(mem0: Mem0Translator) -> Router:
    router = Router()

    @router.get("/v1/ping/", summary="mem0: check the API key (MemoryClient does on creation)",
                responses=responses(401))
    def ping() -> m.Mem0Ping:
        return mem0.ping(tenant_of(router))

    return router


def mem0_memories_router(mem0: Mem0Translator) -> Router:
    router = Router()

    @router.post("/v3/memories/add/", summary="mem0: add messages (async by default)",
                 responses=responses(*BODY, INDEX))
    def add(req: Annotated[m.Mem0AddRequest, Body()]) -> m.Mem0Queued | m.Mem0AddResults:
        return mem0.add(tenant_of(router), req)

    @router.post("/v3/memories/search/", summary="mem0: search with the filters DSL",
                 responses=responses(*BODY, INDEX))
    def search(req: Annotated[m.Mem0SearchRequest, Body()]) -> m.Mem0SearchResults:
        return mem0.search(tenant_of(router), req)

    @router.post("/v3/memories/", summary="mem0: list current memories, paged",
                 responses=responses(*BODY))
    def get_all(req: Annotated[m.Mem0GetAllRequest, Body()],
                page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                page_size: Annotated[int, Query(ge=1, le=1000)] = 100) -> m.Mem0MemoryPageOut:
        return mem0.get_all(tenant_of(router), req, page, page_size)

    @router.get("/v1/memories/<memory_id>/", summary="mem0: one memory",
                responses=responses(*PARAMS, 404))
    def get(memory_id: PathId) -> m.Mem0MemoryOut:
        return mem0.get(tenant_of(router), memory_id)

    @router.put("/v1/memories/<memory_id>/",
                summary="mem0: change a memory's text (the old value stays in history) "
                        "or metadata", responses=responses(*BODY, 404, INDEX))
    def update(memory_id: PathId, req: Annotated[m.Mem0UpdateRequest, Body()]) -> m.Mem0MemoryOut:
        return mem0.update(tenant_of(router), memory_id, req.text, req.metadata)

    @router.delete("/v1/memories/<memory_id>/",
                   summary="mem0: delete a memory (taken out of search; history kept)",
                   responses=responses(*PARAMS, 404, INDEX))
    def delete(memory_id: PathId,
               delete_linked: Annotated[bool, Query()] = False) -> m.Mem0Message:
        # Engram keeps superseded values inside the memory itself: nothing else is linked
        mem0.delete(tenant_of(router), [memory_id])
        return m.Mem0Message(message="Memory deleted successfully!")

    @router.delete("/v1/memories/", summary="mem0: delete every memory of an entity",
                   responses=responses(*PARAMS, INDEX))
    def delete_all(user_id: Entity = None, agent_id: Entity = None, app_id: Entity = None,
                   run_id: Entity = None) -> m.Mem0Message:
        count = mem0.delete_all(tenant_of(router), {
            "user_id": user_id, "agent_id": agent_id, "app_id": app_id, "run_id": run_id})
        return m.Mem0Message(message=f"{count} memories deleted successfully!")

    @router.get("/v1/memories/<memory_id>/history/",
                summary="mem0: a memory's versions (add, each update or supersede, delete)",
                responses=responses(*PARAMS, 404))
    def history(memory_id: PathId) -> list[m.Mem0HistoryEntry]:
        return mem0.history(tenant_of(router), memory_id)

    @router.get("/v1/event/<event_id>/", summary="mem0: the status of an async add",
                responses=responses(*PARAMS, 404))
    def event(event_id: PathId) -> m.Mem0EventStatus:
        return mem0.event(tenant_of(router), event_id)

    return router


def mem0_entities_router(mem0: Mem0Translator) -> Router:
    router = Router()

    @router.get("/v1/entities/", summary="mem0: users, agents, apps and runs with memories",
                responses=responses(401))
    def entities() -> m.Mem0EntityPage:
        return mem0.entities(tenant_of(router))

    @router.delete("/v2/entities/<entity_type>/<entity_id>/",
                   summary="mem0: delete an entity (a user: erased, everything of theirs)",
                   responses=responses(*PARAMS, 404, INDEX))
    def delete_entity(entity_type: PathId, entity_id: PathId) -> m.Mem0Message:
        if entity_type not in ("user", "agent", "app", "run"):
            from engram.errors import Unprocessable

            raise Unprocessable(f"entity type {entity_type}: one of user, agent, app, run")
        mem0.delete_entity(tenant_of(router), entity_type, entity_id)
        return m.Mem0Message(message="Entity deleted successfully.")

    return router


def mem0_batch_router(mem0: Mem0Translator) -> Router:
    router = Router()

    @router.put("/v1/batch/", summary="mem0: update up to 1000 memories",
                responses=responses(*BODY, 404, INDEX))
    def batch_update(req: Annotated[m.Mem0BatchUpdateRequest, Body()]) -> m.Mem0Message:
        tenant = tenant_of(router)
        for item in req.memories:
            mem0.memory(tenant, item.memory_id)  # all exist, or nothing changes
        for item in req.memories:
            mem0.update(tenant, item.memory_id, item.text, item.metadata)
        return m.Mem0Message(message=f"Successfully updated {len(req.memories)} memories")

    @router.delete("/v1/batch/", summary="mem0: delete up to 1000 memories",
                   responses=responses(*BODY, 404, INDEX))
    def batch_delete(req: Annotated[m.Mem0BatchDeleteRequest, Body()]) -> m.Mem0Message:
        count = mem0.delete(tenant_of(router), [i.memory_id for i in req.memories])
        return m.Mem0Message(message=f"Successfully deleted {count} memories")

    @router.post("/v1/feedback/", summary="mem0: feedback on a memory (kept in its info)",
                 responses=responses(*BODY, 404, INDEX))
    def feedback(req: Annotated[m.Mem0FeedbackRequest, Body()]) -> m.Mem0FeedbackOut:
        return mem0.feedback(tenant_of(router), req)

    return router


def mem0_webhooks_router(mem0: Mem0Translator) -> Router:
    """Under /api/v1 (the client's relative `api/v1/webhooks/...`); the project is the
    tenant the API key belongs to (ping's project_id)."""
    router = Router()

    @router.get("/webhooks/projects/<project_id>/", summary="mem0: the project's webhooks",
                responses=responses(*PARAMS, 404))
    def list_hooks(project_id: PathId) -> list[m.Mem0WebhookOut]:
        tenant = tenant_of(router)
        mem0.check_project(tenant, project_id)
        return [mem0.webhook_out(tenant, w) for w in mem0.hooks().list(tenant)]

    @router.post("/webhooks/projects/<project_id>/",
                 summary="mem0: register a webhook (signed deliveries; `secret` shown once)",
                 responses=responses(*BODY, 404))
    def create_hook(project_id: PathId, req: Annotated[m.Mem0WebhookCreate, Body()]
                    ) -> m.Mem0WebhookOut:
        tenant = tenant_of(router)
        mem0.check_project(tenant, project_id)
        record = mem0.hooks().create(tenant, req.name, req.url,
                                     engram_event_types(req.event_types))
        return mem0.webhook_out(tenant, record, secret=True)

    @router.put("/webhooks/<webhook_id>/", summary="mem0: change a webhook",
                responses=responses(*BODY, 404))
    def update_hook(webhook_id: PathId, req: Annotated[m.Mem0WebhookUpdate, Body()]
                    ) -> m.Mem0WebhookOut:
        tenant = tenant_of(router)
        record = mem0.hooks().update(
            tenant, webhook_id, name=req.name, url=req.url,
            event_types=engram_event_types(req.event_types) if req.event_types else None)
        return mem0.webhook_out(tenant, record)

    @router.delete("/webhooks/<webhook_id>/", summary="mem0: delete a webhook",
                   responses=responses(*PARAMS, 404))
    def delete_hook(webhook_id: PathId) -> m.Mem0Message:
        mem0.hooks().delete(tenant_of(router), webhook_id)
        return m.Mem0Message(message="Webhook deleted successfully")

    return router
