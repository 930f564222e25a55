"""The EverOS (/api/v1, /api/v2) and mem0 routes, which the resolver includes on first use
(app.py, `EngramResolver.include_on_first_use`): their models and routes are about half
of the API's, and a MemOS request's cold start need not import or register them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engram.api.everos.routes import (
    everos_groups_router,
    everos_memories_router,
    everos_objects_router,
    everos_senders_router,
    everos_settings_router,
    everos_tasks_router,
)
from engram.api.everos.translate import EverosTranslator
from engram.api.everos.v2.routes import everos_v2_memory_router, everos_v2_objects_router
from engram.api.everos.v2.translate import EverosV2Translator
from engram.api.mem0.exports import Mem0ExportTranslator
from engram.api.mem0.exports import exports_router as mem0_exports_router
from engram.api.mem0.routes import (
    mem0_batch_router,
    mem0_entities_router,
    mem0_memories_router,
    mem0_ping_router,
    mem0_webhooks_router,
)
from engram.api.mem0.translate import Mem0Translator
from engram.services.profile_items import ProfileItemService

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from engram.container import Services


def include_everos_and_mem0(app: APIGatewayRestResolver, services: Services,
                            everos_prefix: str, everos_v2_prefix: str) -> None:
    """mem0's routes, then EverOS's, then EverOS v2's: every path under app.py's
    MEM0_PATHS, `everos_prefix` or `everos_v2_prefix`."""
    mem0 = Mem0Translator(services)
    for router in (mem0_ping_router(mem0), mem0_memories_router(mem0),
                   mem0_entities_router(mem0), mem0_batch_router(mem0)):
        app.include_router(router)
    if services.exports is not None:  # mem0's export routes carry their own /v1
        app.include_router(mem0_exports_router(Mem0ExportTranslator(services.exports)))
    app.include_router(mem0_webhooks_router(mem0), prefix=everos_prefix)
    everos = EverosTranslator(ingest=services.ingest, search_service=services.search,
                              memories=services.memories, tasks=services.tasks,
                              uploads=services.uploads, limits=services.ingest.limits,
                              directory=services.directory)
    for router in (everos_objects_router(everos), everos_memories_router(everos),
                   everos_tasks_router(everos), everos_groups_router(everos),
                   everos_senders_router(everos), everos_settings_router(everos)):
        app.include_router(router, prefix=everos_prefix)
    everos_v2 = EverosV2Translator(v1=everos, profiles=ProfileItemService(services.memories))
    for router in (everos_v2_objects_router(everos_v2), everos_v2_memory_router(everos_v2)):
        app.include_router(router, prefix=everos_v2_prefix)
