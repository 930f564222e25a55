"""Engram's events on an EventBridge bus (the one template.yaml creates): source
`engram`, detail-type the event type (`task.completed`, `memory.added`, …), detail the
event with its tenant, so a rule can route by type and tenant."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

SOURCE = "engram"
BATCH = 10  # PutEvents takes at most 10 entries per call


class EventBridgeBus:
    """Implements EventBus."""

    def __init__(self, client: Any, bus_name: str):
        self.client = client
        self.bus_name = bus_name

    def put(self, events: Sequence[dict]) -> None:
        entries = [{"Source": SOURCE, "DetailType": e["type"], "EventBusName": self.bus_name,
                    "Detail": json.dumps({"id": e["id"], "tenant_id": e["tenant_id"],
                                          "time": e["time"], **e["data"]})}
                   for e in events]
        for start in range(0, len(entries), BATCH):
            answer = self.client.put_events(Entries=entries[start:start + BATCH])
            if answer.get("FailedEntryCount"):
                failed = [e for e in answer.get("Entries", []) if e.get("ErrorCode")]
                raise RuntimeError(f"EventBridge refused {len(failed)} events: "
                                   f"{failed[0].get('ErrorCode')} {failed[0].get('ErrorMessage')}")
