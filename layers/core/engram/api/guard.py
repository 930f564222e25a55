"""What a request must be before Powertools parses and validates it, so that hostile input
is a 4xx naming the problem, never a 500: on Lambda and behind `engram serve` alike.

- A body is `application/json` (or has no Content-Type: curl users and some MemOS
  examples omit it); anything else is a 415. Form and multipart bodies, which Powertools
  would otherwise parse, are refused too, except a multipart/form-data upload to
  add/knowledgebase-file (MemOS's client sends files so), which python-multipart reads
  into the JSON body it stands for (api/memos/knowledge.py).
- It is UTF-8 (400), valid JSON (400; NaN / Infinity are not JSON), nested at most
  MAX_JSON_DEPTH deep (422, found by an iterative scan of the raw text before anything
  parses it recursively), a JSON object at the top (422), and holds no lone surrogate in
  any string or key (422 naming where: a lone surrogate cannot be stored or serialised as
  UTF-8, and replacing it would silently change what the client sent).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from engram.errors import BadRequest, EngramError, Unprocessable

MAX_JSON_DEPTH = 64
JSON_MEDIA_TYPE = "application/json"
# A JSON string (escapes included) or one bracket: strings are skipped whole, so brackets
# inside them do not count. The unrolled form keeps long strings at regex-engine speed.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class UnsupportedMediaType(EngramError):
    status_code = 415


def check_content_type(header: str | None) -> None:
    media = (header or "").split(";", 1)[0].strip().lower()
    if media and media != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"Content-Type {media!r} is not supported: send the body as {JSON_MEDIA_TYPE}")


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when brackets outside strings nest deeper than `limit` (no recursion)."""
    depth = 0
    for token in _TOKENS.finditer(text):
        first = text[token.start()]
        if first in "[{":
            depth += 1
            if depth > limit:
                return True
        elif first in "]}":
            depth -= 1
    return False


def _not_json(constant: str) -> Any:
    raise BadRequest(f"request body is not valid JSON: {constant} is not a JSON value")


def parse_json_object(text: str) -> dict[str, Any]:
    """The resolver's JSON body deserializer: every rule above, or an EngramError."""
    if too_deep(text):
        raise Unprocessable(f"request body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise Unprocessable(f"request body holds a number Engram cannot read ({exc})") from None
    if not isinstance(body, dict):
        raise Unprocessable(f"request body must be a JSON object, not {_json_kind(body)}")
    if _SURROGATE_ESCAPE.search(text) or not _encodes(text):  # else no string can hold one
        _refuse_lone_surrogates(body)
    return body


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a raw surrogate
        return False
    return True


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _refuse_lone_surrogates(body: dict[str, Any]) -> None:
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            found = _SURROGATE.search(node)
            if found:
                raise Unprocessable(
                    f"{path or 'body'}: lone surrogate U+{ord(found.group()):04X} at position "
                    f"{found.start()} is not valid Unicode (send UTF-8 text; escape characters "
                    "outside the BMP as a surrogate pair)")
        elif isinstance(node, dict):
            for key, value in node.items():
                if _SURROGATE.search(key):
                    raise Unprocessable(f"{path or 'body'}: a key holds a lone surrogate, "
                                        "which is not valid Unicode")
                stack.append((f"{path}.{key}" if path else key, value))
        elif isinstance(node, list):
            stack.extend((f"{path}.{i}", value) for i, value in enumerate(node))


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, reading the body our way: `precheck` (size,
    Content-Type) and the body's decoding first, then the resolver's JSON deserializer.
    Replaces the resolver's own instance, which always runs first in the middleware chain
    (a middleware added with `use` would run after the body was parsed)."""

    def __init__(self, precheck: Callable[[BaseProxyEvent], None],
                 form_body: Callable[[BaseProxyEvent], dict[str, Any] | None] | None = None):
        super().__init__()
        self._precheck = precheck
        # The one route that also takes a form (add/knowledgebase-file, as MemOS's client
        # uploads files): its multipart body → the JSON body it stands for, else None.
        self._form_body = form_body

    def _get_body(self, app: Any) -> dict[str, Any]:
        event: BaseProxyEvent = app.current_event
        if self._form_body is not None:
            form = self._form_body(event)
            if form is not None:
                return form
        self._precheck(event)
        try:
            event.decoded_body  # noqa: B018  (base64 and UTF-8 decoding, cached)
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest("request body is not UTF-8 (or not valid base64)") from None
        # JSON or no Content-Type, as precheck made sure (in any letter case, which
        # Powertools' own check would refuse): read by parse_json_object.
        return event.json_body


def allowed_methods(app: Any, path: str) -> list[str]:
    """The methods the resolver has a route for at `path` (for 405's Allow)."""
    routes = app._static_routes + app._dynamic_routes  # Powertools keeps no public list
    return sorted({route.method for route in routes if route.rule.match(path)})
