"""Episodes on the AWS profile (moto: DynamoDB, S3; the fake OpenSearch): the dedupe step's
plan carries an add's episode through S3 to the index step, which stores and indexes it
and notes it on its statements; delete/memory of a statement removes the episode's
record from search and its document from OpenSearch."""

from __future__ import annotations

import uuid

import pytest
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import call_api
from tests.integration.test_aws_erasure import run_steps, stack  # noqa: F401 - fixture

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def listed(user: str) -> list[dict]:
    found = call_api("POST", "get/memory", {"user_id": user, "size": 50})
    assert found.status == 200, found.body
    return found.body["data"]["memory_detail_list"]


def test_an_episode_is_indexed_and_goes_with_a_deleted_statement(stack):  # noqa: F811
    user = f"aws-episodes-{uuid.uuid4().hex[:8]}"
    added = call_api("POST", "add/message", {"user_id": user, "conversation_id": "c1",
                                             "messages": [
        {"role": "user", "content": "I signed up for a pottery class yesterday."},
        {"role": "assistant", "content": "That sounds fun."},
        {"role": "user", "content": "I also go swimming with my kids every Sunday."}]})
    task_id = added.body["data"]["task_id"]
    run_steps(task_id, user)
    assert stack.task(task_id).status == "completed"

    memories = listed(user)
    (episode,) = [m for m in memories if m["memory_key"].startswith("User, in conversation")]
    assert "pottery class" in episode["memory_value"]
    assert "swimming" in episode["memory_value"]
    documents = {d["memory_id"] for index in stack.opensearch.indices.values()
                 for d in index.docs.values()}
    assert episode["id"] in documents

    (swim,) = [m for m in memories if "swimming" in m["memory_value"]
               and m["id"] != episode["id"]]
    deleted = call_api("POST", "delete/memory", {"memory_ids": [swim["id"]]})
    assert deleted.status == 200, deleted.body
    assert episode["id"] not in [m["id"] for m in listed(user)]
    documents = {d["memory_id"] for index in stack.opensearch.indices.values()
                 for d in index.docs.values()}
    assert episode["id"] not in documents and swim["id"] not in documents
