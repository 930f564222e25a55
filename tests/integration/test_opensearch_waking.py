"""A Serverless NextGen collection that scaled to zero (no request for 10 minutes) takes
10-30 s to get capacity back. The fake OpenSearch plays that part over the wire protocol:
requests are held, or answered 503 / 429, until capacity is back. The index adapter
waits within its budget, then raises IndexWaking: the API answers 503 with Retry-After
(never a 500) and a pipeline step leaves as RetryableError for the state machine."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from opensearchpy import OpenSearch
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.fakes.opensearch_server import FakeOpenSearch
from tests.integration.aws_stack import MotoStack, invoke, load_event, moto_stack

from engram.adapters import opensearch_index
from engram.adapters.opensearch_index import (
    REQUEST_TIMEOUT_SECONDS,
    WAKE_RETRY_AFTER_SECONDS,
    IndexWaking,
    OpenSearchMemoryIndex,
)
from engram.aws.steps import classified
from engram.errors import RetryableError, ServiceUnavailable
from engram.models.domain import Memory, MemoryType

DIM = 8

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def fake():
    with FakeOpenSearch(required_filter_fields=("tenant_id", "user_id")) as server:
        yield server


def client(fake: FakeOpenSearch) -> OpenSearch:
    """As opensearch_client makes it: no retries in the transport."""
    return OpenSearch(hosts=[{"host": "127.0.0.1", "port": fake.port}],
                      timeout=REQUEST_TIMEOUT_SECONDS, max_retries=0, retry_on_timeout=False)


def stored_index(fake: FakeOpenSearch, wake_wait_seconds: float) -> OpenSearchMemoryIndex:
    """An index holding one memory, created while the collection was awake."""
    index = OpenSearchMemoryIndex(client(fake), "memories", DIM, space_type="cosinesimil",
                                  wake_wait_seconds=wake_wait_seconds)
    index.ensure_index()
    memory = Memory(tenant_id="t1", user_id="u1", memory_key="green tea",
                    memory_value="The user drinks green tea.", memory_type=MemoryType.long_term)
    index.upsert([memory], np.eye(1, DIM, dtype=np.float32))
    return index


def search(index: OpenSearchMemoryIndex):
    return index.search("t1", "u1", np.eye(1, DIM, dtype=np.float32)[0], "green tea", 5,
                        [MemoryType.long_term])


@pytest.mark.parametrize("status", [503, 429])
def test_a_search_waits_for_a_waking_collection_within_its_budget(fake, status):
    index = stored_index(fake, wake_wait_seconds=8)
    fake.scale_to_zero(1.5, status=status)
    started = time.monotonic()
    hits = search(index)

    assert len(hits) == 1  # answered once capacity was back
    assert fake.waking_answers() >= 2  # refused meanwhile, and asked again
    assert 1.5 <= time.monotonic() - started < 5


def test_past_its_budget_a_call_says_the_index_is_waking(fake):
    index = stored_index(fake, wake_wait_seconds=1)
    fake.scale_to_zero(60)
    started = time.monotonic()
    with pytest.raises(IndexWaking) as raised:
        search(index)

    assert time.monotonic() - started < 2.5
    error = raised.value
    assert isinstance(error, ServiceUnavailable) and isinstance(error, RetryableError)
    assert error.status_code == 503 and error.retry_after_seconds == WAKE_RETRY_AFTER_SECONDS
    assert "scaled to zero" in error.message and "(503)" in error.message


def test_a_held_request_is_given_up_within_the_budget_not_the_client_timeout(fake):
    """The first request after idle may simply hang while workers are provisioned: one
    attempt never runs past what is left of the budget (API Gateway stops at 29 s)."""
    index = stored_index(fake, wake_wait_seconds=1.5)
    fake.scale_to_zero(60, status=None, hold_seconds=6)
    started = time.monotonic()
    with pytest.raises(IndexWaking, match="did not answer"):
        search(index)
    assert time.monotonic() - started < 3.5  # budget + one attempt of at least 1 s


def test_calls_in_a_row_share_one_wait_so_a_request_never_waits_twice(fake, monkeypatch):
    """An API request makes several index calls (the search side wakes, then the indexing
    side is asleep too): together they wait no longer than one budget, or the request
    would run past API Gateway's 29 s."""
    index = stored_index(fake, wake_wait_seconds=1.5)
    fake.scale_to_zero(1.0)
    started = time.monotonic()
    assert len(search(index)) == 1  # waited for the search side
    fake.scale_to_zero(60)  # the indexing side is still asleep
    memory = Memory(tenant_id="t1", user_id="u1", memory_key="oolong",
                    memory_value="The user likes oolong.", memory_type=MemoryType.long_term)
    with pytest.raises(IndexWaking):
        index.upsert([memory], np.eye(1, DIM, dtype=np.float32))
    assert time.monotonic() - started < 2.5  # one budget (1.5 s) and one attempt, not two

    # 29 s later (a new request, after Retry-After) the index waits again.
    monkeypatch.setattr(opensearch_index.time, "monotonic",
                        lambda real=time.monotonic: real() + 30)
    fake.scale_to_zero(0.5)
    index.upsert([memory], np.eye(1, DIM, dtype=np.float32))
    assert len(fake.indices["memories"].docs) == 2


def test_writes_wait_too_and_a_step_leaves_as_retryable_error(fake):
    index = stored_index(fake, wake_wait_seconds=0)
    fake.scale_to_zero(60)
    memory = Memory(tenant_id="t1", user_id="u1", memory_key="oolong",
                    memory_value="The user likes oolong.", memory_type=MemoryType.long_term)
    with pytest.raises(RetryableError) as raised:  # what the ASL's Retry matches, by name
        classified(lambda: index.upsert([memory], np.eye(1, DIM, dtype=np.float32)))
    assert type(raised.value) is RetryableError and "scaled to zero" in raised.value.message

    fake.scale_to_zero(0)
    index.upsert([memory], np.eye(1, DIM, dtype=np.float32))  # fine once awake
    assert len(fake.indices["memories"].docs) == 2


# --- through the API function ----------------------------------------------------------------

@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch, wake_wait_seconds=1) as stack:
        yield stack


def call(scenario: str, text: str | None = None) -> dict:
    event = load_event("api", scenario)
    if text is not None:  # another add (the same one would be answered as accepted before)
        body = json.loads(event["body"])
        body["messages"] = [{"role": "user", "content": text}]
        event["body"] = json.dumps(body)
    return invoke("api", event)


def test_search_on_a_waking_collection_is_a_503_with_retry_after_never_a_500(stack):
    assert call("add_message_async")["statusCode"] == 200  # the index exists and is awake
    stack.opensearch.scale_to_zero(60)
    started = time.monotonic()
    response = call("search_memory")

    assert time.monotonic() - started < 5
    assert response["statusCode"] == 503
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    multi = {k.lower(): v for k, v in (response.get("multiValueHeaders") or {}).items()}
    assert headers.get("retry-after", (multi.get("retry-after") or [None])[0]) == str(
        WAKE_RETRY_AFTER_SECONDS)
    body = json.loads(response["body"])
    assert body["code"] == 503 and body["data"] is None
    assert "not answering yet" in body["message"] and "scaled to zero" in body["message"]

    stack.opensearch.scale_to_zero(0)  # capacity is back: the same search answers
    response = call("search_memory")
    assert response["statusCode"] == 200, response["body"]


def test_an_add_on_a_waking_collection_is_a_503_too(stack):
    assert call("add_message_async")["statusCode"] == 200
    stack.opensearch.scale_to_zero(60)
    # the turns are indexed as the add is accepted
    response = call("add_message_async", "I switched to decaf in November.")
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["code"] == 503


def test_the_openapi_document_declares_the_503_where_the_index_is_used(stack):
    event = load_event("api", "search_memory")
    event.update(path="/v1/openapi.json", httpMethod="GET", body=None)
    document = json.loads(invoke("api", event)["body"])
    declared = {path: set(ops["post"]["responses"]) for path, ops in document["paths"].items()
                if "post" in ops}
    for path in ("/v1/search/memory", "/v1/add/message", "/v1/delete/memory",
                 "/v1/add/knowledgebase-file", "/api/v1/memories", "/api/v1/memories/search",
                 "/api/v2/memory/search"):
        assert "503" in declared[path], path
    assert "503" not in declared["/v1/get/status"]  # no index there
