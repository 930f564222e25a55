"""MemOS profiles, extract/memory, rerank and chat on the AWS profile: the API function
behind the authorizer (`call_api`, as API Gateway calls it) over moto's DynamoDB (profiles
live in the records table), S3 and the fake OpenSearch."""

from __future__ import annotations

import json

import pytest
from boto3.dynamodb.conditions import Key
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import API_KEY, TENANT, MotoStack, call_api, moto_stack

from engram.adapters.dynamodb_tables import DynamoApiKeyStore, _user_key
from engram.services.keys import ApiKeyService

TEMPLATE = {"Basic Info": {"City": {"value": "", "algorithm_updatable": True},
                           "Nickname": {"value": "", "algorithm_updatable": True}}}


pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch) as stack:
        # the key the authorizer checks (as scripts/create_api_key.py stores one)
        ApiKeyService(DynamoApiKeyStore(stack.tables["api_keys"])).register(
            API_KEY, TENANT, label="profiles")
        yield stack


def ok(route: str, body: dict) -> dict:
    response = call_api("POST", route, body)
    assert response.status == 200 and response.body["code"] == 0, response.body
    return response.body


def profile_items(stack: MotoStack, user: str) -> list[dict]:
    return stack.tables["records"].query(KeyConditionExpression=Key("pk").eq(
        _user_key(TENANT, user))
                       & Key("sk").begins_with("PROFILE#"))["Items"]


def test_profiles_live_in_dynamodb_and_go_with_the_user(stack):
    tid = ok("add/profile_template", {"name": "Customer",
                                      "metadata": TEMPLATE})["data"]["profile_template_id"]
    ok("bind/profile_template", {"bind_list": [{"user_id": "lisa", "profile_template_id": tid}]})
    added = ok("add/message", {"user_id": "lisa", "conversation_id": "c1", "async_mode": False,
                               "messages": [{"role": "user", "content": "I live in Lisbon."}]})
    assert added["data"]["status"] == "completed"
    found = ok("search/memory", {"query": "where do I live", "user_id": "lisa"})["data"]
    (profile,) = found["profile_detail_list"]
    assert profile["metadata"]["Basic Info"]["City"]["value"] == "Lisbon"
    edited = ok("edit/profile", {"user_id": "lisa", "profile_template_id": tid,
                                 "metadata": {"Basic Info": {"Nickname": {"value": "Li"}}}})
    assert edited["data"]["profile"]["metadata"]["Basic Info"]["Nickname"]["value"] == "Li"
    assert len(profile_items(stack, "lisa")) == 1
    erased = ok("delete/memory", {"user_id": "lisa"})["data"]
    assert erased["receipt"]["profiles"] == 1
    assert profile_items(stack, "lisa") == []
    missing = call_api("POST", "delete/profile", {"user_id": "lisa", "profile_template_id": tid})
    assert missing.status == 404


def test_extract_rerank_and_chat_on_lambda(stack):
    extracted = ok("extract/memory", {"messages": [
        {"role": "user", "content": "I live in Lisbon."}]})["data"]
    assert "Lisbon" in extracted["memory_detail_list"][0]["memory_value"]
    ranked = ok("rerank", {"query": "Lisbon", "documents": ["Paris", "I live in Lisbon"]})
    assert ranked["results"][0]["index"] == 1
    # No LLM in this stack: a 400 naming the setting, before anything else runs.
    chat = call_api("POST", "chat", {"user_id": "u", "conversation_id": "c", "query": "hi",
                                     "stream": True})
    assert chat.status == 400 and "LlmModel" in json.dumps(chat.body)
