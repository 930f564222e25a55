"""Deleting a user on the AWS profile (moto: DynamoDB, S3; the fake OpenSearch): the API
function's delete/memory by user_id reaches every store. Afterwards no task row or task
pointer, no record (memory in any status, message), no S3 object and no OpenSearch
document holds anything of the user, and get/status of their tasks is a 404; another
user's rows, objects and documents are all still there. A task whose steps run on after
its user was erased writes nothing back: each step checks its task."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.integration.aws_stack import (
    API_KEY,
    BUCKET,
    TENANT,
    MotoStack,
    call_api,
    invoke,
    moto_stack,
)

from engram.models.domain import TaskRef

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    with moto_stack(monkeypatch) as stack:
        stack.runtime.services.keys.register(API_KEY, TENANT, label="test")
        yield stack


def word(kind: str) -> str:
    return f"qz{kind}{uuid.uuid4().hex[:10]}x"


@dataclass
class Person:
    user: str
    words: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)


def run_steps(task_id: str, user: str) -> None:
    ref = TaskRef(tenant_id=TENANT, task_id=task_id, user_id=user).model_dump()
    for step in ("parse", "extract", "dedupe", "index"):
        assert invoke(step, ref) == ref


def upload(name: str, data: bytes, user: str | None) -> str:
    body: dict[str, Any] = {"objectList": [{"fileId": "f0", "fileName": name,
                                            "fileType": "file"}]}
    if user:
        body["userId"] = user
    signed = call_api("POST", "object/sign", body, prefix="/api/v1")
    assert signed.status == 200, signed.body
    (form,) = signed.body["result"]["data"]["objectList"]
    info = form["objectSignedInfo"]
    posted = requests.post(info["url"], data=info["fields"], timeout=30,
                           files={"file": (name, data, info["fields"]["Content-Type"])})
    assert posted.status_code == 204, posted.text
    return form["objectKey"]


def populate(stack: MotoStack, label: str) -> Person:
    """Text turns, an inline file, two uploads (shared folder and the user's), each add
    run through the four step handlers; then one memory edited (a version)."""
    person = Person(user=f"aws-erase-{label}-{uuid.uuid4().hex[:8]}")
    museum, secret, shared, own, edit = (word(k) for k in "msuoe")
    person.words += [museum, secret, shared, own, edit]

    added = call_api("POST", "add/message", {"user_id": person.user, "conversation_id": "c1",
                                             "messages": [
        {"role": "user", "content": f"I visited the {museum} museum in Lisbon yesterday."},
        {"role": "assistant", "content": "That sounds lovely."}]})
    person.tasks.append(added.body["data"]["task_id"])
    note = base64.b64encode(f"Notes: the launch code name is {secret}.".encode()).decode()
    added = call_api("POST", "add/message", {"user_id": person.user, "conversation_id": "c2",
                                             "messages": [{"role": "user", "content": [
        {"type": "text", "text": "My notes."},
        {"type": "file", "file": {"file_data": note, "file_name": "notes.txt"}}]}]})
    person.tasks.append(added.body["data"]["task_id"])
    keys = [upload("memo.txt", f"Memo: the vault word is {shared}.".encode(), None),
            upload("gate.txt", f"Memo: the gate word is {own}.".encode(), person.user)]
    added = call_api("POST", "memories", {"user_id": person.user, "messages": [{
        "role": "user", "timestamp": int(time.time() * 1000), "content": [
            {"type": "text", "text": "Two memos."},
            *({"type": "doc", "uri": key} for key in keys)]}]}, prefix="/api/v1")
    assert added.status == 202, added.body
    person.tasks.append(added.body["data"]["task_id"])
    for task_id in person.tasks:
        run_steps(task_id, person.user)
        assert stack.task(task_id).status == "completed"

    listed = call_api("POST", "get/memory", {"user_id": person.user, "size": 50}).body["data"]
    target = next(m for m in listed["memory_detail_list"] if museum in m["memory_value"])
    edited = call_api("POST", "update/memory", {"memory_id": target["id"],
                                                "content": f"The user loves the {edit} gallery."})
    assert edited.status == 200, edited.body
    return person


def everything(stack: MotoStack) -> dict[str, list[str]]:
    """Every DynamoDB item, S3 object and OpenSearch document, as text."""
    def text(item: dict[str, Any]) -> str:
        return " ".join(str(v) for v in item.values())

    s3 = stack.s3
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {
        "tasks": [text(i) for i in stack.tables["tasks"].scan()["Items"]],
        "records": [text(i) for i in stack.tables["records"].scan()["Items"]],
        "s3": [k + " " + s3.get_object(Bucket=BUCKET, Key=k)["Body"].read().decode(
            errors="replace") for k in keys],
        "opensearch": [text(d) for index in stack.opensearch.indices.values()
                       for d in index.docs.values()],
    }


def holding(stack: MotoStack, person: Person) -> dict[str, int]:
    """Per store, how many items mention the person (their id or one of their words)."""
    needles = [person.user, *person.words]
    return {store: sum(any(n in item for n in needles) for item in items)
            for store, items in everything(stack).items()}


def test_deleting_a_user_reaches_dynamodb_s3_and_opensearch(stack):
    gone, kept = populate(stack, "a"), populate(stack, "k")
    before = holding(stack, gone)
    assert all(before.values()), before
    memories = [i for i in stack.tables["records"].scan()["Items"]
                if i.get("user_key", "").endswith(f"#U#{gone.user}")]
    index_rows = sum(d["user_id"] == gone.user for index in stack.opensearch.indices.values()
                     for d in index.docs.values())
    kept_before = holding(stack, kept)

    deleted = call_api("POST", "delete/memory", {"user_id": gone.user})
    assert deleted.status == 200, deleted.body
    receipt = deleted.body["data"]["receipt"]
    assert receipt == {"memories": len(memories), "versions": 1, "messages": 4, "requests": 3,
                       "files": 1, "uploads": 2, "work_objects": 0, "index_rows": index_rows,
                       "tasks": 3}
    assert deleted.body["data"]["deleted"] == len(memories) > 0 and index_rows > 0

    assert holding(stack, gone) == {"tasks": 0, "records": 0, "s3": 0, "opensearch": 0}
    assert holding(stack, kept) == kept_before  # every item of the other user is still there
    for task_id in gone.tasks:
        status = call_api("POST", "get/status", {"task_id": task_id})
        assert status.status == 404 and status.body["data"] is None, status.body
    for task_id in kept.tasks:
        assert call_api("POST", "get/status", {"task_id": task_id}).status == 200
    found = call_api("POST", "search/memory", {"user_id": kept.user, "query": kept.words[1]})
    assert any(kept.words[1] in m["memory_value"]
               for m in found.body["data"]["memory_detail_list"]), found.body


def test_everos_delete_by_user_erases_on_aws_too(stack):
    gone = populate(stack, "e")
    deleted = call_api("POST", "memories/delete", {"user_id": gone.user}, prefix="/api/v1")
    assert deleted.status == 200, deleted.body
    assert deleted.body["data"]["receipt"]["tasks"] == 3
    assert holding(stack, gone) == {"tasks": 0, "records": 0, "s3": 0, "opensearch": 0}


def test_steps_running_on_after_the_erase_write_nothing_back(stack):
    """The state machine runs on after the API erased the user: the index step stores
    and indexes, finds its task gone, and removes it all again; the Catch's mark_failed
    recreates no row."""
    user = f"aws-race-{uuid.uuid4().hex[:8]}"
    secret = word("r")
    added = call_api("POST", "add/message", {"user_id": user, "conversation_id": "c1",
                                             "messages": [{"role": "user", "content":
                                                           f"My locker word is {secret} now."}]})
    task_id = added.body["data"]["task_id"]
    ref = TaskRef(tenant_id=TENANT, task_id=task_id, user_id=user).model_dump()
    for step in ("parse", "extract", "dedupe"):
        assert invoke(step, ref) == ref
    work = [o["Key"] for o in stack.s3.list_objects_v2(
        Bucket=BUCKET, Prefix=f"work/{TENANT}/{task_id}/").get("Contents", [])]
    assert work  # the step outputs so far

    deleted = call_api("POST", "delete/memory", {"user_id": user})
    assert deleted.body["data"]["receipt"]["work_objects"] == len(work)
    assert deleted.body["data"]["receipt"]["tasks"] == 1

    with pytest.raises(Exception, match="erased") as raised:
        invoke("index", ref)
    assert type(raised.value).__name__ == "TaskErased"
    invoke("mark_failed", {**ref, "error": {"Error": "TaskErased", "Cause": "erased"}})
    person = Person(user=user, words=[secret])
    assert holding(stack, person) == {"tasks": 0, "records": 0, "s3": 0, "opensearch": 0}
    assert call_api("POST", "get/status", {"task_id": task_id}).status == 404
