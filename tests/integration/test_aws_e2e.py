"""The AWS profile end to end, in one process: moto for S3, SQS, DynamoDB and Step
Functions (the state machine executed, our handlers behind its tasks), the fake
OpenSearch, and API Gateway played by `call_api` (authorizer first, then the API
function with the authorizer's context).

A key made by scripts/create_api_key.py signs an add; the state machine runs it; get/
status says completed; search/memory through the API handler returns the memory, as
`engram serve` returns it for the same request. Inbox files and queued jobs take the
real S3-notification and SQS paths into the same workflow."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sqlite3
import time
import uuid

import boto3
import numpy as np
import pytest
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - fixture
from tests.fakes.embedder import HashingEmbedder
from tests.integration.aws_stack import (
    ROOT,
    TENANT,
    MotoStack,
    call_api,
    invoke,
    moto_stack,
)

from engram.api.app import create_app
from engram.api.memos.models import AddMessageRequest
from engram.api.memos.translate import accept_args
from engram.config import Settings
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event
from engram.models.domain import Memory

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

PREFERENCE = "I prefer green tea in the morning."


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch, execute=True) as stack:
        yield stack


@pytest.fixture
def api_key(stack) -> str:
    spec = importlib.util.spec_from_file_location(
        "create_api_key", ROOT / "scripts" / "create_api_key.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script.create_api_key(stack.tables["api_keys"], TENANT, label="e2e")


def wait_completed(task_id: str, api_key: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = call_api("POST", "get/status", {"task_id": task_id}, api_key=api_key)
        assert response.status == 200, response.body
        if response.body["data"]["status"] in ("completed", "failed"):
            return response.body["data"]
        time.sleep(0.05)
    raise TimeoutError(task_id)


def serve_search(tmp_path, user: str, text: str, query: str) -> dict:
    """The same add and search through `engram serve`'s profile (SQLite, local index)."""
    runtime = build_local_runtime(Settings(data_dir=tmp_path / "local"),
                                  embedder=HashingEmbedder())
    try:
        app = create_app(runtime.services)

        def post(route: str, body: dict) -> dict:
            event = proxy_event("POST", f"/v1/{route}", {"Content-Type": "application/json"},
                                json.dumps(body), TENANT, "127.0.0.1")
            return json.loads(app.resolve(event, LambdaContext())["body"])

        post("add/message", {"user_id": user, "conversation_id": "c1", "async_mode": False,
                             "messages": [{"role": "user", "content": text}]})
        return post("search/memory", {"user_id": user, "query": query})
    finally:
        runtime.close()


def found_values(search_body: dict) -> set[str]:
    data = search_body["data"]
    return ({m["memory_value"] for m in data["memory_detail_list"]}
            | {p["preference"] for p in data["preference_detail_list"]})


VARYING = ("id", "create_time", "update_time", "sources", "relativity")


def comparable(search_body: dict) -> dict:
    data = dict(search_body["data"])
    for kind in ("memory_detail_list", "preference_detail_list", "tool_memory_detail_list"):
        data[kind] = [{k: v for k, v in item.items() if k not in VARYING} for item in data[kind]]
    return {**search_body, "data": data}


def scores(search_body: dict) -> list[float]:
    data = search_body["data"]
    return [i["relativity"] for kind in ("memory_detail_list", "preference_detail_list")
            for i in data[kind]]


def test_signed_add_runs_the_workflow_and_search_returns_the_memory(stack, api_key, tmp_path):
    added = call_api("POST", "add/message", {
        "user_id": "u-e2e", "conversation_id": "c1",
        "messages": [{"role": "user", "content": PREFERENCE}]}, api_key=api_key)
    assert added.status == 200 and added.body["data"]["status"] == "waiting", added.body
    task_id = added.body["data"]["task_id"]

    status = wait_completed(task_id, api_key)
    assert status["status"] == "completed", status
    assert status["memory_views"]["counts"]["added"] >= 1
    assert stack.wait_for_execution(task_id)["status"] == "SUCCEEDED"
    assert stack.invocations == ["parse", "extract", "dedupe", "index"]

    found = call_api("POST", "search/memory", {"user_id": "u-e2e", "query": "green tea"},
                     api_key=api_key)
    assert found.status == 200 and found.body["code"] == 0, found.body
    items = found.body["data"]["memory_detail_list"] + found.body["data"]["preference_detail_list"]
    assert items and all(i.get("memory_type") != "WorkingMemory" for i in items)  # retired
    assert any("green tea" in value for value in found_values(found.body))

    # `engram serve` answers the same add and search with the same body, up to ids and
    # times, and scores within rounding (OpenSearch's BM25 stands in for the local one).
    local = serve_search(tmp_path, "u-e2e", PREFERENCE, "green tea")
    ours, theirs = comparable(found.body), comparable(local)
    assert ours == theirs
    assert scores(found.body) == pytest.approx(scores(local), abs=0.05)


TURNS = [{"role": "user", "name": "Caroline",
          "content": "Caroline: I moved to Lisbon last year. How about you?"},
         {"role": "user", "name": "Melanie", "content": "Melanie: I still live in Porto."}]


def test_an_async_add_embeds_its_turns_once_and_stores_the_sync_vectors(
        stack, api_key, tmp_path, monkeypatch):
    """The accept keeps the turn vectors with the request in S3; the pipeline's Lambdas
    mix them in rather than embedding the turns again, and OpenSearch gets the vectors a
    sync add gets from `engram serve` (retrieval/vectors.py)."""
    embedded: list[str] = []
    hashing = HashingEmbedder.embed

    def embed(self, texts):  # as int8 vectors do, each moves with its pass mates
        embedded.extend(texts)
        own = hashing(self, texts)
        mixed = own + 0.1 * own.mean(axis=0)
        return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)

    monkeypatch.setattr(HashingEmbedder, "embed", embed)
    added = call_api("POST", "add/message", {"user_id": "u-once", "conversation_id": "c1",
                                             "messages": TURNS}, api_key=api_key)
    assert wait_completed(added.body["data"]["task_id"], api_key)["status"] == "completed"
    assert embedded.count("I moved to Lisbon last year.") == 1
    assert embedded.count("I still live in Porto.") == 1
    assert not any(t["content"] in embedded for t in TURNS)  # the raw turns, never
    on_aws = {(doc["memory_type"], doc["text"]): doc["vector"] for doc in
              stack.opensearch.indices["engram-memories"].docs.values()
              if doc["user_id"] == "u-once"}

    runtime = build_local_runtime(Settings(data_dir=tmp_path / "local"),
                                  embedder=HashingEmbedder())
    try:
        runtime.services.ingest.accept(TENANT, *accept_args(AddMessageRequest(
            user_id="u-once", conversation_id="c1", async_mode=False, messages=TURNS)))
    finally:
        runtime.close()
    with sqlite3.connect(tmp_path / "local" / "index.db") as db:
        local = {(m.memory_type.value, m.index_text): np.frombuffer(vector, "<f4")
                 for vector, raw in db.execute("SELECT vector, memory FROM entries")
                 for m in [Memory.model_validate_json(raw)]}
    assert len(local) >= 2 and on_aws.keys() == local.keys()
    for key, vector in local.items():
        assert on_aws[key] == pytest.approx(vector.tolist(), abs=1e-6)


def test_a_wrong_key_gets_the_api_error_envelope(stack, api_key):
    refused = call_api("POST", "search/memory", {"user_id": "u-e2e", "query": "tea"},
                       api_key="eng_not-a-key-0000000000000000")
    assert (refused.status, refused.body) == (401, {"code": 401, "message": "invalid API key",
                                                    "data": None})


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    """SQS ReceiveMessage output in the shape Lambda's event source mapping delivers."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {},
        "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": REGION} for m in messages]}


def new_queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]


def drain(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name=REGION)
    messages: list[dict] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       AttributeNames=["All"]).get("Messages", []):
        messages += batch
    return messages


def test_inbox_file_takes_the_real_s3_notification_path(stack, api_key):
    queue_url, queue_arn = new_queue("engram-test-upload")
    # As template.yaml configures the bucket: object-created under inbox/ → the queue.
    stack.s3.put_bucket_notification_configuration(
        Bucket=stack.settings.aws.bucket, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "inbox/"}]}}}]})
    stack.s3.put_object(Bucket=stack.settings.aws.bucket, Key="inbox/tenant-a/u-inbox/note 1.txt",
                        Body=PREFERENCE.encode())
    stack.s3.put_object(Bucket=stack.settings.aws.bucket, Key="requests/not-for-the-inbox.json",
                        Body=b"{}")

    messages = drain(queue_url)
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b.get("Event") for b in bodies if "Event" in b] == ["s3:TestEvent"]
    assert len(messages) == 2  # the test event and the inbox file, not requests/

    assert invoke("upload_received", sqs_event(messages, queue_arn)) == {"batchItemFailures": []}
    (task,) = stack.tasks_of("u-inbox")
    status = wait_completed(task.task_id, api_key)
    assert status["status"] == "completed", status

    found = call_api("POST", "search/memory", {"user_id": "u-inbox", "query": "green tea"},
                     api_key=api_key)
    assert any("green tea" in value for value in found_values(found.body))


def test_queued_job_takes_the_sqs_path_into_the_same_workflow(stack, api_key):
    queue_url, queue_arn = new_queue("engram-test-ingest")
    job = {"tenant_id": TENANT, "user_id": "u-queue", "conversation_id": "crm-1",
           "idempotency_key": f"crm-{uuid.uuid4()}",
           "messages": [{"role": "user", "content": PREFERENCE}]}
    boto3.client("sqs", region_name=REGION).send_message(QueueUrl=queue_url,
                                                         MessageBody=json.dumps(job))

    assert invoke("ingest_queue", sqs_event(drain(queue_url), queue_arn)) == {
        "batchItemFailures": []}
    (task,) = stack.tasks_of("u-queue")
    assert wait_completed(task.task_id, api_key)["status"] == "completed"
