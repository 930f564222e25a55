import pytest

from engram.models.domain import Memory, MemoryType
from engram.models.filters import FilterError, compile_filter, split_sources


def memory(**kw) -> Memory:
    base = dict(tenant_id="t", user_id="u", memory_type=MemoryType.user, memory_key="k",
                memory_value="v", create_time=1_750_000_000_000)
    return Memory(**{**base, **kw})


def test_and_of_agent_tags_time_and_info():
    node = compile_filter({"and": [
        {"agent_id": "a1"}, {"tags": {"contains": "travel"}},
        {"create_time": {"gte": "2025-01-01"}}, {"scene": "chat"}, {"info.biz_id": "42"},
    ]})
    hit = memory(agent_id="a1", tags=["travel"], info={"scene": "chat", "biz_id": "42"})
    assert node.matches(hit)
    assert not node.matches(hit.model_copy(update={"agent_id": "a2"}))
    assert not node.matches(hit.model_copy(update={"tags": ["food"]}))
    assert not node.matches(hit.model_copy(update={"create_time": 1_600_000_000_000}))
    assert not node.matches(hit.model_copy(update={"info": {"scene": "work", "biz_id": "42"}}))


def test_or_needs_one_branch():
    node = compile_filter({"or": [{"app_id": "x"}, {"memory_type": "PreferenceMemory"}]})
    assert node.matches(memory(app_id="x"))
    assert node.matches(memory(memory_type=MemoryType.preference))
    assert not node.matches(memory(app_id="y"))


def test_time_bounds_are_exclusive_or_inclusive():
    at = 1_750_000_000_000
    assert compile_filter({"create_time": {"gt": at - 1}}).matches(memory(create_time=at))
    assert not compile_filter({"create_time": {"gt": at}}).matches(memory(create_time=at))
    assert compile_filter({"create_time": {"lte": at}}).matches(memory(create_time=at))


@pytest.mark.parametrize("raw, named", [
    ({"colour": "red"}, "colour"),
    ({"and": [{"agent_id": "a"}, {"owner": "x"}]}, "owner"),
    ({"create_time": {"after": "2025-01-01"}}, "after"),
    ({"create_time": {"gte": "yesterday"}}, "create_time"),
    ({"tags": {"equals": "x"}}, "tags"),
    ({"agent_id": 7}, "agent_id"),
])
def test_bad_filters_name_the_field(raw, named):
    with pytest.raises(FilterError, match=named):
        compile_filter(raw)


def test_per_source_form_splits_and_global_form_applies_everywhere():
    per_source = split_sources({"user": {"agent_id": "a"}, "public": {"app_id": "p"}})
    assert per_source["user"].matches(memory(agent_id="a"))
    assert per_source["knowledgebase"] is None
    both = split_sources({"agent_id": "a"})
    assert both["user"] is both["public"]
