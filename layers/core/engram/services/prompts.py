"""Every prompt Engram sends to an LLM, each with the pydantic schema its reply must follow.

The schema is sent as `response_format` (JSON schema) and the reply validated against it;
a reply that does not validate is sent back once with the validation error to repair.
"""

from __future__ import annotations

# --- extraction: messages → facts, preferences, tool memory ---------------------------


# --- conflict resolution: new candidates vs the nearest existing memories --------------
