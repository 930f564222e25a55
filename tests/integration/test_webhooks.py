"""Webhooks and events. Against a real `engram serve` and a real local HTTP receiver: a
delivery is signed (the receiver recomputes the HMAC with the webhook's secret), a 500
from the receiver is retried until it answers 200, a private-address target is refused
unless allow-listed, another tenant sees none of it. The registrations on both backends
(SQLite; DynamoDB's records table under moto), and, under moto, a completed task puts
its events on the EventBridge bus (read back through a rule whose target is an SQS
queue: moto delivers to SQS targets)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests
from moto import mock_aws
from tests.conftest import EngramServer, free_port, server_env
from tests.fakes.aws import REGION, aws_credentials, create_tables  # noqa: F401 - fixture

from engram.adapters.dynamodb_directory import DynamoDirectory
from engram.adapters.eventbridge_bus import EventBridgeBus
from engram.adapters.sqlite_directory import SqliteDirectory
from engram.adapters.sqlite_store import SqliteStore
from engram.errors import NotFound, Unprocessable
from engram.models.domain import Memory, MemoryType, MemoryViews, Task, TaskStatus
from engram.services.url_policy import SsrfPolicy
from engram.services.webhooks import DeliverySettings, WebhookService, sign


class Receiver:
    """A local HTTP receiver that answers 500 to the first try of every delivery (then
    200), and keeps every request it got."""

    def __init__(self):
        self.seen: set[str] = set()
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(({k: v for k, v in self.headers.items()}, body))
                delivery = self.headers.get("X-Engram-Delivery", "")
                first = delivery not in receiver.seen
                receiver.seen.add(delivery)
                self.send_response(500 if first else 200)
                self.end_headers()

            def log_message(self, *_):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def of_type(self, event_type: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for h, b in self.requests if json.loads(b)["type"] == event_type]

    def close(self) -> None:
        self.server.shutdown()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What the README tells a receiver to do."""
    timestamp = headers["X-Engram-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Engram-Signature"]) and \
        abs(time.time() - int(timestamp)) < 300


def wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def hook_server(tmp_path, receiver):
    server = EngramServer(data_dir=tmp_path / "data", env=server_env(
        ENGRAM_FETCH_ALLOW_HOSTS=f"127.0.0.1:{receiver.port}",
        ENGRAM_WEBHOOKS__BACKOFF_SECONDS="0.2"))
    server.start()
    yield server
    server.stop()


def test_signed_delivery_retried_after_a_500(hook_server: EngramServer, receiver):
    created = hook_server.post("webhooks", {
        "url": receiver.url, "name": "tests",
        "event_types": ["task.completed", "memory.added", "memory.updated",
                        "memory.deleted"]})
    assert created.status_code == 200, created.text
    hook = created.json()["data"]
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert requests.get(f"{hook_server.base_url}/webhooks/{hook['webhook_id']}",
                        headers=hook_server.headers()).json()["data"]["secret"] is None

    user = f"hook-{uuid.uuid4().hex[:8]}"
    added = hook_server.post("add/message", {
        "user_id": user, "conversation_id": "c1", "async_mode": False,
        "messages": [{"role": "user", "content": "I moved to Oslo last spring."}]})
    assert added.status_code == 200, added.text
    task_id = added.json()["data"]["task_id"]

    wait(lambda: sum(json.loads(b)["data"]["task_id"] == task_id
                     for _, b in receiver.of_type("task.completed")) >= 2)
    completed = [(h, b) for h, b in receiver.of_type("task.completed")
                 if json.loads(b)["data"]["task_id"] == task_id]
    # the first attempt got a 500 and was retried with the same delivery id and body
    assert len(completed) == 2
    (h1, b1), (h2, b2) = completed
    assert b1 == b2 and h1["X-Engram-Delivery"] == h2["X-Engram-Delivery"]
    assert verify(secret, h2, b2)
    assert not verify("whsec_wrong", h2, b2)
    tampered = b2.replace(b"completed", b"failed")
    assert not verify(secret, h2, tampered)
    event = json.loads(b2)
    assert event["data"]["user_id"] == user and event["data"]["status"] == "completed"

    wait(lambda: receiver.of_type("memory.added"))
    memory_event = json.loads(receiver.of_type("memory.added")[0][1])
    assert "Oslo" in memory_event["data"]["memory"]
    assert memory_event["event_details"]["event"] == "ADD"  # mem0's shape beside ours

    # a client's edit and delete (any dialect: here mem0's routes) are events too
    memory_id = memory_event["data"]["memory_id"]
    edited = requests.put(f"{hook_server.root_url}/v1/memories/{memory_id}/",
                          json={"text": "I moved to Bergen last spring."},
                          headers=hook_server.headers())
    assert edited.status_code == 200, edited.text
    assert requests.delete(f"{hook_server.root_url}/v1/memories/{memory_id}/",
                           headers=hook_server.headers()).status_code == 200
    wait(lambda: receiver.of_type("memory.updated") and receiver.of_type("memory.deleted"))
    assert json.loads(receiver.of_type("memory.updated")[-1][1])["data"]["memory"] == \
        "I moved to Bergen last spring."
    assert json.loads(receiver.of_type("memory.deleted")[-1][1])["data"]["memory_id"] == \
        memory_id

    def deliveries():
        return requests.get(f"{hook_server.base_url}/webhooks/{hook['webhook_id']}/deliveries",
                            headers=hook_server.headers()).json()["data"]
    wait(lambda: deliveries() and all(d["status"] == "delivered" for d in deliveries()))
    first = next(d for d in deliveries() if d["event_type"] == "task.completed")
    assert first["attempts"] == 2 and first["last_status"] == 200

    # another tenant: not found, not listed
    other = hook_server.headers(hook_server.other_key)
    assert requests.get(f"{hook_server.base_url}/webhooks/{hook['webhook_id']}",
                        headers=other).status_code == 404
    assert requests.delete(f"{hook_server.base_url}/webhooks/{hook['webhook_id']}",
                           headers=other).status_code == 404
    assert requests.get(f"{hook_server.base_url}/webhooks", headers=other).json()["data"] == []

    changed = requests.put(f"{hook_server.base_url}/webhooks/{hook['webhook_id']}",
                           json={"is_active": False}, headers=hook_server.headers())
    assert changed.json()["data"]["is_active"] is False
    assert requests.delete(f"{hook_server.base_url}/webhooks/{hook['webhook_id']}",
                           headers=hook_server.headers()).status_code == 200
    assert requests.get(f"{hook_server.base_url}/webhooks/{hook['webhook_id']}",
                        headers=hook_server.headers()).status_code == 404


def test_private_targets_are_refused(engram_server: EngramServer):
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.5/hook", "http://localhost/x",
                "http://169.254.169.254/latest", "file:///etc/passwd"):
        answer = engram_server.post("webhooks", {"url": url, "event_types": ["task.failed"]})
        assert answer.status_code == 422, (url, answer.text)
        assert "url is refused" in answer.json()["message"]
    unknown = engram_server.post("webhooks", {"url": "https://example.com/h",
                                              "event_types": ["task.exploded"]})
    assert unknown.status_code == 422 and "task.exploded" in unknown.json()["message"]
    # the mem0 route: same policy, mem0's `detail`
    project = requests.get(f"{engram_server.root_url}/v1/ping/",
                           headers=engram_server.headers()).json()["project_id"]
    answer = requests.post(f"{engram_server.root_url}/api/v1/webhooks/projects/{project}/",
                           json={"url": "http://192.168.1.1/h", "name": "n",
                                 "event_types": ["memory_add"]},
                           headers=engram_server.headers())
    assert answer.status_code == 422 and "refused" in answer.json()["detail"]


class Recorder:
    """A transport that records instead of sending."""

    def __init__(self, status: int = 200):
        self.status, self.sent = status, []

    def post(self, url, body, headers, timeout):
        self.sent.append((url, body, headers))
        return self.status


@pytest.fixture(params=["sqlite", "dynamodb"])
def directory(request, tmp_path, aws_credentials):  # noqa: F811 - the fixture imported above
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "engram.db")
        yield SqliteDirectory(store)
        store.close()
        return
    with mock_aws():
        yield DynamoDirectory(create_tables(boto3.resource("dynamodb",
                                                           region_name=REGION))["records"])


def test_registrations_on_both_backends(directory):
    recorder = Recorder(status=503)
    hooks = WebhookService(store=directory, policy=SsrfPolicy(), transport=recorder,
                           settings=DeliverySettings(attempts=3, backoff_seconds=0))
    hook = hooks.create("t1", "n", "https://hooks.example.com/a", ["task.failed"])
    assert [h.webhook_id for h in hooks.list("t1")] == [hook.webhook_id]
    assert hooks.list("t2") == []
    with pytest.raises(NotFound):
        hooks.get("t2", hook.webhook_id)
    with pytest.raises(Unprocessable, match="allow it with ENGRAM_FETCH_ALLOW_HOSTS"):
        hooks.update("t1", hook.webhook_id, url="http://127.0.0.1:8080/x")
    hooks.publish("t1", "task.failed", {"task_id": "x"})
    hooks.publish("t2", "task.failed", {"task_id": "y"})  # t2 has no webhook
    assert hooks.drain(10)
    assert len(recorder.sent) == 3  # three attempts, then recorded as failed
    (delivery,) = hooks.deliveries("t1", hook.webhook_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 3, 503)
    url, body, headers = recorder.sent[0]
    assert headers["X-Engram-Signature"] == sign(hook.secret, headers["X-Engram-Timestamp"],
                                                 body)
    hooks.delete("t1", hook.webhook_id)
    assert hooks.list("t1") == []


def test_task_completion_puts_events_on_the_bus(aws_credentials, tmp_path):  # noqa: F811
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events.create_event_bus(Name="engram-events")
        queue = sqs.create_queue(QueueName="engram-events-tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events.put_rule(Name="task-events", EventBusName="engram-events",
                        EventPattern=json.dumps({"source": ["engram"],
                                                 "detail-type": ["task.completed",
                                                                 "memory.added"]}))
        events.put_targets(Rule="task-events", EventBusName="engram-events",
                           Targets=[{"Id": "tap", "Arn": arn}])
        store = SqliteStore(tmp_path / "engram.db")
        memory = Memory(tenant_id="t1", user_id="u1", memory_type=MemoryType.user,
                        memory_key="home", memory_value="lives in Oslo")
        store.put_many([memory])
        hooks = WebhookService(store=SqliteDirectory(store), policy=SsrfPolicy(),
                               transport=Recorder(), memories=store,
                               bus=EventBridgeBus(events, "engram-events"))
        task = Task(tenant_id="t1", user_id="u1", status=TaskStatus.completed,
                    memory_views=MemoryViews(added=[memory.id]))
        hooks.task_done(task)
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1)["Messages"]
        bodies = [json.loads(m["Body"]) for m in got]
        by_type = {b["detail-type"]: b for b in bodies}
        assert set(by_type) == {"task.completed", "memory.added"}
        assert by_type["task.completed"]["source"] == "engram"
        assert by_type["task.completed"]["detail"]["task_id"] == task.task_id
        assert by_type["task.completed"]["detail"]["tenant_id"] == "t1"
        assert by_type["memory.added"]["detail"]["memory"] == "lives in Oslo"
        store.close()
