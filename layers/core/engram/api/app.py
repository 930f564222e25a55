"""The /v1 API as a Powertools REST resolver: the same object serves API Gateway events
in Lambda and, through the local HTTP adapter, `engram serve`."""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from engram import __version__
from engram.api.resolver import RequestScopedRestResolver
from engram.api.routes import body_size
from engram.api.routes.everos_memories import everos_memories_router
from engram.api.routes.everos_objects import everos_objects_router
from engram.api.routes.everos_tasks import everos_tasks_router
from engram.api.routes.memories import memories_router
from engram.api.routes.messages import messages_router
from engram.api.routes.search import search_router
from engram.api.routes.tasks import tasks_router
from engram.errors import EngramError
from engram.models.api import ErrorEnvelope
from engram.models.everos import ObjectSignResponse, ObjectSignResult
from engram.services.container import Services

log = logging.getLogger(__name__)
PREFIX = "/v1"
EVEROS_PREFIX = "/api/v1"  # the EverOS routes
MMS_PATHS = (f"{EVEROS_PREFIX}/object/",)  # answer errors in MMS's format, as EverOS does
MMS_VALIDATION_ERROR = 2018
DESCRIPTION = ("Memory layer with the MemOS cloud API shapes (/v1) and the EverOS API "
               "shapes (/api/v1).")


def error_response(status: int, message: str, path: str = "", request_id: str = "") -> Response:
    if path.startswith(MMS_PATHS):
        body = ObjectSignResponse(
            status=MMS_VALIDATION_ERROR if status in (400, 413, 422) else status,
            error=message, request_id=request_id, result=ObjectSignResult(data=message))
        return Response(status_code=400 if status == 422 else status,
                        content_type=content_types.APPLICATION_JSON,
                        body=body.model_dump_json())
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=ErrorEnvelope(code=status, message=message).model_dump_json())


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """422 naming each field (`messages.0.role: Input should be ...`); 400 for bad JSON."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{'.'.join(loc) or 'body'}: {message}")
    return 422, "; ".join(parts)


def create_app(services: Services) -> APIGatewayRestResolver:
    app = RequestScopedRestResolver(enable_validation=True)
    for router in (messages_router(services), tasks_router(services),
                   search_router(services), memories_router(services)):
        app.include_router(router, prefix=PREFIX)
    for router in (everos_objects_router(services), everos_memories_router(services),
                   everos_tasks_router(services)):
        app.include_router(router, prefix=EVEROS_PREFIX)
    app.enable_swagger(path=f"{PREFIX}/docs", title="Engram", version=__version__,
                       description=DESCRIPTION)
    everos_body_limit = services.ingest.limits.max_everos_body_bytes

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi_document():  # no annotation: Response is not a schema type
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                        body=app.get_openapi_json_schema(
                            title="Engram", version=__version__, description=DESCRIPTION))

    def failed(status: int, message: str) -> Response:
        event = app.current_event
        return error_response(status, message, event.path,
                              event.request_context.request_id or "")

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response:
        event = app.current_event
        size = body_size(event.body)
        if event.path.startswith(EVEROS_PREFIX) and size > everos_body_limit:
            # Over the EverOS body limit is a 413 whether or not the body was also invalid.
            return failed(413, f"request body is {size} bytes; the limit for /api/v1 routes "
                               f"is {everos_body_limit} bytes ({everos_body_limit // 1024} KB)")
        return failed(*describe_validation_errors(error.errors()))

    @app.exception_handler(EngramError)
    def engram_error(error: EngramError) -> Response:
        return failed(error.status_code, error.message)

    @app.not_found
    def not_found(_: Exception) -> Response:
        event = app.current_event
        return failed(404, f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return failed(500, f"internal error ({type(error).__name__})")

    return app

