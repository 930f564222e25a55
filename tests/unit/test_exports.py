"""Export and import pieces without a server: the file readers of `engram import` (format
detection, ChatGPT's mapping tree, LoCoMo and LongMemEval ids), ExportService.restore's
rules, and the export/import and mem0 export routes through the real resolver."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from tests.fakes.embedder import HashingEmbedder

from engram.api.app import create_app
from engram.config import Settings
from engram.imports.sources import (
    AddBatch,
    ImportFormatError,
    RecordBatch,
    chatgpt_messages,
    detect,
    read,
)
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "chatgpt_conversations.json"


@pytest.fixture
def runtime(tmp_path):
    rt = build_local_runtime(Settings(data_dir=tmp_path / "data", api_keys={"k": "tenant-a"}),
                             embedder=HashingEmbedder())
    yield rt
    rt.close()


@pytest.fixture
def call(runtime):
    app = create_app(runtime.services)

    def call(path: str, body: dict, tenant: str = "tenant-a"):
        event = proxy_event("POST", path, {"Content-Type": "application/json"},
                            json.dumps(body), tenant, "127.0.0.1")
        response = app.resolve(event, LambdaContext())
        return response["statusCode"], json.loads(response["body"])

    return call


def add(call, user: str, *texts: str, conversation: str = "c1", **extra) -> None:
    status, body = call("/v1/add/message", {
        "user_id": user, "conversation_id": conversation, "async_mode": False, **extra,
        "messages": [{"role": "user", "content": t} for t in texts]})
    assert status == 200, body


def exported(call, user: str, tenant: str = "tenant-a") -> list[dict]:
    status, body = call("/v1/export/memory", {"user_id": user, "limit": 500}, tenant)
    assert status == 200, body
    return body["data"]["records"]


# --- readers ------------------------------------------------------------------------

def locomo_file(path: Path) -> Path:
    path.write_text(json.dumps([{"sample_id": "conv-7", "qa": [], "conversation": {
        "speaker_a": "Caroline", "speaker_b": "Melanie",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [{"speaker": "Caroline", "dia_id": "D1:1", "text": "I went to a LGBTQ group."},
                      {"speaker": "Melanie", "dia_id": "D1:2", "text": "That's great!",
                       "blip_caption": "a rainbow flag"}],
        "session_2_date_time": "10:00 am on 9 May, 2023",
        "session_2": [{"speaker": "Melanie", "dia_id": "D2:1", "text": "I paint sunsets."}]}}]))
    return path


def longmemeval_file(path: Path) -> Path:
    path.write_text(json.dumps([{
        "question_id": "q1", "question_type": "single-session-user", "question": "?",
        "answer": "x", "question_date": "2023/05/30 (Tue) 23:42",
        "haystack_session_ids": ["s1"], "haystack_dates": ["2023/05/20 (Sat) 10:00"],
        "answer_session_ids": ["s1"],
        "haystack_sessions": [[{"role": "user", "content": "I adopted a cat named Miso."},
                               {"role": "assistant", "content": "Congratulations!"}]]}]))
    return path


def test_each_format_is_detected(tmp_path):
    assert detect(FIXTURE) == "chatgpt"
    assert detect(locomo_file(tmp_path / "locomo.json")) == "locomo"
    assert detect(longmemeval_file(tmp_path / "lme.json")) == "longmemeval"
    export = tmp_path / "export.jsonl"
    export.write_text('{"format": "engram-export", "version": 1, "user_id": "u", '
                      '"exported_at": 1}\n')
    assert detect(export) == "engram"
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(ImportFormatError, match="not a format engram import knows"):
        detect(other)
    with pytest.raises(ImportFormatError, match="pass --user"):
        read(FIXTURE, "auto", 10, None)


def test_chatgpt_follows_the_shown_branch_in_order():
    conversation = json.loads(FIXTURE.read_text())[0]
    messages = chatgpt_messages(conversation)
    assert [m["message_id"][-2:] for m in messages] == ["02", "03", "04", "05", "06"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["chat_time"] == conversation["mapping"][
        "a1b2c3d4-0000-4000-8000-000000000002"]["message"]["create_time"]
    assert not any("OLD DRAFT" in m["content"] for m in messages)  # regenerated away
    tools = chatgpt_messages(json.loads(FIXTURE.read_text())[1])
    assert [m["content"][:6] for m in tools] == ["I use ", "uv plu", "My wor", "Debian"]
    assert tools[2]["content"] == "My work laptop runs Debian 12 with Python 3.11."


def test_batches_are_cut_the_same_way_every_time():
    first = read(FIXTURE, "chatgpt", 2, "u1")
    assert [b.size for b in first] == [2, 2, 1, 2, 2]
    assert all(isinstance(b, AddBatch) and b.user_id == "u1" for b in first)
    again = read(FIXTURE, "chatgpt", 2, "u1")
    assert [b.messages for b in again] == [b.messages for b in first]


def test_locomo_and_longmemeval_use_the_benchmark_ids(tmp_path):
    batches = read(locomo_file(tmp_path / "locomo.json"), "auto", 50, None)
    assert [(b.user_id, b.conversation_id) for b in batches] == [
        ("conv-7", "conv-7-session_1"), ("conv-7", "conv-7-session_2")]
    first = batches[0].messages
    assert [m["message_id"] for m in first] == ["conv-7:D1:1", "conv-7:D1:2"]
    assert first[1]["content"] == "Melanie: That's great! [image: a rainbow flag]"
    assert first[0]["chat_time"] == "2023-05-08T13:56:00+00:00"
    lme = read(longmemeval_file(tmp_path / "lme.json"), "auto", 50, "me")
    assert [(b.user_id, b.conversation_id) for b in lme] == [("me", "s1")]
    assert [m["message_id"] for m in lme[0].messages] == ["s1#0", "s1#1"]


def test_an_export_line_that_is_not_a_record_is_named(tmp_path):
    export = tmp_path / "export.jsonl"
    export.write_text('{"format": "engram-export", "version": 1, "user_id": "u", '
                      '"exported_at": 1}\n{"kind": "memory", "id": "x"}\n')
    with pytest.raises(ImportFormatError, match="line 2"):
        read(export, "engram", 10, None)


# --- routes -------------------------------------------------------------------------

def test_restore_refuses_another_users_memory_and_shared_scopes(call):
    add(call, "alice", "I live in Oslo.")
    records = exported(call, "alice")
    status, body = call("/v1/import/memory", {"user_id": "bob", "records": records})
    assert status == 409 and "belongs to another user" in body["message"]
    # a shared scope (public memories, knowledge bases) is never a user to import into
    status, body = call("/v1/import/memory", {"user_id": "\x1fpublic", "records": records})
    assert status == 422 and body["message"].startswith("user_id:"), body
    twice = {"records": records + records}
    status, body = call("/v1/import/memory", twice)
    assert status == 422 and "repeats records[0].id" in body["message"]
    status, body = call("/v1/import/memory", {"records": [{"id": "x"}]})
    assert status == 422 and "records.0" in body["message"]


def test_restore_skips_what_the_user_already_remembers(call):
    add(call, "carol", "I play the cello.")
    records = exported(call, "carol")
    fresh = [{**r, "id": r["id"] + "-copy"} for r in records]  # same memory, new id
    status, body = call("/v1/import/memory", {"records": fresh})
    assert status == 200 and body["data"]["written"] == []
    assert body["data"]["skipped"] == [r["id"] for r in fresh]
    retired = [{**r, "id": r["id"] + "-gone", "status": "deleted"} for r in records]
    status, body = call("/v1/import/memory", {"records": retired})
    assert status == 200 and len(body["data"]["written"]) == len(records)
    assert [r["id"] for r in exported(call, "carol")] == [r["id"] for r in records]


def test_export_pages_and_cursor_errors(call):
    add(call, "dave", "I like chess.", "I have a dog named Rex.", "I work in Madrid.")
    everything = exported(call, "dave")
    seen, cursor = [], None
    while True:
        body = {"user_id": "dave", "limit": 1, **({"cursor": cursor} if cursor else {})}
        data = call("/v1/export/memory", body)[1]["data"]
        assert data["header"]["user_id"] == "dave"
        seen += [r["id"] for r in data["records"]]
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert seen == [r["id"] for r in everything] and len(seen) >= 3
    status, body = call("/v1/export/memory", {"user_id": "dave", "cursor": "bm90LWpzb24"})
    assert status == 422 and body["message"].startswith("cursor:")
    huge = base64.urlsafe_b64encode(b'[99999999999999999999999, "x"]').decode()
    status, body = call("/v1/export/memory", {"user_id": "dave", "cursor": huge})
    assert status == 422 and body["message"].startswith("cursor:")
    status, body = call("/v1/export/memory", {"user_id": "dave", "limit": 501})
    assert status == 422 and "limit" in body["message"]
    assert exported(call, "dave", tenant="tenant-b") == []


def test_mem0_exports_create_then_get(call):
    add(call, "erin", "I run marathons.", conversation="run-1", agent_id="coach")
    add(call, "erin", "I drink oat milk.", conversation="run-2")
    status, created = call("/v1/exports/", {"schema": {"title": "Profile"},
                                            "filters": {"AND": [{"user_id": "erin"},
                                                                {"run_id": "run-1"}]}})
    assert status == 200, created
    assert created["message"].startswith("Memory export request received")
    status, got = call("/v1/exports/get/", {"memory_export_id": created["id"]})
    assert status == 200, got
    assert got["schema"] == {"title": "Profile"} and got["user_id"] == "erin"
    assert got["memories"] and all(m["run_id"] == "run-1" for m in got["memories"])
    assert all(m["agent_id"] == "coach" for m in got["memories"])
    status, latest = call("/v1/exports/", {"schema": "{}", "user_id": "erin"})
    status, got = call("/v1/exports/get/", {"filters": {"user_id": "erin"}})
    assert got["id"] == latest["id"]
    assert {m["run_id"] for m in got["memories"]} == {"run-1", "run-2"}
    assert call("/v1/exports/get/", {"memory_export_id": created["id"]},
                tenant="tenant-b")[0] == 404
    status, body = call("/v1/exports/", {"schema": {}})
    assert status == 422 and "user_id" in body["message"]
    status, body = call("/v1/exports/", {"schema": {}, "filters": {"created_at": {"gt": 1}}})
    assert status == 422 and "filters.created_at" in body["message"]
    status, body = call("/v1/exports/", {"user_id": "erin"})
    assert status == 422 and "schema" in body["message"]
    # erasing the user erases the export requests that name them
    assert call("/v1/delete/memory", {"user_id": "erin"})[0] == 200
    assert call("/v1/exports/get/", {"memory_export_id": created["id"]})[0] == 404
    assert call("/v1/exports/get/", {"filters": {"user_id": "erin"}})[0] == 404


def test_record_batches_keep_the_import_user(tmp_path, call):
    add(call, "frank", "I collect stamps.")
    export = tmp_path / "export.jsonl"
    header = {"format": "engram-export", "version": 1, "user_id": "frank", "exported_at": 1}
    export.write_text("\n".join(json.dumps(x) for x in [header, *exported(call, "frank")]))
    batches = read(export, "auto", 500, "frank-copy")
    assert all(isinstance(b, RecordBatch) and b.user_id == "frank-copy" for b in batches)
