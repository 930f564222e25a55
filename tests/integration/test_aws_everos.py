"""EverOS's groups, senders, settings (v1) and the v2 profile edit through the AWS stack
under moto: API Gateway's authorizer, then the API function on DynamoDB, each tenant
apart."""

from __future__ import annotations

import pytest
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import TENANT, MotoStack, call_api, moto_stack

from engram.adapters.dynamodb_tables import DynamoApiKeyStore
from engram.services.keys import ApiKeyService

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch) as stack:
        yield stack


def test_directory_and_profile_edits_on_dynamodb(stack):
    keys = ApiKeyService(DynamoApiKeyStore(stack.tables["api_keys"]))
    mine, theirs = keys.create(TENANT, "a"), keys.create("tenant-other", "b")

    def v1(method, route, body=None, key=mine):
        return call_api(method, route, body, api_key=key, prefix="/api/v1")

    def v2(route, body, key=mine):
        return call_api("POST", route, body, api_key=key, prefix="/api/v2")

    made = v1("POST", "groups", {"group_id": "crew", "name": "Crew"})
    assert made.status == 200 and made.body["data"]["name"] == "Crew", made.body
    assert v1("PATCH", "groups/crew", {"description": "the crew"}).status == 200
    got = v1("GET", "groups/crew")
    assert got.body["data"]["name"] == "Crew" and got.body["data"]["description"] == "the crew"
    assert v1("GET", "groups/crew", key=theirs).status == 404
    assert v1("POST", "senders", {"sender_id": "u-1", "name": "Ana"}).status == 200
    assert v1("GET", "senders/u-1").body["data"]["name"] == "Ana"
    assert v1("GET", "senders/u-1", key=theirs).status == 404
    assert v1("PUT", "settings", {"timezone": "Asia/Tokyo"}).body["data"]["timezone"] == \
        "Asia/Tokyo"
    assert v1("GET", "settings").body["data"]["timezone"] == "Asia/Tokyo"
    assert v1("GET", "settings", key=theirs).body["data"]["timezone"] == "UTC"

    edited = v2("memory/edit", {"user_id": "u-1", "operations": [
        {"action": "add", "type": "explicit_info",
         "data": {"category": "city", "description": "Ana lives in Kyoto"}}]})
    assert edited.status == 200 and edited.body["data"]["applied"] == 1, edited.body
    item = edited.body["data"]["results"][0]["new_item_id"]
    profile = v2("memory/get", {"user_id": "u-1", "memory_type": "profile"})
    assert profile.body["data"]["profiles"][0]["profile_data"]["explicit_info"][0][
        "item_id"] == item, profile.body
    rejected = v2("memory/edit", {"user_id": "u-1", "operations": [
        {"action": "delete", "type": "explicit_info", "item_id": item}]}, key=theirs)
    assert rejected.body["data"]["results"][0]["status"] == "rejected", rejected.body
    assert v2("memory/get", {"user_id": "u-1", "memory_type": "profile"},
              key=theirs).body["data"]["profiles"] == []
