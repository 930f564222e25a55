"""Turning the time formats clients send into UTC epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

# Every time a request gives must fall in [1970-01-01, 2100-01-01]: anything outside is a
# client bug (seconds sent as microseconds, a sentinel like 1e300), and a later
# datetime conversion would overflow inside the task instead of failing the request.
MIN_EPOCH_MS = 0
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
SECONDS_BELOW = 10_000_000_000  # a number below this is epoch seconds, above it ms
RANGE = "between 1970-01-01 and 2100-01-01"


def in_range(ms: int, field: str, shown: Any) -> int:
    if not MIN_EPOCH_MS <= ms <= MAX_EPOCH_MS:
        raise ValueError(f"'{field}' {shown!r} is not {RANGE}")
    return ms


def to_epoch_ms(value: Any, field: str) -> int:
    """Epoch ms from an int (ms, or seconds when small) or a date/datetime string
    ("2025-09-12", "2025-09-12 08:00:00", ISO 8601). Naive times are taken as UTC.
    Anything outside 1970-01-01 .. 2100-01-01 is refused."""
    if isinstance(value, bool):
        raise ValueError(f"'{field}' must be a date, a datetime or epoch milliseconds")
    if isinstance(value, (int, float)):
        ms = value * 1000 if value < SECONDS_BELOW else value
        # compared before int(): -1e308 * 1000 is -inf, and NaN compares false
        if not MIN_EPOCH_MS <= ms <= MAX_EPOCH_MS:
            raise ValueError(f"'{field}' {value!r} is not {RANGE}")
        return int(ms)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"'{field}': '{value}' is not a date (use YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' "
                "or ISO 8601)"
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            ms = int(parsed.timestamp() * 1000)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"'{field}' {value!r} is not {RANGE}") from None
        return in_range(ms, field, value)
    raise ValueError(f"'{field}' must be a date, a datetime or epoch milliseconds")


# The JSON schema of a time a client may send as a date string, epoch seconds or epoch ms.
CLIENT_TIME_SCHEMA = {"anyOf": [
    {"type": "string"}, {"type": "null"},
    {"type": "number", "minimum": 0, "maximum": MAX_EPOCH_MS // 1000},  # seconds
    {"type": "number", "minimum": SECONDS_BELOW, "maximum": MAX_EPOCH_MS}]}
CLIENT_TIME = "an ISO 8601 date or datetime, epoch seconds (below 1e10) or epoch milliseconds"

# search's Engram extensions (both APIs): what they mean, for the OpenAPI document.
REFERENCE_TIME_HELP = (
    "Engram extension. When the question is asked (default: now, or `as_of` when given): "
    "dates the query names ('yesterday', 'last Saturday', 'two weeks ago', 'in May', "
    "'last year', '上周', '昨天') are counted from it, and memories whose event time (the "
    "`chat_time` they were said at, or the date they name) falls in that period rank "
    f"higher. A boost, not a filter. {CLIENT_TIME[0].upper() + CLIENT_TIME[1:]}; {RANGE}")
AS_OF_HELP = (
    "Engram extension. Search memory as it stood at this time: a memory that was changed "
    "since answers with the value it held then (from its history), one first said after "
    f"it is left out. {CLIENT_TIME[0].upper() + CLIENT_TIME[1:]}; {RANGE}")


def _epoch_ms(value: int) -> int:
    return in_range(value, "timestamp", value)


# Epoch milliseconds in the accepted range (EverOS `timestamp`), with the range in the schema.
EpochMs = Annotated[int, Field(json_schema_extra={"minimum": MIN_EPOCH_MS,
                                                  "maximum": MAX_EPOCH_MS}),
                    AfterValidator(_epoch_ms)]
