"""A user's newest memories are read through an index, not by sorting all of them: the
profile shown with every search (services/profiles.py) reads them, and on a 10,000-memory
user a sort made that search 176 ms instead of 5 (measured when it was found)."""

from __future__ import annotations

import sqlite3

from engram.adapters.sqlite_store import SqliteStore
from engram.models.domain import Memory, MemoryType


def test_the_newest_first_read_uses_an_index_and_stops_at_its_limit(tmp_path):
    store = SqliteStore(tmp_path / "engram.db")
    store.put_many([Memory(tenant_id="t", user_id="u", memory_type=MemoryType.long_term,
                           memory_key=f"k{i}", memory_value=f"fact {i}", create_time=1000 + i)
                    for i in range(50)])
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    newest = store.page_active("t", "u", None, 5)
    store._db.set_trace_callback(None)
    assert [m.memory_value for m in newest] == [f"fact {i}" for i in range(49, 44, -1)]
    select = next(s for s in statements if s.lstrip().upper().startswith("SELECT"))
    plan = " ".join(str(row) for row in sqlite3.connect(tmp_path / "engram.db").execute(
        f"EXPLAIN QUERY PLAN {select}"))
    assert "memories_newest" in plan and "TEMP B-TREE" not in plan, plan
    store.close()
