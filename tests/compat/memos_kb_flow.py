"""Drive MemOS's official Python client (PyPI memoryos) through knowledge bases, public
memory and delete by agent_id / filter against an Engram server, with real files.

    .venv-compat/bin/python tests/compat/memos_kb_flow.py --base-url http://127.0.0.1:PORT/v1 \
        --api-key KEY --other-api-key KEY_OF_ANOTHER_TENANT --user USER --files DIR

DIR holds policy.pdf, travel.docx and notes.txt (the pytest side makes them). Every client
method of the knowledge-base API runs unmodified: create_knowledgebase,
add_knowledgebase_file_form (multipart upload), add_knowledgebase_file_json (base64),
get_knowledgebase_file (by knowledge base and by file ids), search_memory with
knowledgebase_ids, add_message with allow_knowledgebase_ids / allow_public,
delete_knowledgebase_file, delete_memory by agent_id and by filter, delete_knowledgebase.
Success prints exactly one line "memos kb flow ok". Standard library plus the client.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

import memos_client_flow as base
from memos_client_flow import FlowFailure, _isolate_memos_import, at, check, describe, show

PDF_FACT = "regional manager"  # in policy.pdf, page 2
TXT_FACT = "qzparking"  # in notes.txt


def refused(step: str, call: Any, status: int) -> None:
    """`call()` must fail with HTTP `status` (the client retries, then re-raises)."""
    try:
        answer = call()
    except Exception as exc:  # noqa: BLE001 - the client raises requests' HTTPError
        got = getattr(getattr(exc, "response", None), "status_code", None)
        check(got == status, step, f"expected HTTP {status}, got {describe(exc)}")
        return
    raise FlowFailure(f"[{step}] expected HTTP {status}, got a success: {show(answer)}")


def run(base_url: str, api_key: str, other_key: str, user: str, files: Path) -> None:
    _isolate_memos_import()
    from memos.api.client import MemOSClient

    client = MemOSClient(api_key=api_key, base_url=base_url)
    other = MemOSClient(api_key=other_key, base_url=base_url)

    step = at("create_knowledgebase")
    created = client.create_knowledgebase("Company handbook", "policies and notes")
    kb = created.knowledgebase_id
    check(bool(kb), step, "no knowledge base id", created)

    step = at("add_knowledgebase_file_form")
    uploaded = client.add_knowledgebase_file_form(
        kb, [str(files / "policy.pdf"), str(files / "travel.docx")])
    check([f["name"] for f in uploaded.data] == ["policy.pdf", "travel.docx"], step,
          "the uploaded files are not named as sent", uploaded)
    check(all(f["status"] == "completed" and f["passages"] >= 1 for f in uploaded.data), step,
          "a file was not read into passages", uploaded)
    check(uploaded.data[0]["pages"] == 2, step, "policy.pdf should have 2 pages", uploaded)

    step = at("add_knowledgebase_file_json")
    text = (files / "notes.txt").read_bytes()
    added = client.add_knowledgebase_file_json(kb, [
        {"content": base64.b64encode(text).decode(), "name": "notes.txt"}])
    check(len(added.data) == 1 and added.data[0]["status"] == "completed", step,
          "notes.txt was not read", added)
    notes_id = added.data[0]["id"]

    step = at("get_knowledgebase_file by knowledgebase_id")
    listed = client.get_knowledgebase_file(knowledgebase_id=kb, page=1, page_size=10)
    check(listed.data.total == 3 and [f.model_dump()["status"] for f in listed.files]
          == ["completed"] * 3, step, "expected 3 completed files", listed)
    step = at("get_knowledgebase_file by file_ids")
    by_id = client.get_knowledgebase_file(file_ids=[notes_id])
    check([f.model_dump()["id"] for f in by_id.files] == [notes_id], step,
          "file_ids did not return that file", by_id)

    step = at("search_memory with knowledgebase_ids")
    found = client.search_memory("Who must approve large refunds?", user_id=user,
                                 knowledgebase_ids=[kb], relativity=0)
    passages = [m.model_dump() for m in found.memories]
    hit = next((m for m in passages if PDF_FACT in m["memory_value"]), None)
    check(hit is not None and hit["source"] == "knowledgebase" and hit["page"] == 2
          and hit["file_name"] == "policy.pdf", step,
          "the policy.pdf passage (page 2) was not found", found)

    step = at("add_message with allow_knowledgebase_ids and allow_public")
    writer = f"{user}-writer"
    client.add_message([{"role": "user", "content": "The build server is called qzhelios."}],
                       user_id=writer, conversation_id="kb-flow", async_mode=False,
                       allow_public=True, allow_knowledgebase_ids=[kb], agent_id="kb-agent")
    found = client.search_memory("What is the build server called?", user_id=user,
                                 knowledgebase_ids=[kb], relativity=0)
    check(any("qzhelios" in m.model_dump()["memory_value"] for m in found.memories), step,
          "the add's memory was not found in the knowledge base", found)
    step = at("search_memory public source")
    found = client.search_memory("What is the build server called?", user_id=user,
                                 filter={"user": {}, "public": {}}, relativity=0)
    public = [m.model_dump() for m in found.memories if "qzhelios" in m.model_dump()[
        "memory_value"]]
    check(public and all(m["public"] and m["source"] == "public" for m in public), step,
          "another user's public memory was not found, marked public", found)

    step = at("another tenant")
    refused(step, lambda: other.get_knowledgebase_file(knowledgebase_id=kb), 404)
    refused(step, lambda: other.delete_knowledgebase(kb), 404)
    refused(step, lambda: other.delete_knowledgebase_file([notes_id]), 404)
    refused(step, lambda: other.search_memory("refunds", user_id=user,
                                              knowledgebase_ids=[kb]), 404)

    step = at("delete_knowledgebase_file")
    deleted = client.delete_knowledgebase_file([notes_id])
    check(deleted.success, step, "not deleted", deleted)
    refused(step, lambda: client.get_knowledgebase_file(file_ids=[notes_id]), 404)
    found = client.search_memory("parking", user_id=user, knowledgebase_ids=[kb], relativity=0)
    check(not any(TXT_FACT in m.model_dump()["memory_value"] for m in found.memories), step,
          "a deleted file's passage is still found", found)

    step = at("delete_memory by agent_id")
    gone = client.delete_memory(agent_id="kb-agent")
    check(gone.success, step, "not deleted", gone)
    found = client.search_memory("build server", user_id=writer, relativity=0)
    check(not any("qzhelios" in m.model_dump()["memory_value"] for m in found.memories),
          step, "the agent's memory is still found", found)

    step = at("delete_memory by filter")
    client.add_message([{"role": "user", "content": "My parking spot is qzspot12."}],
                       user_id=writer, conversation_id="kb-flow", async_mode=False,
                       tags=["parking"])
    gone = client.delete_memory(filter={"tags": {"contains": "parking"}})
    check(gone.success, step, "not deleted", gone)
    found = client.search_memory("parking spot", user_id=writer, relativity=0)
    check(not any("qzspot12" in m.model_dump()["memory_value"] for m in found.memories),
          step, "the filtered memory is still found", found)

    step = at("delete_knowledgebase")
    deleted = client.delete_knowledgebase(kb)
    check(deleted.success, step, "not deleted", deleted)
    refused(step, lambda: client.get_knowledgebase_file(knowledgebase_id=kb), 404)
    refused(step, lambda: client.search_memory("refunds", user_id=user,
                                               knowledgebase_ids=[kb]), 404)

    print("memos kb flow ok", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--other-api-key", required=True, help="a key of another tenant")
    parser.add_argument("--user", required=True)
    parser.add_argument("--files", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        run(args.base_url.rstrip("/"), args.api_key, args.other_api_key, args.user, args.files)
    except FlowFailure:
        raise
    except Exception as exc:
        raise FlowFailure(f"[{base._current_step}] {describe(exc)}") from exc
    return 0


if __name__ == "__main__":
    sys.exit(main())
