"""Every Lambda handler of functions/, invoked in-process with its events/ files against
moto (S3, SQS, DynamoDB, Step Functions) and the fake OpenSearch. The state machine is
not executed here (test_state_machine.py does that): starting it is only recorded."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import (
    API_KEY,
    BUCKET,
    TENANT,
    LambdaContext,
    MotoStack,
    invoke,
    load_event,
    moto_stack,
)

from engram.adapters.dynamodb_tables import TaskWriteConflict
from engram.aws.events import CaughtError, S3ObjectCreated
from engram.aws.runtime import AwsClients, ConfigurationError, LazyClient, build_aws_runtime
from engram.aws.steps import run_step
from engram.config import AwsSettings, EmbeddingSettings, Settings
from engram.errors import PermanentError, RetryableError
from engram.models.domain import Role, Task, TaskRef, TaskStatus
from engram.models.pipeline import IngestJob, request_key
from engram.services.keys import hash_key

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

EVENT_REF = TaskRef.model_validate(load_event("parse", "task_ref"))


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch) as stack:
        yield stack


def api(scenario: str) -> tuple[int, dict]:
    response = invoke("api", load_event("api", scenario))
    return response["statusCode"], json.loads(response["body"])


def put_event_task(stack: MotoStack, text: str) -> None:
    """The task the step and get/status events point at, as the API would have left it."""
    ref = EVENT_REF
    record = dict(tenant_id=ref.tenant_id, user_id=ref.user_id, conversation_id="c1",
                  message_id="msg-event-1", seq=0, role=Role.user, text=text,
                  task_id=ref.task_id)
    job = IngestJob(task_id=ref.task_id, tenant_id=ref.tenant_id, user_id=ref.user_id,
                    conversation_id="c1", messages=[record])
    stack.runtime.pipeline.objects.put_bytes(
        request_key(ref.tenant_id, ref.user_id, ref.task_id), job.model_dump_json().encode())
    stack.runtime.pipeline.tasks.create(Task(task_id=ref.task_id, tenant_id=ref.tenant_id,
                                             user_id=ref.user_id, conversation_id="c1",
                                             message_count=1))


def request_objects(stack: MotoStack, user_id: str) -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"requests/{TENANT}/{user_id}/")
    return [o["Key"] for o in listed.get("Contents", [])]


# --- api -----------------------------------------------------------------------------

def test_api_async_add_stores_the_request_starts_the_workflow_and_is_searchable(stack):
    status, body = api("add_message_async")
    assert status == 200 and body["code"] == 0, body
    data = body["data"]
    assert data["status"] == "waiting" and len(data["message_ids"]) == 2

    task = stack.task(data["task_id"])
    assert task is not None and task.status == TaskStatus.waiting
    assert request_objects(stack, "u-alice") == [
        request_key(TENANT, "u-alice", data["task_id"])]
    (execution,) = stack.executions()
    assert execution["name"] == data["task_id"]  # one execution per task, named by it
    pointer = json.loads(stack.sfn.describe_execution(
        executionArn=execution["executionArn"])["input"])
    assert pointer == {"tenant_id": TENANT, "task_id": data["task_id"], "user_id": "u-alice"}

    status, body = api("search_memory")  # the fast path: turns are searchable at once
    assert status == 200, body
    values = [m["memory_value"] for m in body["data"]["memory_detail_list"]]
    assert any("green tea" in v for v in values), values


def keyed_add(key: str, text: str = "I like green tea") -> dict:
    event = load_event("api", "add_message_async")
    event["headers"]["Idempotency-Key"] = key
    event["multiValueHeaders"]["Idempotency-Key"] = [key]
    event["body"] = json.dumps({"user_id": "u-keyed", "conversation_id": "c1",
                                "messages": [{"role": "user", "content": text}]})
    return event


def test_api_add_with_an_idempotency_key_runs_once(stack):
    answers = [invoke("api", keyed_add("order-1")) for _ in range(3)]
    assert {a["statusCode"] for a in answers} == {200}
    task_ids = {json.loads(a["body"])["data"]["task_id"] for a in answers}
    assert len(task_ids) == 1
    assert [e["name"] for e in stack.executions()] == list(task_ids)
    (messages,) = [stack.runtime.services.memories.conversation(TENANT, "u-keyed", "c1", 10)]
    assert len(messages) == 1

    other = invoke("api", keyed_add("order-1", "something else"))
    assert other["statusCode"] == 422 and "Idempotency-Key" in json.loads(other["body"])["message"]


def test_an_add_retried_after_start_execution_failed_finds_its_task(stack, monkeypatch):
    """StartExecution fails after the task row is written; the client retries with the
    same key: the same task, started this time, and no second task or message."""
    workflow = stack.runtime.services.ingest.workflow.text_state_machine  # a text-only add
    real = workflow._sfn
    failing = type("Down", (), {"start_execution": lambda self, **kw: (_ for _ in ()).throw(
        throttled()), "exceptions": real.exceptions})()
    monkeypatch.setattr(workflow, "_sfn", failing)
    first = invoke("api", keyed_add("retry-1"))
    assert first["statusCode"] == 500
    monkeypatch.setattr(workflow, "_sfn", real)
    second = invoke("api", keyed_add("retry-1"))
    assert second["statusCode"] == 200, second["body"]
    task_id = json.loads(second["body"])["data"]["task_id"]
    assert [e["name"] for e in stack.executions()] == [task_id]
    assert stack.task(task_id).status == TaskStatus.waiting
    assert len(stack.runtime.services.memories.conversation(TENANT, "u-keyed", "c1", 10)) == 1


def test_api_sync_add_runs_the_pipeline_inline(stack):
    status, body = api("add_message_sync")
    assert status == 200, body
    assert body["data"]["status"] == "completed"
    assert body["data"]["memory_views"]["added"]
    assert stack.executions() == []  # sync mode never starts the state machine


def test_api_get_status_by_body_and_by_query(stack):
    put_event_task(stack, "I live in Lisbon.")
    for scenario in ("get_status", "get_status_query"):
        status, body = api(scenario)
        assert status == 200, body
        assert body["data"]["task_id"] == EVENT_REF.task_id
        assert body["data"]["status"] == "waiting"


def test_api_names_the_invalid_field(stack):
    status, body = api("add_message_invalid")
    assert status == 422 and body["code"] == 422
    assert "messages.0.role" in body["message"]


def hostile(method: str = "POST", path: str = "/v1/add/message", body: str | None = None,
            content_type: str | None = "application/json", encoded: bool = False):
    """The API function with a request API Gateway passed on as it came."""
    event = load_event("api", "add_message_async")
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    if content_type:
        headers["Content-Type"] = content_type
    event.update(httpMethod=method, path=path, headers=headers, isBase64Encoded=encoded,
                 multiValueHeaders={k: [v] for k, v in headers.items()},
                 body=body if body is not None else event["body"])
    response = invoke("api", event)
    headers_out = {**{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
                   **(response.get("headers") or {})}
    return response["statusCode"], headers_out, json.loads(response["body"])


def test_api_refuses_malformed_requests_in_the_envelope_on_lambda_too(stack):
    deep = '{"user_id": "u", "conversation_id": "c", "messages": ' + "[" * 10_000 \
        + "]" * 10_000 + "}"
    status, _, body = hostile(body=deep)
    assert (status, body["code"]) == (422, 422) and "deeper than 64" in body["message"]
    status, _, body = hostile(content_type="text/plain")
    assert (status, body["code"]) == (415, 415) and "application/json" in body["message"]
    status, _, body = hostile(body="[" + load_event("api", "add_message_async")["body"] + "]")
    assert status == 422 and "must be a JSON object" in body["message"]
    status, _, body = hostile(body='{"user_id": "u\\udfff", "conversation_id": "c", '
                                   '"messages": [{"role": "user", "content": "x"}]}')
    assert status == 422 and "user_id" in body["message"] and "surrogate" in body["message"]
    status, headers, body = hostile(method="PATCH")
    assert (status, headers["Allow"]) == (405, "POST") and body["code"] == 405
    status, _, body = hostile(path="/api/v1/object/sign", content_type="text/plain")
    assert status == 415 and body["status"] == 415  # MMS format there
    raw = '{"user_id": "u", "conversation_id": "c", "messages": [{"role": "user", ' \
          '"content": "x", "chat_time": 1e300}]}'
    status, _, body = hostile(body=base64.b64encode(raw.encode()).decode(), encoded=True)
    assert status == 422 and "messages.0.chat_time" in body["message"]


def test_api_stores_the_longest_identifiers_within_s3_and_dynamodb_key_limits(stack):
    user = "用" * 256
    body = json.dumps({"user_id": user, "conversation_id": "会" * 256, "messages": [
        {"role": "user", "message_id": "消" * 256, "content": "I keep bees"}]})
    status, _, answer = hostile(body=body)
    assert status == 200, answer
    keys = [o["Key"] for o in stack.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys and all(len(k.encode()) <= 1024 for k in keys)
    status, _, answer = hostile(path="/v1/get/message", body=json.dumps(
        {"user_id": user, "conversation_id": "会" * 256}))
    assert [m["content"] for m in answer["data"]["message_detail_list"]] == ["I keep bees"]


def test_api_refuses_a_request_without_the_authorizer_context(stack):
    status, body = api("no_authorizer_context")
    assert (status, body["code"]) == (401, 401)


# --- authorizer ------------------------------------------------------------------------

def test_authorizer_allows_a_known_key_with_its_tenant(stack):
    stack.tables["api_keys"].put_item(Item={"pk": hash_key(API_KEY), "tenant_id": TENANT,
                                            "label": "test", "create_time": 0})
    policy = invoke("authorizer", load_event("authorizer", "valid_token"))
    assert policy["principalId"] == TENANT
    assert policy["context"] == {"tenant_id": TENANT}
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    # Every route of the stage: the answer is cached per key, not per route.
    assert statement["Resource"] == [
        "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/api/*/*"]


@pytest.mark.parametrize("scenario, reason", [
    ("unknown_key", "invalid API key"),
    ("wrong_scheme", "Authorization header must be 'Token <api key>'"),
])
def test_authorizer_denies_with_the_reason(stack, scenario, reason):
    policy = invoke("authorizer", load_event("authorizer", scenario))
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert reason in policy["context"]["reason"]
    assert "tenant_id" not in policy["context"]


# --- upload received (S3 events via SQS) -------------------------------------------------

def s3_key(event: dict, index: int = 0) -> str:
    """The decoded object key a record names (the events/ files carry S3's encoding)."""
    from urllib.parse import unquote_plus

    body = json.loads(event["Records"][index]["body"])
    return unquote_plus(body["Records"][0]["s3"]["object"]["key"])


def test_inbox_text_file_becomes_a_message_task(stack):
    event = load_event("upload_received", "inbox_text_file")
    key = s3_key(event)
    assert key == "inbox/tenant-a/u-inbox/notes/2026-11-21 standup.md"
    stack.s3.put_object(Bucket=BUCKET, Key=key, Body="Standup: I will own the Q4 budget review.")

    assert invoke("upload_received", event) == {"batchItemFailures": []}

    (task,) = stack.tasks_of("u-inbox")
    assert task.status == TaskStatus.waiting and task.conversation_id == "inbox"
    (message,) = stack.runtime.services.memories.conversation(TENANT, "u-inbox", "inbox", None)
    assert message.text == "Standup: I will own the Q4 budget review."
    assert [e["name"] for e in stack.executions()] == [task.task_id]


def test_duplicate_s3_delivery_makes_one_task(stack):
    event = load_event("upload_received", "duplicate_delivery")
    stack.s3.put_object(Bucket=BUCKET, Key=s3_key(event), Body="Dear diary, I adopted a cat.")

    assert invoke("upload_received", event) == {"batchItemFailures": []}
    assert invoke("upload_received", event) == {"batchItemFailures": []}  # and redelivered

    assert len(stack.tasks_of("u-dup")) == 1
    assert len(request_objects(stack, "u-dup")) == 1
    assert len(stack.executions()) == 1


def test_an_inbox_document_becomes_a_task_holding_it_as_an_item(stack):
    event = load_event("upload_received", "inbox_document")
    stack.s3.put_object(Bucket=BUCKET, Key=s3_key(event), Body=b"%PDF-1.7 ...")

    assert invoke("upload_received", event) == {"batchItemFailures": []}

    (task,) = stack.tasks_of("u-docs")
    assert task.status == TaskStatus.waiting and task.conversation_id == "inbox"
    (item,) = task.items
    assert (item.type, item.name, item.uri) == ("file", "contract.pdf",
                                                "inbox/tenant-a/u-docs/contract.pdf")
    assert [e["name"] for e in stack.executions()] == [task.task_id]


@pytest.mark.parametrize("name, body, reason", [
    ("big.txt", b"x" * 400_001, "the file is 400001 bytes"),
    ("latin1.txt", "caf\u00e9".encode("latin-1"), "not UTF-8 text"),
    ("blank.md", b"  \n", "the file is empty"),
    ("gone.txt", None, "deleted before it was read"),
])
def test_inbox_file_that_cannot_be_a_message_fails_its_task(stack, name, body, reason):
    key = f"inbox/{TENANT}/u-odd/{name}"
    if body is not None:
        stack.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    created = S3ObjectCreated(bucket=BUCKET, key=key, sequencer="00A1",
                              event_time=datetime.now(UTC), size=len(body or b""))
    stack.runtime.intake.register_lambda_context(LambdaContext())
    result = stack.runtime.intake.inbox_object(created=created)
    assert result.status == "failed" and reason in result.error
    (task,) = stack.tasks_of("u-odd")
    assert task.status == TaskStatus.failed and task.error == result.error


def test_s3_test_event_is_skipped(stack):
    assert invoke("upload_received", load_event("upload_received", "s3_test_event")) == {
        "batchItemFailures": []}
    assert stack.tables["tasks"].scan()["Items"] == []


def test_key_outside_a_user_folder_is_a_batch_item_failure(stack):
    event = load_event("upload_received", "outside_inbox")
    result = invoke("upload_received", event)
    assert result == {"batchItemFailures": [
        {"itemIdentifier": event["Records"][0]["messageId"]}]}


# --- ingest queue ---------------------------------------------------------------------------

def test_queued_job_becomes_an_async_task_once(stack):
    event = load_event("ingest_queue", "add_message_job")
    assert invoke("ingest_queue", event) == {"batchItemFailures": []}
    assert invoke("ingest_queue", event) == {"batchItemFailures": []}  # redelivered

    (task,) = stack.tasks_of("u-crm")
    assert task.status == TaskStatus.waiting and task.message_count == 2
    assert task.conversation_id == "support-ticket-42"
    assert [e["name"] for e in stack.executions()] == [task.task_id]


def test_invalid_job_fails_alone(stack):
    event = load_event("ingest_queue", "batch_with_invalid_job")
    result = invoke("ingest_queue", event)
    assert result == {"batchItemFailures": [
        {"itemIdentifier": event["Records"][1]["messageId"]}]}
    (task,) = stack.tasks_of("u-crm")
    assert task.conversation_id == "support-ticket-43"


# --- pipeline steps -------------------------------------------------------------------------

def test_steps_run_in_order_on_their_events_and_complete_the_task(stack):
    put_event_task(stack, "I prefer green tea in the morning.")
    for step in ("parse", "extract", "dedupe", "index"):
        assert invoke(step, load_event(step, "task_ref")) == EVENT_REF.model_dump()
    task = stack.task(EVENT_REF.task_id)
    assert task.status == TaskStatus.completed and task.step == "index"
    assert task.memory_views.added
    leftovers = stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="work/")
    assert leftovers["KeyCount"] == 0  # step outputs are removed on completion


def test_a_step_on_a_missing_request_raises_a_permanent_error(stack):
    stack.runtime.pipeline.tasks.create(Task(task_id=EVENT_REF.task_id, tenant_id=TENANT,
                                             user_id=EVENT_REF.user_id))
    with pytest.raises(PermanentError, match="missing pipeline object"):
        invoke("parse", load_event("parse", "task_ref"))


@pytest.mark.parametrize("scenario, reason", [
    ("caught_permanent_error", "PermanentError: missing pipeline object work/tenant-a/"),
    ("retries_exhausted", "RetryableError: Bedrock amazon.titan-embed-text-v2:0: "
                          "ThrottlingException"),
])
def test_mark_failed_writes_the_reason(stack, scenario, reason):
    put_event_task(stack, "anything")
    assert invoke("mark_failed", load_event("mark_failed", scenario)) == EVENT_REF.model_dump()
    task = stack.task(EVENT_REF.task_id)
    assert task.status == TaskStatus.failed
    assert task.error.startswith("pipeline: ") and reason in task.error


@pytest.mark.parametrize("scenario, status", [("aborted", "ABORTED"),
                                              ("timed_out", "TIMED_OUT")])
def test_an_execution_ended_outside_the_catch_fails_its_task(stack, scenario, status):
    put_event_task(stack, "anything")
    event = load_event("execution_ended", scenario)
    assert invoke("execution_ended", event) == {"task_id": EVENT_REF.task_id, "changed": True}
    task = stack.task(EVENT_REF.task_id)
    assert task.status == TaskStatus.failed and status in task.error
    # a redelivery, or the end of an execution whose task finished, changes nothing
    assert invoke("execution_ended", event)["changed"] is False
    assert stack.task(EVENT_REF.task_id).error == task.error


def test_an_ended_execution_of_a_completed_task_leaves_it_completed(stack):
    put_event_task(stack, "anything")
    task = stack.task(EVENT_REF.task_id)
    task.status = TaskStatus.completed
    stack.runtime.pipeline.tasks.save(task)
    assert invoke("execution_ended", load_event("execution_ended", "aborted"))["changed"] is False
    assert stack.task(EVENT_REF.task_id).status == TaskStatus.completed


# --- error classification and the factory ----------------------------------------------------

def throttled() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, "Query")


@pytest.mark.parametrize("raised, leaves_as", [
    (throttled(), RetryableError),
    (TaskWriteConflict("changed since read"), RetryableError),  # a subclass: renamed
    (PermanentError("bad input"), PermanentError),
    (ValueError("a bug"), ValueError),
])
def test_run_step_names_errors_for_the_asl(raised, leaves_as):
    def step(deps, ref):
        raise raised

    no_task_yet = SimpleNamespace(tasks=SimpleNamespace(get=lambda tenant_id, task_id: None))
    with pytest.raises(leaves_as) as caught:
        run_step(step, no_task_yet, EVENT_REF.model_dump())
    assert type(caught.value) is leaves_as  # exact: the ASL matches names, not classes


def test_caught_error_keeps_the_lambda_error_message():
    error = CaughtError(Error="States.Timeout", Cause="").as_exception()
    assert type(error).__name__ == "States.Timeout" and str(error) == "States.Timeout"
    error = CaughtError(Error="PermanentError",
                        Cause=json.dumps({"errorMessage": "boom", "errorType": "X"})).as_exception()
    assert (type(error).__name__, str(error)) == ("PermanentError", "boom")


def test_settings_come_from_the_template_environment(monkeypatch):
    env = {"AWS_REGION": "eu-west-1", "ENGRAM_TASKS_TABLE": "t", "ENGRAM_API_KEYS_TABLE": "k",
           "ENGRAM_RECORDS_TABLE": "r", "ENGRAM_IDEMPOTENCY_TABLE": "i", "ENGRAM_BUCKET": "b",
           "ENGRAM_OPENSEARCH_ENDPOINT": "https://abc.eu-west-1.aoss.amazonaws.com",
           "ENGRAM_OPENSEARCH_SERVICE": "aoss", "ENGRAM_EMBEDDING_DIMENSION": "512",
           "ENGRAM_LLM_PROVIDER": "none", "ENGRAM_EMBEDDING_BASE_URL": ""}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ENGRAM_STATE_MACHINE_ARN", raising=False)
    settings = Settings().aws
    assert settings.region == "eu-west-1" and settings.embedding.dimension == 512
    assert settings.opensearch.use_custom_ids is False  # Serverless refuses custom ids
    assert settings.state_machine_arn == ""


def test_the_factory_creates_no_client_until_one_is_used(aws_credentials):  # noqa: F811
    settings = Settings(aws=AwsSettings(region="us-east-1", tasks_table="t", api_keys_table="k",
                                        records_table="r", idempotency_table="i", bucket="b"))
    clients = AwsClients.from_settings(settings)
    runtime = build_aws_runtime(settings, clients=clients)  # Bedrock embedder by default
    assert runtime.pipeline.embedder.dimension == 1024
    untouched = [clients.s3, clients.stepfunctions, clients.bedrock_runtime,
                 clients.opensearch, clients.dynamodb_client]
    assert all(isinstance(c, LazyClient) and c._client is None for c in untouched)


def test_an_openai_provider_without_its_key_secret_is_refused_at_cold_start(aws_credentials):  # noqa: F811
    settings = Settings(aws=AwsSettings(
        region="us-east-1", tasks_table="t", api_keys_table="k", records_table="r",
        idempotency_table="i", bucket="b",
        embedding=EmbeddingSettings(provider="openai", base_url="https://llm.example/v1")))
    with pytest.raises(ConfigurationError, match="ENGRAM_PROVIDER_SECRET_ARN"):
        build_aws_runtime(settings)
