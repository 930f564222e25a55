"""The /v1 API as a Powertools REST resolver: the same object serves API Gateway events
in Lambda and, through the local HTTP adapter, `engram serve`."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import MediaType, Parameter
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from engram import __version__
from engram.api.guard import (
    JsonBodyValidation,
    allowed_methods,
    check_content_type,
    parse_json_object,
)
from engram.api.memos.chat import ChatTranslator, chat_router
from engram.api.memos.exports import ExportTranslator, exports_router
from engram.api.memos.extract import ExtractTranslator, extract_router
from engram.api.memos.knowledge import (
    FILE_ROUTE,
    FORM_MEDIA_TYPE,
    KnowledgeTranslator,
    form_body,
    knowledge_router,
)
from engram.api.memos.models import ErrorEnvelope
from engram.api.memos.profiles import ProfileTranslator, profiles_router
from engram.api.memos.rerank import RerankTranslator, rerank_router
from engram.api.memos.routes import memories_router, messages_router, search_router, tasks_router
from engram.api.memos.translate import MemosTranslator
from engram.api.memos.webhooks import webhooks_router
from engram.api.openapi import SECURITY, SECURITY_SCHEMES
from engram.api.params import body_size
from engram.api.resolver import RequestScopedRestResolver
from engram.container import Services
from engram.errors import EngramError, PayloadTooLarge, ServiceUnavailable

log = logging.getLogger(__name__)
PREFIX = "/v1"
EVEROS_PREFIX = "/api/v1"  # the EverOS routes
EVEROS_V2_PREFIX = "/api/v2"  # EverOS's v2 routes (its cloud SDK and MCP server)
# answer errors in MMS's format, as EverOS does
MMS_PATHS = (f"{EVEROS_PREFIX}/object/", f"{EVEROS_V2_PREFIX}/object/")
MMS_VALIDATION_ERROR = 2018
# mem0's routes (its client reads `detail` from an error); /v2 and /v3 are mem0's only
MEM0_PATHS = ("/v1/ping", "/v1/memories", "/v1/event", "/v1/entities", "/v1/batch",
              "/v1/feedback", "/v1/exports", "/v2/", "/v3/", "/api/v1/webhooks/")
DESCRIPTION = ("Memory layer with the MemOS cloud API shapes (/v1), the EverOS API "
               "shapes (/api/v1 and /api/v2) and mem0's platform API (/v1/ping/, "
               "/v1/memories/…, /v2/entities/…, /v3/memories/…, /api/v1/webhooks/…).\n\n{ERRORS}")


def error_response(status: int, message: str, path: str = "", request_id: str = "",
                   headers: dict[str, str] | None = None) -> Response:
    # What a client sent may be echoed: a lone surrogate in it would fail serialisation.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    # A 401 is the envelope on every path: the authorizer (or `engram serve`) answers it
    # in that form before any route runs.
    if path.startswith(MMS_PATHS) and status != 401:
        from engram.api.everos.models import ObjectSignResponse, ObjectSignResult

        body = ObjectSignResponse(
            status=MMS_VALIDATION_ERROR if status in (400, 413, 422) else status,
            error=message, request_id=request_id, result=ObjectSignResult(data=message))
        return Response(status_code=400 if status == 422 else status,
                        content_type=content_types.APPLICATION_JSON,
                        body=body.model_dump_json(), headers=headers)
    if path.startswith(MEM0_PATHS):
        from engram.api.mem0.models import Mem0Error

        return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                        body=Mem0Error(detail=message, code=status,
                                       message=message).model_dump_json(), headers=headers)
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=ErrorEnvelope(code=status, message=message).model_dump_json(),
                    headers=headers)


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


GENERIC_422 = "#/components/schemas/HTTPValidationError"
GENERIC_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


class EngramResolver(RequestScopedRestResolver):
    """The resolver, with a document that declares only what Engram sends: Powertools adds
    its generic 422 (`{"detail": [...]}`) to every validated route; a route that declares
    its own 422 replaces it, and object/sign, which answers 400 instead, drops it.

    Routes may be included on first use (`include_on_first_use`): before the first
    request under their paths and before the first OpenAPI document, so both see every
    route."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._later: Callable[[], None] | None = None
        self._later_paths: tuple[str, ...] = ()
        self._later_lock = threading.Lock()  # `engram serve` resolves requests at once

    def include_on_first_use(self, paths: tuple[str, ...], include: Callable[[], None]) -> None:
        """`include()` adds routes whose paths all start with one of `paths` (after every
        route added so far), and no other route serves a path under them."""
        self._later, self._later_paths = include, paths

    def include_now(self) -> None:
        if self._later is None:
            return
        with self._later_lock:
            if self._later is not None:
                self._later()
                self._later = None

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        if self._later is not None:
            raw = event.raw_event if isinstance(event, BaseProxyEvent) else event
            if self._to_proxy_event(raw).path.startswith(self._later_paths):
                self.include_now()
        return super().resolve(event, context)

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        self.include_now()
        schema = super().get_openapi_schema(**kwargs)
        for item in schema.paths.values():
            for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                operation = getattr(item, method)
                answers = operation.responses if operation is not None else None
                if answers and GENERIC_422 in _json(answers.get(422)):
                    del answers[422]
        _declare_form_upload(schema)
        used = _json(schema.paths)
        for name in GENERIC_SCHEMAS:
            if schema.components and schema.components.schemas \
                    and f"/{name}\"" not in used:
                schema.components.schemas.pop(name, None)
        return schema


def _declare_form_upload(schema: Any) -> None:
    """add/knowledgebase-file also takes multipart/form-data (files in `file` parts, the
    knowledge base in the query string): declared beside its JSON body."""
    item = schema.paths.get(f"{PREFIX}{FILE_ROUTE}")
    operation = item.post if item is not None else None
    if operation is None or operation.requestBody is None:
        return
    operation.requestBody.content[FORM_MEDIA_TYPE] = MediaType.model_validate({"schema": {
        "type": "object", "required": ["file"], "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"},
                     "description": "the files (1-20), each a part named `file`"}}}})
    operation.parameters = [*(operation.parameters or []), Parameter.model_validate({
        "name": "knowledgebase_id", "in": "query", "required": False,
        "description": "With a multipart/form-data body: the knowledge base (required then)",
        "schema": {"type": "string"}})]


def _json(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.model_dump(mode="json", by_alias=True))


def memos_translator(services: Services) -> MemosTranslator:
    """The /v1 routes' translator; the MCP tools served by `engram serve` call the same."""
    return MemosTranslator(ingest=services.ingest, search_service=services.search,
                           memories=services.memories, tasks=services.tasks,
                           knowledge=services.knowledge,
                           profile_details=ProfileTranslator(services.profiles).details)


def create_app(services: Services) -> EngramResolver:
    """The resolver over the core services: each dialect's routes talk to its translator,
    and every translator to the same services."""
    limits = services.ingest.limits
    profiles = ProfileTranslator(services.profiles)
    memos = memos_translator(services)
    everos_body_limit = limits.max_everos_body_bytes

    def precheck(event: BaseProxyEvent) -> None:
        """Before the body is read: its size (EverOS's limit first, as EverOS does) and
        its Content-Type."""
        size = body_size(event.body)
        if event.path.startswith((EVEROS_PREFIX, EVEROS_V2_PREFIX)) \
                and size > everos_body_limit:
            raise PayloadTooLarge(
                f"request body is {size} bytes; the limit for EverOS routes (/api/v1, "
                f"/api/v2) is {everos_body_limit} bytes ({everos_body_limit // 1024} KB)")
        check_content_type(event.headers.get("content-type"))

    app = EngramResolver(enable_validation=True, json_body_deserializer=parse_json_object)
    # Powertools' validation middleware runs first; this one checks before it reads the body.
    app._request_validation_middleware = JsonBodyValidation(precheck, form_body)
    for router in (messages_router(memos), tasks_router(memos), search_router(memos),
                   memories_router(memos), knowledge_router(KnowledgeTranslator(
                       services.knowledge)), profiles_router(profiles),
                   extract_router(ExtractTranslator(services.extraction)),
                   rerank_router(RerankTranslator(services.rerank)),
                   chat_router(ChatTranslator(memos, services.chat)),
                   webhooks_router(services),
                   exports_router(ExportTranslator(services.exports))):
        app.include_router(router, prefix=PREFIX)

    def everos_and_mem0() -> None:
        from engram.api.dialects import include_everos_and_mem0

        include_everos_and_mem0(app, services, EVEROS_PREFIX, EVEROS_V2_PREFIX)

    # Their models and routes are about half of the API's: a MemOS request's cold start
    # imports none of them (tests/unit/test_coldstart.py).
    app.include_on_first_use((*MEM0_PATHS, EVEROS_PREFIX, EVEROS_V2_PREFIX), everos_and_mem0)
    app.configure_openapi(title="Engram", version=__version__, description=DESCRIPTION,
                          security_schemes=SECURITY_SCHEMES, security=SECURITY)
    app.enable_swagger(path=f"{PREFIX}/docs", title="Engram", version=__version__)

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi_document():  # no annotation: Response is not a schema type
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON,
                        body=app.get_openapi_json_schema())

    def failed(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        event = app.current_event
        return error_response(status, message, event.path,
                              event.request_context.request_id or "", headers)

    @app.exception_handler(RequestValidationError)
    def invalid_request(error: RequestValidationError) -> Response:
        return failed(*describe_validation_errors(error.errors()))

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported_content_type(_: RequestUnsupportedContentType) -> Response:
        # precheck refuses these first; kept so a Powertools change cannot make them 500s
        return failed(415, f"send the body as {content_types.APPLICATION_JSON}")

    @app.exception_handler(EngramError)
    def engram_error(error: EngramError) -> Response:
        if isinstance(error, ServiceUnavailable):  # e.g. the memory index is waking up
            return failed(503, error.message,
                          {"Retry-After": str(error.retry_after_seconds)})
        return failed(error.status_code, error.message)

    @app.not_found
    def not_found(_: Exception) -> Response:
        event = app.current_event
        allowed = allowed_methods(app, event.path)
        if allowed:
            return failed(405, f"method {event.http_method} is not allowed on {event.path} "
                               f"(allowed: {', '.join(allowed)})", {"Allow": ", ".join(allowed)})
        return failed(404, f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return failed(500, f"internal error ({type(error).__name__})")

    return app

