"""What routes take from a request besides its body model: path and query ids (the body's
identifier rule), the Idempotency-Key header, and the EverOS body-size check."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import AfterValidator

from engram.errors import PayloadTooLarge
from engram.models.identifiers import ID_PATTERN, MAX_ID_LENGTH, plain_identifier

# An identifier in the path or the query string follows the body's identifier rule.
_ID = {"min_length": 1, "max_length": MAX_ID_LENGTH, "json_schema_extra": {"pattern": ID_PATTERN}}
PathId = Annotated[str, Path(**_ID), AfterValidator(plain_identifier)]
QueryId = Annotated[str, Query(**_ID), AfterValidator(plain_identifier)]

# An add sent again with the same Idempotency-Key within 24 h returns the first answer
# (its task) instead of adding twice.
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Send an add again with the same key within 24 h and get the first answer "
                "(its task) instead of a second add; visible ASCII, at most 255 characters")]


def check_body_size(router: Router, limit: int) -> None:
    """The EverOS routes' 300 KB request limit (files go through object/sign instead)."""
    size = body_size(router.current_event.body)
    if size > limit:
        raise PayloadTooLarge(
            f"request body is {size} bytes; the limit for EverOS routes is {limit} bytes "
            f"({limit // 1024} KB): upload files with POST /api/v1/object/sign and send their "
            "object keys")


def body_size(body: str | None) -> int:
    # surrogatepass: a lone surrogate is refused later, naming its field, not here
    return len(body.encode("utf-8", "surrogatepass")) if body else 0
