"""Drive EverOS's official Python SDK (PyPI everos==0.1.1) against an Engram server.

Run with the test-only virtualenv (tests/compat/setup_everos_venv.sh makes it):

    .venv-everos/bin/python tests/compat/everos_client_flow.py \
        --base-url http://127.0.0.1:PORT --api-key KEY --user USER \
        --pdf report.pdf --image text.png --other-key KEY2

The SDK is used unmodified: its transparent multimodal add signs the local files, uploads
them by S3 POST to the returned forms and sends the object keys; then task status,
search, get, group and agent adds, groups, senders and settings, flush and delete. Every
step checks the content on top of the SDK's own response models. Success prints exactly one line
"everos client flow ok"; a failure raises FlowFailure naming the step. Standard library
plus the SDK only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx
from everos import EverOS, NotFoundError, PermissionDeniedError, UnprocessableEntityError

TIMESTAMP_MS = 1766041646311
TASK_TIMEOUT_S = 120.0


class FlowFailure(AssertionError):
    pass


_step = "start"


def at(step: str) -> None:
    global _step
    _step = step


def show(obj: Any) -> str:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump(mode="json")
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text if len(text) <= 3000 else text[:3000] + "...(cut)"


def check(condition: bool, what: str, got: Any = None) -> None:
    if not condition:
        raise FlowFailure(f"[{_step}] {what}" + (f"; got {show(got)}" if got is not None else ""))


def wait(client: EverOS, task_id: str) -> Any:
    deadline = time.monotonic() + TASK_TIMEOUT_S
    while time.monotonic() < deadline:
        status = client.v1.tasks.retrieve(task_id)
        if status.data.status != "processing":
            return status
        time.sleep(0.2)
    raise FlowFailure(f"[{_step}] task {task_id} still processing after {TASK_TIMEOUT_S} s")


def run(args: argparse.Namespace) -> None:
    client = EverOS(api_key=args.api_key, base_url=args.base_url, max_retries=0)
    user = args.user

    at("multimodal add: local files are signed, uploaded and replaced by object keys")
    added = client.v1.memories.add(user_id=user, session_id="s1", async_mode=False, messages=[
        {"role": "user", "timestamp": TIMESTAMP_MS, "content": [
            {"type": "text", "text": "I am studying MemOS for the Falcon project."},
            {"type": "pdf", "uri": args.pdf},
            {"type": "image", "uri": args.image},
        ]},
        {"role": "assistant", "timestamp": TIMESTAMP_MS + 1000,
         "content": "Okay, do you need any help?"},
    ])
    # files make an add asynchronous whatever async_mode says
    check(added.data is not None and added.data.status == "accumulated",
          "multimodal add should be accepted for async processing", added)
    check(added.data.message_count == 2, "message_count should be 2", added)

    at("task status")
    done = wait(client, added.data.task_id)
    check(done.data.status == "success", "task should succeed", done)
    items = done.model_dump()["data"].get("items") or []
    check(len(items) == 2 and all(i["state"] == "completed" for i in items),
          "both files should be processed", done)
    check(all(i["uri"].startswith("uploads/") for i in items),
          "items should point at the uploaded object keys", done)

    at("search finds the PDF's page 2")
    found = client.v1.memories.search(
        filters={"user_id": user}, query="When did the Falcon launch move?",
        memory_types=["episodic_memory", "profile", "raw_message", "agent_memory"], top_k=5)
    check(found.data is not None and found.data.query.text == "When did the Falcon launch move?",
          "search should echo the query", found)
    episodes = found.data.episodes or []
    hits = [e for e in episodes if "March 14" in (e.episode or "")]
    check(bool(hits), "an episode should hold the launch date", found)
    sources = hits[0].model_dump().get("sources") or []
    check(any(s.endswith("#page=2") for s in sources), "the page should be in sources", hits[0])
    check(hits[0].timestamp is not None and hits[0].user_id == user, "episode fields", hits[0])

    at("search finds the image")
    found = client.v1.memories.search(filters={"user_id": user, "session_id": "s1"},
                                      query="shared image", memory_types=["episodic_memory"])
    check(any("shared an image" in (e.episode or "") for e in found.data.episodes or []),
          "an episode should say the user shared an image", found)

    at("get episodic memory, paged")
    page = client.v1.memories.get(filters={"user_id": user}, memory_type="episodic_memory",
                                  page=1, page_size=3)
    check(page.data is not None and page.data.count == 3 and (page.data.total_count or 0) > 3,
          "get should page the episodes", page)

    at("low-level object.sign + S3 POST + add with the key")
    signed = client.v1.object.sign(object_list=[
        {"file_id": "notes-1", "file_name": "notes.txt", "file_type": "file"}])
    check(signed.status == 0 and signed.error == "OK", "sign should succeed", signed)
    item = signed.result.data.object_list[0]
    check(item.file_id == "notes-1" and item.object_key.endswith("/notes.txt"),
          "sign should echo the file and return its key", signed)
    info = item.object_signed_info
    check(info.max_size == 100 * 1024 * 1024, "a file's limit is 100 MB", signed)
    upload = httpx.post(info.url, data=info.fields, timeout=60, files={
        "file": ("notes.txt", b"My passport number ends in 4242.", "text/plain")})
    check(upload.status_code == 204, "the upload should answer 204", upload.text)
    added = client.v1.memories.add(user_id=user, messages=[
        {"role": "user", "timestamp": TIMESTAMP_MS,
         "content": [{"type": "doc", "uri": item.object_key, "name": "notes.txt"}]}])
    check(wait(client, added.data.task_id).data.status == "success", "doc add should succeed")
    found = client.v1.memories.search(filters={"user_id": user}, query="passport number")
    check(any("4242" in (e.episode or "") for e in found.data.episodes or []),
          "the uploaded text should be searchable", found)

    at("another tenant's key and a key never uploaded are refused")
    other = EverOS(api_key=args.other_key, base_url=args.base_url, max_retries=0)
    try:
        other.v1.memories.add(user_id=user, messages=[
            {"role": "user", "timestamp": TIMESTAMP_MS,
             "content": [{"type": "doc", "uri": item.object_key}]}])
        raise FlowFailure(f"[{_step}] another tenant's key was accepted")
    except PermissionDeniedError:
        pass
    never = client.v1.object.sign(object_list=[
        {"file_id": "x", "file_name": "never.pdf", "file_type": "file"}])
    try:
        client.v1.memories.add(user_id=user, messages=[
            {"role": "user", "timestamp": TIMESTAMP_MS,
             "content": [{"type": "pdf", "uri": never.result.data.object_list[0].object_key}]}])
        raise FlowFailure(f"[{_step}] a key never uploaded was accepted")
    except NotFoundError:
        pass

    at("senders and groups: a sender's name speaks for its group messages")
    group = f"{user}-team"
    alice = f"{user}-alice"
    made = client.v1.senders.create(sender_id=alice, name="Alice")
    check(made.data is not None and made.data.sender_id == alice and made.data.name == "Alice",
          "senders.create should answer the sender", made)
    check(bool(made.data.created_at) and bool(made.data.updated_at), "sender times", made)
    made = client.v1.groups.create(group_id=group, name="Offsite crew")
    check(made.data is not None and made.data.group_id == group
          and made.data.name == "Offsite crew", "groups.create should answer the group", made)

    added = client.v1.memories.group.add(group_id=group, async_mode=False, messages=[
        {"role": "user", "timestamp": TIMESTAMP_MS, "sender_id": alice,
         "content": "I booked the team offsite in Lisbon."},
        {"role": "user", "timestamp": TIMESTAMP_MS + 1000, "sender_id": "u-bob",
         "sender_name": "Bob", "content": "I will bring the projector."}])
    check(added.data.status == "extracted", "a sync group add should be extracted", added)
    found = client.v1.memories.search(filters={"group_id": group}, query="offsite Lisbon")
    hits = [e for e in found.data.episodes or [] if "Lisbon" in (e.episode or "")]
    check(bool(hits) and hits[0].group_id == group, "the group's episode should be found", found)
    check("Alice" in hits[0].episode, "the speaker should be named", hits[0])
    flushed = client.v1.memories.group.flush(group_id=group)
    check(flushed.data.status == "no_extraction", "nothing is pending to flush", flushed)

    at("groups and senders: read, patch, and another tenant's ids")
    got = client.v1.groups.retrieve(group)
    check(got.data.name == "Offsite crew", "groups.retrieve should answer the group", got)
    check(got.model_dump().get("data", {}).get("sender_ids") == sorted([alice, "u-bob"]),
          "the group add should have recorded its members", got)
    patched = client.v1.groups.patch(group, description="Lisbon, spring")
    check(patched.data.description == "Lisbon, spring" and patched.data.name == "Offsite crew",
          "groups.patch should change only the description", patched)
    bob = client.v1.senders.retrieve("u-bob")
    check(bob.data.name == "Bob", "a group message's sender_name should name the sender", bob)
    renamed = client.v1.senders.patch("u-bob", name="Robert")
    check(renamed.data.name == "Robert", "senders.patch should rename", renamed)
    for call in (lambda: other.v1.groups.retrieve(group),
                 lambda: other.v1.groups.patch(group, name="taken"),
                 lambda: other.v1.senders.retrieve(alice),
                 lambda: other.v1.senders.patch(alice, name="Mallory")):
        try:
            call()
            raise FlowFailure(f"[{_step}] another tenant read or changed a group or sender")
        except NotFoundError:
            pass
    check(client.v1.senders.retrieve(alice).data.name == "Alice", "still Alice")

    at("settings")
    settings = client.v1.settings.retrieve()
    check(settings.data is not None and settings.data.timezone == "UTC",
          "settings should start from the defaults", settings)
    updated = client.v1.settings.update(timezone="Europe/Lisbon", extraction_mode="pro",
                                        llm_custom_setting={"extraction": {
                                            "provider": "openai", "model": "gpt-4o-mini"}})
    check(updated.data.timezone == "Europe/Lisbon" and updated.data.extraction_mode == "pro",
          "settings.update should change what it was given", updated)
    check(updated.data.boundary_detection_timeout == settings.data.boundary_detection_timeout
          and updated.data.created_at == settings.data.created_at, "the rest stays", updated)
    check(client.v1.settings.retrieve().data.llm_custom_setting == {
        "extraction": {"provider": "openai", "model": "gpt-4o-mini"}}, "stored")
    check(other.v1.settings.retrieve().data.timezone == "UTC", "settings are per tenant")
    try:
        client.v1.settings.update(timezone="Mars/Olympus_Mons")
        raise FlowFailure(f"[{_step}] an unknown time zone was accepted")
    except UnprocessableEntityError as exc:
        check("timezone" in str(exc), "the 422 should name the field", str(exc))

    at("agent memory")
    added = client.v1.memories.agent.add(user_id=user, async_mode=False, messages=[
        {"role": "user", "timestamp": TIMESTAMP_MS, "content": "Find a flight from SFO to JFK"},
        {"role": "assistant", "timestamp": TIMESTAMP_MS + 1, "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {
                "name": "search_flights", "arguments": '{"from": "SFO", "to": "JFK"}'}}]},
        {"role": "tool", "timestamp": TIMESTAMP_MS + 2, "tool_call_id": "call_1",
         "content": "UA 123 departs 9:05, $300"},
        {"role": "assistant", "timestamp": TIMESTAMP_MS + 3,
         "content": "UA 123 at 9:05 costs $300."}])
    check(added.data.status == "extracted", "a sync agent add should be extracted", added)
    found = client.v1.memories.search(filters={"user_id": user}, query="flight SFO JFK",
                                      memory_types=["agent_memory"])
    memory = found.data.agent_memory
    check(memory is not None and any("search_flights" in (c.approach or "")
                                     for c in memory.cases or []), "a case should be found", found)
    check(any(s.name == "search_flights" for s in memory.skills or []), "a skill", found)
    cases = client.v1.memories.get(filters={"user_id": user}, memory_type="agent_case")
    check(bool(cases.data.agent_cases), "get agent_case should list it", cases)
    check(client.v1.memories.agent.flush(user_id=user).data.status == "no_extraction", "flush")
    check(client.v1.memories.flush(user_id=user).data.status == "no_extraction", "flush")

    at("delete one memory, then the user's")
    target = page.data.episodes[0]
    client.v1.memories.delete(memory_id=target.id)
    again = client.v1.memories.get(filters={"user_id": user}, memory_type="episodic_memory",
                                   page_size=100)
    check(all(e.id != target.id for e in again.data.episodes or []), "deleted memory gone",
          again)
    client.v1.memories.delete(user_id=user)
    empty = client.v1.memories.search(filters={"user_id": user}, query="Falcon launch")
    check(not empty.data.episodes, "nothing should be left after deleting the user", empty)

    print("everos client flow ok")


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--base-url", "--api-key", "--other-key", "--user", "--pdf", "--image"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    try:
        run(args)
    except FlowFailure as failure:
        print(f"FAILED {failure}", file=sys.stderr)
        return 1
    except Exception as exc:  # the SDK's own errors: name the step they happened in
        print(f"FAILED [{_step}] {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
