"""The LLM path on the AWS shape, under moto: the extract and dedupe Lambdas call the
chat model (through the real `openai` client, on a scripted chat-completions server)
with the key read from the provider secret in Secrets Manager; an endpoint that is down
makes the step raise RetryableError for the state machine's Retry, the Catch marks the
task failed, and retry/task starts a new execution for it."""

from __future__ import annotations

import json
import uuid

import pytest
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.fakes.openai_chat import ScriptedChatServer
from tests.integration.aws_stack import API_KEY, TENANT, VISION_SECRET, call_api, invoke, moto_stack

from engram.config import LlmSettings
from engram.errors import RetryableError
from engram.models.domain import TaskRef, TaskStatus

pytestmark = pytest.mark.slow


def extraction(body: dict) -> dict:
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    asked = [json.loads(line) for line in prompt.splitlines() if line.startswith("{")]
    return {"memories": [
        {"memory_type": "UserMemory", "memory_key": "Home city",
         "memory_value": "The user lives in Lisbon", "confidence": 0.9,
         "source_message_ids": [m["id"]]}
        for m in asked if "Lisbon" in m.get("text", "")]}


@pytest.fixture
def llm():
    with ScriptedChatServer(responder=extraction) as server:
        yield server


@pytest.fixture
def stack(aws_credentials, monkeypatch, llm):  # noqa: F811
    settings = LlmSettings(model="gpt-4o-mini", base_url=llm.base_url, max_retries=0,
                           timeout_seconds=5)
    with moto_stack(monkeypatch, llm=settings) as stack:
        stack.runtime.services.keys.register(API_KEY, TENANT, label="test")
        yield stack


def add(user: str, text: str) -> TaskRef:
    added = call_api("POST", "add/message", {"user_id": user, "conversation_id": "c1",
                                             "messages": [{"role": "user", "content": text}]})
    assert added.status == 200, added.body
    return TaskRef(tenant_id=TENANT, task_id=added.body["data"]["task_id"], user_id=user)


def test_the_steps_call_the_model_with_the_key_from_secrets_manager(stack, llm):
    user = f"aws-llm-{uuid.uuid4().hex[:8]}"
    ref = add(user, "I live in Lisbon now.").model_dump()
    for step in ("parse", "extract", "dedupe", "index"):
        assert invoke(step, ref) == ref
    task = stack.task(ref["task_id"])
    assert task.status == TaskStatus.completed and len(task.memory_views.added) == 1
    assert task.usage.calls == 1 and task.usage.prompt_tokens > 0
    (request,) = llm.requests
    assert request["headers"]["authorization"] == f"Bearer {VISION_SECRET}"
    assert request["body"]["model"] == "gpt-4o-mini"
    found = call_api("POST", "search/memory", {"query": "Where do I live?", "user_id": user})
    assert found.body["data"]["memory_detail_list"][0]["memory_value"] == \
        "The user lives in Lisbon"


def test_endpoint_down_is_retryable_then_failed_then_retried(stack, llm):
    user = f"aws-llm-down-{uuid.uuid4().hex[:8]}"
    ref = add(user, "I live in Lisbon now.")
    assert invoke("parse", ref.model_dump()) == ref.model_dump()
    llm.fail(503)
    # The name the state machine's Retry matches, whatever the subclass raised inside.
    with pytest.raises(RetryableError, match="HTTP 503") as raised:
        invoke("extract", ref.model_dump())
    assert type(raised.value) is RetryableError

    # Retries exhausted: the Catch hands the error to MarkFailed.
    cause = json.dumps({"errorMessage": str(raised.value), "errorType": "RetryableError"})
    invoke("mark_failed", {**ref.model_dump(),
                           "error": {"Error": "RetryableError", "Cause": cause}})
    status = call_api("POST", "get/status", {"task_id": ref.task_id}).body["data"]
    assert status["status"] == "failed" and "HTTP 503" in status["error"]

    retried = call_api("POST", "retry/task", {"task_id": ref.task_id})
    assert retried.status == 200 and retried.body["data"]["attempt"] == 2
    names = [e["name"] for e in stack.executions()]
    assert f"{ref.task_id}-2" in names  # a new execution; the failed one keeps its name
    # The retried execution's steps complete now that the endpoint answers.
    for step in ("parse", "extract", "dedupe", "index"):
        invoke(step, ref.model_dump())
    assert stack.task(ref.task_id).status == TaskStatus.completed
