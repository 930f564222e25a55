"""mem0's filters DSL (api/mem0/filters.py): which partitions a filter names, and what
each operator admits, on real Memory records."""

from __future__ import annotations

import json

import pytest

from engram.api.mem0.filters import METADATA_KEY, compile_filters, partitions
from engram.errors import Unprocessable
from engram.models.domain import Memory, MemoryType


def memory(**kw) -> Memory:
    meta = kw.pop("metadata", None)
    base = dict(tenant_id="t", user_id="alice", memory_type=MemoryType.user,
                memory_key="k", memory_value="v", create_time=1_767_225_600_000)  # 2026-01-01
    base.update(kw)
    if meta is not None:
        base["info"] = {METADATA_KEY: json.dumps(meta)}
    return Memory(**base)


def test_partitions_come_from_the_entities():
    assert partitions({"user_id": "alice"}) == ["alice"]
    assert partitions({"AND": [{"user_id": {"in": ["a", "b"]}}, {"agent_id": "x"}]}) == ["a", "b"]
    assert partitions({"agent_id": "bot"}) == ["agent:bot"]
    assert partitions({"run_id": {"eq": "r1"}}) == ["run:r1"]
    for bad in (None, {}, {"metadata": {"a": 1}}, {"OR": [{"user_id": "a"}, {"user_id": "b"}]}):
        with pytest.raises(Unprocessable, match="name user_id"):
            partitions(bad)


def test_operators():
    m = memory(agent_id="bot", conversation_id="r1", tags=["food", "travel"],
               metadata={"topic": "Food", "rank": 3})
    admits = [
        {"agent_id": "bot"}, {"agent_id": {"ne": "other"}}, {"run_id": {"in": ["r0", "r1"]}},
        {"categories": {"contains": "food"}}, {"categories": {"in": ["travel", "x"]}},
        {"metadata": {"topic": "Food"}}, {"metadata": {"topic": {"icontains": "foo"}}},
        {"metadata": {"rank": {"gte": 3, "lt": 4}}}, {"created_at": {"gte": "2025-12-31"}},
        {"created_at": {"lte": "2026-01-02T00:00:00Z"}}, {"agent_id": "*"},
        {"OR": [{"agent_id": "x"}, {"app_id": {"ne": "y"}}]}, {"NOT": [{"agent_id": "x"}]},
        {"AND": [{"user_id": "alice"}, {"NOT": {"categories": {"contains": "work"}}}]},
    ]
    refuses = [
        {"agent_id": "x"}, {"agent_id": {"ne": "bot"}},
        {"metadata": {"topic": {"contains": "foo"}}},
        {"metadata": {"rank": {"gt": 3}}}, {"created_at": {"gt": "2026-01-02"}},
        {"NOT": [{"agent_id": "bot"}]}, {"app_id": "*"}, {"metadata": {"missing": "x"}},
        {"OR": [{"agent_id": "x"}, {"run_id": "r2"}]},
    ]
    for f in admits:
        assert compile_filters(f)(m), f
    for f in refuses:
        assert not compile_filters(f)(m), f


@pytest.mark.parametrize("bad, named", [
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"agent_id": {"like": "x"}}, "unknown operator 'like'"),
    ({"AND": "x"}, "filters.AND"),
    ({"created_at": {"gte": "not a date"}}, "created_at"),
    ({"metadata": "x"}, "filters.metadata"),
    ({"run_id": {"in": "r1"}}, "filters.run_id.in"),
])
def test_bad_filters_name_the_field(bad, named):
    with pytest.raises(Unprocessable, match=named.replace("(", r"\(")):
        compile_filters(bad)
