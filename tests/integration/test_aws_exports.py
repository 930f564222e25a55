"""Export and import on the AWS profile (moto DynamoDB and S3, the fake OpenSearch): the
API function's export/import and mem0 export routes over DynamoDB's by_user pages, the
directory table for export requests, and OpenSearch for the restored memories."""

from __future__ import annotations

import pytest
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import API_KEY, TENANT, MotoStack, call_api, moto_stack

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
OTHER_KEY = "other-tenant-key-0123456789"
T0 = 1_717_243_200_000


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch) as stack:
        stack.runtime.services.keys.register(API_KEY, TENANT, label="test")
        stack.runtime.services.keys.register(OTHER_KEY, "tenant-other", label="test")
        yield stack


def record(i: int, user: str = "aws-user") -> dict:
    history = [{"version": 1, "memory_value": f"I lived in town {i}.", "valid_from": T0,
                "valid_to": T0 + 1000, "change": "supersede", "reason": "moved"}] if i == 0 \
        else []
    return {"kind": "memory", "id": f"mem-{i}", "user_id": user, "memory_type": "UserMemory",
            "memory_key": f"fact {i}", "memory_value": f"I live in harbour town {i}.",
            "version": len(history) + 1, "history": history, "sources": [f"msg-{i}"],
            "info": {"source": "crm"}, "create_time": T0 + i, "update_time": T0 + i,
            "valid_from": T0 + 1000, "conversation_id": "c1"}


def export_all(user: str, key: str = API_KEY) -> list[dict]:
    out, cursor = [], None
    while True:
        answer = call_api("POST", "export/memory",
                          {"user_id": user, "limit": 2, **({"cursor": cursor} if cursor else {})},
                          api_key=key)
        assert answer.status == 200, answer.body
        out += answer.body["data"]["records"]
        cursor = answer.body["data"]["next_cursor"]
        if not cursor:
            return out


def test_import_export_erase_import_on_aws(stack):
    records = [record(i) for i in range(5)]
    done = call_api("POST", "import/memory", {"records": records})
    assert done.status == 200, done.body
    assert done.body["data"]["written"] == [r["id"] for r in records]
    exported = export_all("aws-user")
    assert [r["id"] for r in exported] == [f"mem-{i}" for i in (4, 3, 2, 1, 0)]
    assert exported[-1]["history"] == [{**records[0]["history"][0], "task_id": None}]
    assert exported[-1]["sources"] == ["msg-0"] and exported[-1]["info"] == {"source": "crm"}
    assert export_all("aws-user", key=OTHER_KEY) == []  # the tenant partitions the read

    found = call_api("POST", "search/memory", {"user_id": "aws-user", "query": "harbour town 3"})
    assert any(m["id"] == "mem-3" for m in found.body["data"]["memory_detail_list"])

    assert call_api("POST", "delete/memory", {"user_id": "aws-user"}).status == 200
    assert export_all("aws-user") == []
    again = call_api("POST", "import/memory", {"records": exported})
    assert again.status == 200 and len(again.body["data"]["written"]) == 5
    assert export_all("aws-user") == exported
    replay = call_api("POST", "import/memory", {"records": exported})
    assert replay.body["data"]["skipped"] == [r["id"] for r in exported]


def test_mem0_exports_on_aws(stack):
    call_api("POST", "import/memory", {"records": [record(1, "mem0-user")]})
    created = call_api("POST", "v1/exports/", {"schema": {"type": "object"},
                                               "user_id": "mem0-user"}, prefix="")
    assert created.status == 200, created.body
    got = call_api("POST", "v1/exports/get/", {"memory_export_id": created.body["id"]},
                   prefix="")
    assert got.status == 200, got.body
    assert [m["id"] for m in got.body["memories"]] == ["mem-1"]
    theirs = call_api("POST", "v1/exports/get/", {"memory_export_id": created.body["id"]},
                      api_key=OTHER_KEY, prefix="")
    assert theirs.status == 404
