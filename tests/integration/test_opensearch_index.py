"""OpenSearchMemoryIndex driven through the unmodified opensearch-py client against the
fake server on 127.0.0.1, which checks every request body against the k-NN query DSL.

The `scenario_*` functions are the adapter checks shared with test_opensearch_real.py:
each takes a `Backend` whose `eventually` retries an assertion until the index has
caught up (at once here; up to the refresh interval on a real cluster)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
import numpy as np
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.fakes.opensearch_server import FakeOpenSearch

from engram.adapters import opensearch_index
from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.opensearch_index import (
    OpenSearchMemoryIndex,
    index_body,
    opensearch_client,
)
from engram.errors import PermanentError, RetryableError
from engram.models.domain import Memory, MemoryStatus, MemoryType
from engram.models.filters import compile_filter

DIM = 16
ALL_TYPES = list(MemoryType)
T0 = 1_750_000_000_000


@dataclass
class Backend:
    client: OpenSearch
    index_name: str
    eventually: Callable[[Callable[[], None]], None]
    index_options: dict = field(default_factory=dict)

    def index(self, **options) -> OpenSearchMemoryIndex:
        index = OpenSearchMemoryIndex(self.client, self.index_name, DIM,
                                      **{**self.index_options, **options})
        index.ensure_index()
        return index


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def memory(text: str, tenant: str, user: str = "u1", **fields) -> Memory:
    fields.setdefault("memory_type", MemoryType.long_term)
    return Memory(tenant_id=tenant, user_id=user, memory_key=text, memory_value="", **fields)


def ids(hits) -> list[str]:
    return [hit.id for hit in hits]


# --- scenarios shared with the real run ---------------------------------------------
def scenario_hits_carry_both_scores_and_stay_inside_tenant_and_user(backend: Backend) -> None:
    index = backend.index()
    tenant, other_tenant = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    query = unit(0)
    mine = memory("hotel booking in paris", tenant)
    fillers = [memory(f"filler note {i}", tenant) for i in range(60)]
    keyword_only = memory("zanzibar itinerary", tenant)  # the worst cosine there is
    twins = [memory("hotel booking in paris", tenant, user="u2"),
             memory("hotel booking in paris", other_tenant)]
    rng = np.random.default_rng(1)
    index.upsert([mine, *fillers, keyword_only, *twins],
                 np.vstack([query, rng.standard_normal((60, DIM)), -query, query, query]))

    def check() -> None:
        hits = index.search(tenant, "u1", query, "zanzibar hotel", 1, ALL_TYPES)
        by_id = {h.id: h for h in hits}
        assert hits[0].id == mine.id and hits[0].dense == pytest.approx(1.0, abs=1e-3)
        assert by_id[mine.id].lexical > 0
        # found by BM25 alone, and still given its cosine by the second round
        assert by_id[keyword_only.id].dense == pytest.approx(-1.0, abs=1e-3)
        assert by_id[keyword_only.id].lexical > 0
        assert len(hits) == 51  # the top 50 by cosine (4k < 50) plus the keyword match
        assert {t.id for t in twins}.isdisjoint(by_id)
        assert [h.dense for h in hits] == sorted((h.dense for h in hits), reverse=True)
        other = index.search(other_tenant, "u1", query, "hotel", 5, ALL_TYPES)
        assert ids(other) == [twins[1].id]
        assert index.search(tenant, "nobody", query, "hotel", 5, ALL_TYPES) == []

    backend.eventually(check)


def scenario_filters_narrow_inside_the_search(backend: Backend) -> None:
    index = backend.index()
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    travel = memory("flight to lisbon", tenant, tags=["travel"], info={"scene": "chat"},
                    create_time=T0, agent_id="a1")
    food = memory("likes ramen", tenant, tags=["food"], info={"scene": "work"},
                  create_time=T0 + 10, memory_type=MemoryType.preference)
    late = memory("train to porto", tenant, tags=["travel"], info={"scene": "work"},
                  create_time=T0 + 20, agent_id="a2")
    index.upsert([travel, food, late], np.stack([unit(1), unit(2), unit(3)]))

    def found(raw: dict | None, types=ALL_TYPES) -> set[str]:
        where = compile_filter(raw) if raw is not None else None
        return set(ids(index.search(tenant, "u1", unit(9), "to", 5, types, where)))

    def check() -> None:
        assert found({"tags": {"contains": "travel"}}) == {travel.id, late.id}
        assert found({"scene": "work"}) == {food.id, late.id}
        assert found({"info.scene": {"in": ["chat"]}}) == {travel.id}
        assert found({"create_time": {"gte": T0 + 10}}) == {food.id, late.id}
        assert found({"create_time": {"lt": T0 + 10}}) == {travel.id}
        assert found({"or": [{"agent_id": "a1"}, {"tags": "food"}]}) == {travel.id, food.id}
        assert found(None, [MemoryType.preference]) == {food.id}
        assert found({"agent_id": "a1"}, [MemoryType.preference]) == set()

    backend.eventually(check)


def scenario_remove_and_upsert_again(backend: Backend) -> None:
    index = backend.index()
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    kept, dropped = memory("dentist on friday", tenant), memory("gym on monday", tenant)
    index.upsert([kept, dropped], np.stack([unit(1), unit(2)]))
    backend.eventually(lambda: assert_found(index, tenant, "dentist gym", {kept.id, dropped.id}))

    index.remove(tenant, [dropped.id])
    backend.eventually(lambda: assert_found(index, tenant, "dentist gym", {kept.id}))

    moved = kept.model_copy(update={"memory_key": "dentist moved to tuesday"})
    index.upsert([moved], np.stack([unit(3)]))

    def check_moved() -> None:
        hits = index.search(tenant, "u1", unit(3), "tuesday", 5, ALL_TYPES)
        assert ids(hits) == [kept.id]  # one document per memory, the new one
        assert hits[0].dense == pytest.approx(1.0, abs=1e-3) and hits[0].lexical > 0

    backend.eventually(check_moved)

    archived = moved.model_copy(update={"status": MemoryStatus.archived})
    index.upsert([archived], np.stack([unit(3)]))  # any status but activated leaves the index
    backend.eventually(lambda: assert_found(index, tenant, "dentist tuesday", set()))


def assert_found(index: OpenSearchMemoryIndex, tenant: str, text: str, expected: set[str]):
    assert set(ids(index.search(tenant, "u1", unit(0), text, 5, ALL_TYPES))) == expected


# --- against the fake ---------------------------------------------------------------
@pytest.fixture
def fake():
    with FakeOpenSearch(required_filter_fields=("tenant_id", "user_id")) as server:
        yield server


def client_for(fake: FakeOpenSearch) -> OpenSearch:
    return OpenSearch(hosts=[{"host": "127.0.0.1", "port": fake.port}])


@pytest.fixture
def backend(fake) -> Backend:
    return Backend(client_for(fake), "memories", eventually=lambda check: check())


def test_hits_carry_both_scores_and_stay_inside_tenant_and_user(backend):
    scenario_hits_carry_both_scores_and_stay_inside_tenant_and_user(backend)


def test_filters_narrow_inside_the_search(backend):
    scenario_filters_narrow_inside_the_search(backend)


def test_remove_and_upsert_again(backend):
    scenario_remove_and_upsert_again(backend)


def test_generated_ids_where_custom_ids_are_refused():
    """Serverless classic collections: documents are found by memory_id to be replaced."""
    with FakeOpenSearch(accept_custom_ids=False) as fake:
        backend = Backend(client_for(fake), "memories", eventually=lambda check: check(),
                          index_options={"use_custom_ids": False})
        scenario_remove_and_upsert_again(backend)
        assert fake.indices["memories"].docs == {}
        with pytest.raises(PermanentError, match="Document ID is not supported"):
            backend.index(use_custom_ids=True).upsert([memory("x", "t1")], np.stack([unit(1)]))


def test_the_knn_filter_sits_inside_the_knn_clause(backend, fake):
    index = backend.index()
    index.upsert([memory("hotel", "t1", agent_id="a1")], np.stack([unit(1)]))
    index.search("t1", "u1", unit(1), "hotel", 3, [MemoryType.long_term],
                 compile_filter({"agent_id": "a1"}))

    dense, lexical = fake.recorded("/memories/_msearch")[0].body[1::2]
    assert set(dense) == {"size", "_source", "query"}  # no post_filter
    knn = dense["query"]["knn"]["vector"]
    assert knn["k"] == 50 and len(knn["vector"]) == DIM
    assert knn["filter"]["bool"]["filter"] == [
        {"term": {"tenant_id": "t1"}}, {"term": {"user_id": "u1"}},
        {"terms": {"memory_type": ["LongTermMemory"]}},
        {"bool": {"filter": [{"term": {"agent_id": "a1"}}]}},
    ]
    assert lexical["query"]["bool"]["must"] == [{"match": {"text": "hotel"}}]
    assert lexical["query"]["bool"]["filter"] == knn["filter"]["bool"]["filter"]


def test_a_blank_query_text_searches_by_vector_alone(backend, fake):
    index = backend.index()
    index.upsert([memory("hotel", "t1")], np.stack([unit(1)]))
    hits = index.search("t1", "u1", unit(1), "  ", 3, ALL_TYPES)

    assert [(h.dense, h.lexical) for h in hits] == [(pytest.approx(1.0, abs=1e-6), 0.0)]
    assert len(fake.recorded("/_msearch")) == 1 and len(fake.recorded("/_msearch")[0].body) == 2


def test_ensure_index_creates_once_and_refuses_other_vectors(backend, fake):
    index = backend.index()
    index.ensure_index()

    (created,) = [r for r in fake.requests if r.method == "PUT"]
    assert created.body == index_body(DIM)
    with pytest.raises(ValueError, match="16-dimension cosinesimil vectors"):
        OpenSearchMemoryIndex(backend.client, "memories", 1024).ensure_index()
    with pytest.raises(ValueError, match="innerproduct"):
        OpenSearchMemoryIndex(backend.client, "memories", DIM,
                              space_type="innerproduct").ensure_index()


def test_ensure_index_survives_losing_a_creation_race(backend, monkeypatch):
    backend.client.indices.create(index="memories", body=index_body(DIM))
    monkeypatch.setattr(backend.client.indices, "exists", lambda index, **params: False)
    OpenSearchMemoryIndex(backend.client, "memories", DIM).ensure_index()


def test_inner_product_indexes_score_the_same_cosines(backend):
    index = backend.index(space_type="innerproduct")
    near, far = memory("near", "t1"), memory("far", "t1")
    index.upsert([near, far], np.stack([unit(1), -unit(1)]))
    hits = index.search("t1", "u1", unit(1), "", 3, ALL_TYPES)

    assert [(h.id, round(h.dense, 4)) for h in hits] == [(near.id, 1.0), (far.id, -1.0)]


@pytest.mark.parametrize("status", [429, 500])
def test_busy_or_failing_clusters_are_retryable(backend, fake, status, monkeypatch):
    monkeypatch.setattr(opensearch_index, "BULK_BACKOFF_SECONDS", 0)
    index = backend.index()
    fake.fail_next(status)
    with pytest.raises(RetryableError):
        index.search("t1", "u1", unit(1), "x", 3, ALL_TYPES)
    fake.fail_next(status, times=4)  # more than the bulk helper's own retries of a 429
    with pytest.raises(RetryableError):
        index.upsert([memory("x", "t1")], np.stack([unit(1)]))


def test_vectors_of_the_wrong_shape_are_refused_before_sending(backend):
    index = backend.index()
    with pytest.raises(ValueError, match="16 dimensions"):
        index.upsert([memory("x", "t1")], np.ones((1, 8)))


def test_a_memory_found_by_its_words_alone_has_no_vector(backend):
    """What the assistant said has a zero vector: its document carries none (k-NN refuses
    a zero vector under cosinesimil), the text search finds it, the k-NN search does not."""
    index = backend.index()
    said = memory("Speyer tourism board phone number", "t1")
    index.upsert([said, memory("lakes", "t1")], np.stack([np.zeros(DIM), unit(1)]))

    def check() -> None:
        hits = index.search("t1", "u1", unit(2), "Speyer tourism", 5, ALL_TYPES)
        assert [h.id for h in hits if h.lexical > 0] == [said.id]
        assert all(h.dense <= 0 for h in hits if h.id == said.id)
        nearest = index.nearest("t1", "u1", np.stack([unit(1)]), 5, ALL_TYPES)[0]
        assert said.id not in ids(nearest) and nearest

    backend.eventually(check)


@pytest.mark.parametrize("query, error", [
    ({"knn": {"vector": {"vector": [0.1] * DIM}}}, "k > 0"),
    ({"knn": {"vector": {"vector": [0.1] * 3, "k": 5}}}, "invalid dimension: 3"),
    ({"knn": {"vector": {"vector": [0.1] * DIM, "k": 5, "filters": {}}}}, "unknown token"),
    ({"bool": {"must": [{"knn": {"vector": {"vector": [0.1] * DIM, "k": 5}}}]}},
     "knn must be the whole query"),
    ({"bool": {"filter": [{"term": {"tenant": "t1"}}]}}, "unmapped field"),
    ({"knn": {"vector": {"vector": [0.1] * DIM, "k": 5,
                         "filter": {"term": {"tenant_id": "t1"}}}}}, "user_id"),
])
def test_the_fake_refuses_what_breaks_the_knn_dsl(backend, query, error):
    backend.index()
    with pytest.raises(RequestError, match=error):
        backend.client.search(index="memories", body={"query": query})


def test_the_fake_refuses_post_filters(backend):
    backend.index()
    body = {"query": {"knn": {"vector": {"vector": [0.1] * DIM, "k": 5}}},
            "post_filter": {"term": {"tenant_id": "t1"}}}
    with pytest.raises(RequestError, match="post_filter"):
        backend.client.search(index="memories", body=body)


def test_same_ids_in_the_same_order_as_the_local_index(backend):
    """One scenario, both MemoryIndex implementations: dense-dominant queries rank alike."""
    remote, local = backend.index(), LocalMemoryIndex(None)
    rng = np.random.default_rng(5)
    stored = [memory(f"note {i} about {['travel', 'food', 'work'][i % 3]}", "t1",
                     tags=[["travel"], ["food"], []][i % 3], create_time=T0 + i,
                     memory_type=[MemoryType.long_term, MemoryType.preference][i % 2])
              for i in range(20)]
    stored.append(memory("note about travel", "t1", user="u2"))
    vectors = rng.standard_normal((len(stored), DIM)).astype(np.float32)
    for index in (remote, local):
        index.upsert(stored, vectors)
    query = vectors[4] + 0.3 * rng.standard_normal(DIM).astype(np.float32)

    for types, raw in [(ALL_TYPES, None), ([MemoryType.long_term], None),
                       (ALL_TYPES, {"tags": {"contains": "travel"}}),
                       (ALL_TYPES, {"create_time": {"gte": T0 + 8}})]:
        where = compile_filter(raw) if raw else None
        expected = local.search("t1", "u1", query, "travel note", 3, types, where)
        actual = remote.search("t1", "u1", query, "travel note", 3, types, where)
        assert ids(actual) == ids(expected)
        assert [h.dense for h in actual] == pytest.approx([h.dense for h in expected], abs=1e-5)
        assert [h.lexical > 0 for h in actual] == [h.lexical > 0 for h in expected]
        for hit, twin in zip(actual, expected, strict=True):  # both return unit vectors
            assert hit.vector == pytest.approx(twin.vector, abs=1e-5)
    queries = vectors[:6] + 0.3 * rng.standard_normal((6, DIM)).astype(np.float32)
    for types in (ALL_TYPES, [MemoryType.preference]):
        expected = local.nearest("t1", "u1", queries, 4, types)
        actual = remote.nearest("t1", "u1", queries, 4, types)
        assert [ids(hits) for hits in actual] == [ids(hits) for hits in expected]
        assert [h.dense for hits in actual for h in hits] == pytest.approx(
            [h.dense for hits in expected for h in hits], abs=1e-5)
    local.close()


def test_opensearch_client_signs_for_the_service(aws_credentials):  # noqa: F811
    client = opensearch_client("https://abc123.us-east-1.aoss.amazonaws.com", "us-east-1",
                               "aoss")
    (connection,) = client.transport.connection_pool.connections
    assert connection.host == "https://abc123.us-east-1.aoss.amazonaws.com:443"
    headers = connection.http_auth("GET", f"{connection.host}/memories", None)
    assert "/us-east-1/aoss/aws4_request" in headers["Authorization"]
    assert "x-amz-content-sha256" in headers["Authorization"].lower()
    with pytest.raises(ValueError, match="'es' or 'aoss'"):
        opensearch_client("search-x.es.amazonaws.com", "us-east-1", "opensearch")
    # an explicit http:// endpoint (a local stand-in) is not sent TLS; a bare host is
    local = opensearch_client("http://127.0.0.1:9201", "us-east-1", "es")
    (connection,) = local.transport.connection_pool.connections
    assert connection.host == "http://127.0.0.1:9201"
    bare = opensearch_client("search-x.es.amazonaws.com", "us-east-1", "es")
    assert bare.transport.connection_pool.connections[0].host.startswith("https://")
    # the caller's session signs, when given (the AWS profile passes its own)
    session = boto3.session.Session(aws_access_key_id="AKIAGIVENSESSION",
                                    aws_secret_access_key="secret", region_name="us-east-1")
    given = opensearch_client("search-x.es.amazonaws.com", "us-east-1", "es", session)
    (connection,) = given.transport.connection_pool.connections
    headers = connection.http_auth("GET", f"{connection.host}/memories", None)
    assert "Credential=AKIAGIVENSESSION/" in headers["Authorization"]


@pytest.mark.parametrize("custom_ids", [True, False])
def test_remove_user_takes_every_row_of_the_user_and_only_theirs(custom_ids):
    """Erasure: the rows of the ids given and any other row of the user (one whose id
    the stores no longer knew); another user's and another tenant's stay."""
    with FakeOpenSearch(accept_custom_ids=custom_ids,
                        required_filter_fields=("tenant_id", "user_id")) as fake:
        index = Backend(client_for(fake), "memories", eventually=lambda check: check(),
                        index_options={"use_custom_ids": custom_ids}).index()
        mine = [memory(f"note {i}", "t1") for i in range(5)]
        others = [memory("note", "t1", user="u2"), memory("note", "t2")]
        index.upsert([*mine, *others], np.stack([unit(i) for i in range(7)]))

        assert index.remove_user("t1", "u1", [m.id for m in mine[:3]]) == 5
        left = fake.indices["memories"].docs.values()
        assert sorted((d["tenant_id"], d["user_id"]) for d in left) == [("t1", "u2"),
                                                                         ("t2", "u1")]
        assert index.remove_user("t1", "u1", [m.id for m in mine]) == 0  # nothing left
