"""Turning the time formats clients send into UTC epoch milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_epoch_ms(value: Any, field: str) -> int:
    """Epoch ms from an int (ms, or seconds when small) or a date/datetime string
    ("2025-09-12", "2025-09-12 08:00:00", ISO 8601). Naive times are taken as UTC."""
    if isinstance(value, bool):
        raise ValueError(f"'{field}' must be a date, a datetime or epoch milliseconds")
    if isinstance(value, (int, float)):
        return int(value * 1000) if value < 10_000_000_000 else int(value)
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
        return int(parsed.timestamp() * 1000)
    raise ValueError(f"'{field}' must be a date, a datetime or epoch milliseconds")
