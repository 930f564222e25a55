"""The pure parts of the OpenSearch adapter: FilterNode → query DSL, score conversion,
document ids and the index body. The DSL is also checked against FilterNode.matches on
real documents, evaluated in-process by the fake server's query engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.fakes.opensearch_server import FakeOpenSearch

from engram.adapters.opensearch_index import (
    compile_filter_dsl,
    cosine_from_score,
    document_id,
    index_body,
    info_pair,
    memory_document,
)
from engram.models.domain import Memory, MemoryType
from engram.models.filters import Condition, FilterError, FilterNode, compile_filter

T0 = 1_750_000_000_000


def test_conditions_compile_to_term_terms_and_range():
    node = compile_filter({
        "agent_id": "a1", "app_id": {"in": ["x", "y"]}, "tags": {"contains": "travel"},
        "create_time": {"gte": T0}, "update_time": {"lt": T0 + 1},
        "scene": "chat", "info.biz_id": {"in": ["1", "2"]},
    })
    assert compile_filter_dsl(node)["bool"]["filter"] == [
        {"term": {"agent_id": "a1"}},
        {"terms": {"app_id": ["x", "y"]}},
        {"term": {"tags": "travel"}},
        {"range": {"create_time": {"gte": T0}}},
        {"range": {"update_time": {"lt": T0 + 1}}},
        {"term": {"info_pairs": '["scene","chat"]'}},
        {"terms": {"info_pairs": ['["biz_id","1"]', '["biz_id","2"]']}},
    ]


def test_or_needs_one_branch_and_nests():
    node = compile_filter({"memory_type": "UserMemory",
                           "or": [{"app_id": "x"}, {"and": [{"agent_id": "a"}, {"tags": "t"}]}]})
    assert compile_filter_dsl(node) == {"bool": {
        "filter": [{"term": {"memory_type": "UserMemory"}}],
        "should": [
            {"bool": {"filter": [{"term": {"app_id": "x"}}]}},
            {"bool": {"filter": [{"bool": {"filter": [{"term": {"agent_id": "a"}}]}},
                                 {"bool": {"filter": [{"term": {"tags": "t"}}]}}]}},
        ],
        "minimum_should_match": 1,
    }}


def test_an_empty_filter_matches_everything():
    assert compile_filter_dsl(FilterNode()) == {"bool": {}}


@pytest.mark.parametrize("condition, named", [
    (Condition(field="agent_id", op="contains", value="a"), "agent_id"),
    (Condition(field="info.scene", op="gt", value="a"), "info.scene"),
    (Condition(field="status", op="eq", value="activated"), "status"),
])
def test_conditions_the_index_cannot_answer_are_refused_by_name(condition, named):
    with pytest.raises(FilterError, match=named):
        compile_filter_dsl(FilterNode(all_of=[condition]))


def test_info_pairs_are_unambiguous():
    assert info_pair("a=b", "c") != info_pair("a", "b=c")
    assert json.loads(info_pair("场景", "聊天")) == ["场景", "聊天"]


@pytest.mark.parametrize("cosine", [-1.0, -0.4, 0.0, 0.3, 1.0])
def test_knn_scores_convert_back_to_the_cosine(cosine):
    assert cosine_from_score((1 + cosine) / 2, "cosinesimil") == pytest.approx(cosine)
    faiss_inner_product = 1 + cosine if cosine >= 0 else 1 / (1 - cosine)
    assert cosine_from_score(faiss_inner_product, "innerproduct") == pytest.approx(cosine)


def test_document_ids_split_at_the_first_colon():
    assert document_id("t1", "m-1") == "t1:m-1"
    assert document_id("a:b", "c") != document_id("a", "b:c")


def test_the_index_body_maps_a_faiss_knn_vector_and_keyword_scopes():
    body = index_body(1024)
    assert body["settings"]["index"]["knn"] is True
    properties = body["mappings"]["properties"]
    assert properties["vector"] == {
        "type": "knn_vector", "dimension": 1024,
        "method": {"name": "hnsw", "engine": "faiss", "space_type": "cosinesimil",
                   "parameters": {"m": 16, "ef_construction": 128}}}
    for name in ("tenant_id", "user_id", "memory_id", "memory_type", "agent_id", "app_id",
                 "conversation_id", "tags", "info_pairs"):
        assert properties[name] == {"type": "keyword"}
    assert properties["text"]["analyzer"] in body["settings"]["analysis"]["analyzer"]
    assert body["mappings"]["dynamic"] == "strict"


def memories() -> list[Memory]:
    kinds = [MemoryType.long_term, MemoryType.user, MemoryType.preference]
    return [
        Memory(id=f"m{i}", tenant_id="t", user_id="u", memory_type=kinds[i % 3],
               memory_key=f"m{i}",
               memory_value="v", create_time=T0 + i, update_time=T0 + 2 * i,
               agent_id=["a1", "a2", None][i % 3], app_id="x" if i % 2 else None,
               conversation_id=f"c{i % 2}",
               tags=[["travel"], ["food", "travel"], []][i % 3],
               info={"scene": ["chat", "work"][i % 2], **({"biz_id": str(i)} if i % 4 else {})})
        for i in range(12)
    ]


FILTERS = [
    {"agent_id": "a1"},
    {"app_id": {"in": ["x", "z"]}},
    {"tags": {"contains": "travel"}},
    {"tags": "food"},
    {"create_time": {"gt": T0 + 3}},
    {"update_time": {"lte": T0 + 8}},
    {"create_time": {"eq": T0 + 5}},
    {"scene": "chat"},
    {"info.biz_id": {"in": ["1", "2", "3"]}},
    {"memory_type": "UserMemory", "conversation_id": "c1"},
    {"or": [{"agent_id": "a2"}, {"scene": "work", "tags": {"contains": "food"}}]},
    {"and": [{"or": [{"app_id": "x"}, {"biz_id": "4"}]}, {"create_time": {"lt": T0 + 10}}]},
]


@pytest.mark.parametrize("raw", FILTERS, ids=[json.dumps(f) for f in FILTERS])
def test_the_dsl_selects_what_filter_node_matches(raw):
    fake = FakeOpenSearch()  # its query engine, called in-process: no server needed
    fake.handle("PUT", "/m", json.dumps(index_body(4)).encode())
    lines = []
    vectors = np.eye(4, dtype=np.float32)
    for i, memory in enumerate(memories()):
        lines += [json.dumps({"index": {"_index": "m", "_id": memory.id}}),
                  json.dumps(memory_document(memory, vectors[i % 4]))]
    status, _ = fake.handle("POST", "/_bulk", ("\n".join(lines) + "\n").encode())
    assert status == 200

    node = compile_filter(raw)
    body = {"size": 100, "query": {"bool": {"filter": [compile_filter_dsl(node)]}}}
    status, found = fake.handle("POST", "/m/_search", json.dumps(body).encode())

    assert status == 200
    expected = {m.id for m in memories() if node.matches(m)}
    assert expected, "a filter that matches nothing proves little"
    assert {hit["_source"]["memory_id"] for hit in found["hits"]["hits"]} == expected
