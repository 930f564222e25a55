"""What the OpenAPI document declares beyond the models: the API key schemes and, per
route, every status it can answer with the schema of that answer's body."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

from engram.api.guard import MAX_JSON_DEPTH
from engram.api.memos.models import ErrorEnvelope
from engram.models.times import RANGE

SECURITY_SCHEMES = {
    "Token": APIKey(name="Authorization", in_=APIKeyIn.header,
                    description="`Authorization: Token <api key>` (MemOS's form)"),
    "Bearer": HTTPBearer(description="`Authorization: Bearer <api key>`"),
}
SECURITY = [{"Token": []}, {"Bearer": []}]  # either one

ERRORS = (
    f"Errors answer `{{\"code\": <HTTP status>, \"message\": <what is wrong>, \"data\": null}}` "
    "(POST /api/v1/object/sign: EverOS's MMS format, `status` 2018 for a bad request). "
    "400: not UTF-8 or not JSON; 401: no or an unknown API key; 404: no such route, or an "
    "id not found; 405: a method the route does not take (with `Allow`); 409: a task not in "
    "a state for the request; 413: a body or item over its size limit; 415: a body not sent "
    "as application/json (a missing Content-Type is read as JSON); 422: a field that breaks "
    f"its rule, named (`messages.3.chat_time: ...`), a body that is not a JSON object or nests "
    f"deeper than {MAX_JSON_DEPTH}, a lone surrogate in any string, a control character "
    f"(U+0000-U+001F, U+007F-U+009F) in an identifier, a time not {RANGE}; 503: the "
    "memory index is waking up (on AWS; retry after `Retry-After` seconds).")

WHY = {
    400: "The body is not UTF-8 or not valid JSON (or a request the route cannot serve)",
    401: "No API key, or one Engram does not know",
    403: "An object key of another tenant, or not an upload key",
    404: "Not found (the id is named in `message`)",
    409: "The task is not in a state this request needs",
    413: "The body, or an item in it, is over its size limit (named in `message`)",
    415: "The body is not sent as application/json",
    422: "A field breaks its rule (each is named in `message`, e.g. `messages.0.role: ...`)",
    501: "This deployment does not serve the feature (named in `message`)",
    502: "The LLM endpoint refused the request (its reason in `message`)",
    503: "A service the request needs is not answering yet: the memory index (on AWS, an "
         "OpenSearch Serverless collection that scaled to zero takes 10-30 s to come back) "
         "or the LLM (timed out, down, throttled past the retries); retry after "
         "`Retry-After` seconds",
}
BODY = (400, 401, 413, 415, 422)  # any route that reads a JSON body
PARAMS = (401, 422)  # a GET route with path or query parameters
INDEX = 503  # a route that reads or writes the memory index


def _answer(status: int, model: type) -> dict[str, Any]:
    return {"description": WHY[status], "content": {"application/json": {"model": model}}}


def responses(*errors: int, accepted: type | None = None) -> dict[int, Any]:
    """200 with the route's return type, `accepted` as a 202 (an add still running), and
    each error status with the error envelope."""
    out: dict[int, Any] = {200: {"description": "Success"}}  # the route's return type
    if accepted is not None:
        out[202] = {"description": "Accepted: the add runs on; follow its task",
                    "content": {"application/json": {"model": accepted}}}
    out.update({status: _answer(status, ErrorEnvelope) for status in sorted(set(errors))})
    return out


def mms_responses(*errors: int) -> dict[int, Any]:
    """object/sign: errors in MMS's format, a 422 answered as a 400 (status 2018) as EverOS
    does; the 401 stays the envelope (the authorizer sends it before the route runs)."""
    from engram.api.everos.models import ObjectSignResponse  # EverOS's routes only

    out = responses(401)
    for status in sorted({400 if status == 422 else status for status in errors} - {401}):
        out[status] = _answer(status, ObjectSignResponse)
    if 422 in errors:
        out[400]["description"] += "; or a field breaks its rule (named in `error`)"
    return out


def mem0_responses(*errors: int) -> dict[int, Any]:
    """The mem0 routes: errors carry mem0's `detail` beside the envelope's fields."""
    from engram.api.mem0.models import Mem0Error

    out: dict[int, Any] = {200: {"description": "Success"}}
    out.update({status: _answer(status, Mem0Error) for status in sorted(set(errors))})
    return out
