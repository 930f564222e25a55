"""Identifiers a client chooses (user_id, conversation_id, message_id, task_id, ...).

1-256 characters and no control characters: C0 (U+0000-U+001F, NUL among them), DEL and
C1 (U+007F-U+009F). They become key parts, file-path segments and log fields, where a NUL
or a newline would truncate or forge them; refusing is safer than stripping, which would
make two ids collide. Lone surrogates are refused in every string before this
(engram.api.body)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

MAX_ID_LENGTH = 256
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]+$"  # the same rule, for the OpenAPI document


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def plain_identifier(value: str) -> str:
    """`value` unchanged, or ValueError naming the first control character (or lone
    surrogate: one can reach here from a query string or a path, which are not JSON)."""
    found = CONTROL.search(value)
    if found:
        raise ValueError(f"must not contain control characters (found U+{ord(found.group()):04X} "
                         f"at position {found.start()})")
    found = _SURROGATE.search(value)
    if found:
        raise ValueError(f"holds a lone surrogate (U+{ord(found.group()):04X} at position "
                         f"{found.start()}), which is not valid Unicode")
    return value


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH,
                          json_schema_extra={"pattern": ID_PATTERN}),
               AfterValidator(plain_identifier)]

# Memories an agent owns (an add or search naming an agent_id and no user) live in the
# user partition "agent:<agent_id>", an EverOS group's in "group:<group_id>", and EverOS
# v2 scopes an app/project as "app:…/…/<owner>". A client's user_id may not start with
# any of these, or it would reach those partitions.
AGENT_OWNER = "agent:"
GROUP_OWNER = "group:"
APP_SCOPE = "app:"
RESERVED_USER_PREFIXES = (AGENT_OWNER, GROUP_OWNER, APP_SCOPE)


def agent_owner(agent_id: str) -> str:
    """The user partition of the memories `agent_id` owns."""
    return f"{AGENT_OWNER}{agent_id}"


def not_reserved(value: str) -> str:
    for prefix in RESERVED_USER_PREFIXES:
        if value.startswith(prefix):
            raise ValueError(f"must not start with {prefix!r}: that prefix names an agent's "
                             "or a group's own memories (send agent_id / group_id) or an "
                             "app scope")
    return value


UserId = Annotated[Id, AfterValidator(not_reserved)]
