"""mem0's platform routes and Engram's events on the AWS profile, under moto: the API
function behind the REQUEST authorizer (mem0's `Authorization: Token`), the state
machine running the real step handlers, DynamoDB for the webhook registrations and
mem0's entities, and the events of a completed task on the EventBridge bus (read back
through a rule with an SQS target)."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import API_KEY, TENANT, MotoStack, call_api, moto_stack

from engram.models.domain import TaskStatus

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
OTHER_KEY = "eng_example-key-for-tenant-b-0123456789"


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch, execute=True, events=True) as stack:
        stack.runtime.services.keys.register(API_KEY, TENANT, label="test")
        stack.runtime.services.keys.register(OTHER_KEY, "tenant-b", label="test")
        yield stack


def bus_events(stack: MotoStack, want: int, timeout: float = 20) -> list[dict]:
    sqs = boto3.client("sqs", region_name=REGION)
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=stack.events_queue_url,
                                           MaxNumberOfMessages=10).get("Messages", []):
            got.append(json.loads(message["Body"]))
    return got


def test_mem0_routes_and_task_events_on_aws(stack: MotoStack):
    ping = call_api("GET", "ping/")
    assert ping.status == 200 and ping.body["project_id"] == TENANT
    assert call_api("GET", "ping/", api_key="eng_wrong").status == 401

    added = call_api("POST", "memories/add/", {
        "messages": [{"role": "user", "content": "I keep bees on my roof in Lyon."}],
        "user_id": "u-mem0", "metadata": {"source": "aws"}}, prefix="/v3")
    assert added.status == 200 and added.body["status"] == "PENDING", added.body
    task_id = added.body["event_id"]
    stack.wait_for_execution(task_id)
    assert stack.task(task_id).status == TaskStatus.completed
    status = call_api("GET", f"event/{task_id}/")
    assert status.body["status"] == "SUCCEEDED" and status.body["results"], status.body

    # task completion put its events on the bus
    events = bus_events(stack, 2)
    by_type = {e["detail-type"]: e for e in events}
    assert {"task.completed", "memory.added"} <= set(by_type), events
    completed = by_type["task.completed"]
    assert completed["source"] == "engram"
    assert completed["detail"]["task_id"] == task_id
    assert completed["detail"]["tenant_id"] == TENANT
    assert "bees" in by_type["memory.added"]["detail"]["memory"]

    found = call_api("POST", "memories/search/", {
        "query": "what does the user keep?", "filters": {"user_id": "u-mem0"}}, prefix="/v3")
    assert found.status == 200, found.body
    (hit,) = [r for r in found.body["results"] if "bees" in r["memory"]]
    assert hit["metadata"] == {"source": "aws"} and hit["user_id"] == "u-mem0"
    assert call_api("POST", "memories/search/", {
        "query": "bees", "filters": {"user_id": "u-mem0"}}, api_key=OTHER_KEY,
        prefix="/v3").body["results"] == []
    assert call_api("GET", f"memories/{hit['id']}/", api_key=OTHER_KEY).status == 404

    # webhooks are kept in DynamoDB's records table, per tenant
    hook = call_api("POST", f"webhooks/projects/{TENANT}/", {
        "url": "https://hooks.example.com/x", "name": "n", "event_types": ["memory_add"]},
        prefix="/api/v1")
    assert hook.status == 200 and hook.body["secret"], hook.body
    listed = call_api("GET", f"webhooks/projects/{TENANT}/", prefix="/api/v1")
    assert [h["webhook_id"] for h in listed.body] == [hook.body["webhook_id"]]
    assert call_api("GET", f"webhooks/projects/{TENANT}/", api_key=OTHER_KEY,
                    prefix="/api/v1").status == 404
    assert call_api("DELETE", f"webhooks/{hook.body['webhook_id']}/", api_key=OTHER_KEY,
                    prefix="/api/v1").status == 404
    assert call_api("GET", "webhooks").body["data"][0]["webhook_id"] == hook.body["webhook_id"]

    # the user deleted through mem0's entities route: erased
    assert call_api("GET", "entities/").body["results"][0]["name"] == "u-mem0"
    assert call_api("DELETE", "entities/user/u-mem0/", prefix="/v2").status == 200
    assert call_api("GET", f"memories/{hit['id']}/").status == 404
    assert stack.task(task_id) is None
