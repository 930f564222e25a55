"""MemOS knowledge bases, public memory and delete by agent_id / filter on the local
profile (SQLite, files, the in-process index), through the real resolver in-process: real
PDF / DOCX / TXT files parsed as message files are, passages with file and page, search
with knowledgebase_ids and include_public, the tenant and user partitions, and erasure."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from tests import fixtures_docs as docs
from tests.fakes.embedder import HashingEmbedder

from engram.api.app import create_app
from engram.config import Settings
from engram.local.runtime import build_local_runtime
from engram.local.server import LambdaContext, proxy_event
from engram.models.filters import FilterNode
from engram.models.knowledge import PUBLIC_SCOPE, kb_scope
from engram.services.knowledge import FileInput

TENANT, OTHER = "tenant-a", "tenant-b"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def local(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path / "data"), embedder=HashingEmbedder())
    yield runtime
    runtime.close()


@pytest.fixture
def call(local):
    app = create_app(local.services)

    def call(route: str, body: dict | None = None, tenant: str = TENANT, *, status: int = 200,
             raw: tuple[str, str, bool] | None = None, query: str = "") -> dict:
        if raw is None:
            headers, text, encoded = {"Content-Type": "application/json"}, json.dumps(body), False
        else:
            headers, text, encoded = {"Content-Type": raw[0]}, raw[1], raw[2]
        event = proxy_event("POST", f"/v1/{route}{query}", headers, text, tenant, "127.0.0.1",
                            base64_encoded=encoded)
        response = local_app_resolve(app, event)
        assert response["statusCode"] == status, response["body"]
        return json.loads(response["body"])

    return call


def local_app_resolve(app, event):
    return app.resolve(event, LambdaContext())


def knowledge_base(call, name: str = "handbook", tenant: str = TENANT) -> str:
    return call("create/knowledgebase", {"knowledgebase_name": name}, tenant)["data"]["id"]


def add_text(call, kb: str, text: str, name: str = "notes.txt") -> dict:
    files = call("add/knowledgebase-file", {
        "knowledgebase_id": kb, "file": [{"content": b64(text.encode()), "name": name}]})
    return files["data"][0]


def search(call, user: str, query: str, **extra) -> list[dict]:
    return call("search/memory", {"query": query, "user_id": user, **extra}
                )["data"]["memory_detail_list"]


def test_files_become_passages_with_file_and_page(call, local):
    kb = knowledge_base(call)
    pdf = docs.pdf([docs.text_page(["Cover page"]), docs.text_page(
        ["Refunds over 500 euros need the approval of a regional manager."])])
    added = call("add/knowledgebase-file", {"knowledgebase_id": kb, "file": [
        {"content": b64(pdf), "name": "policy.pdf"},
        {"content": "data:text/plain;base64," + b64(b"Parking passes renew every March.")},
        {"content": b64(docs.docx_document()), "name": "travel.docx"}]})["data"]
    assert [f["status"] for f in added] == ["completed"] * 3
    assert added[0]["pages"] == 2 and added[0]["kind"] == "pdf" and added[0]["passages"] >= 1
    assert added[2]["kind"] == "doc"

    found = search(call, "u1", "who approves refunds over 500 euros", knowledgebase_ids=[kb])
    top = next(d for d in found if d["source"] == "knowledgebase")
    assert "regional manager" in top["memory_value"]
    assert (top["knowledgebase_id"], top["file_name"], top["page"]) == (kb, "policy.pdf", 2)
    assert top["file_id"] == added[0]["id"]
    # without knowledgebase_ids the passages are not searched
    assert all(d["source"] == "user" for d in search(call, "u1", "refunds regional manager"))

    listed = call("get/knowledgebase-file", {"knowledgebase_id": kb, "page": 1,
                                             "page_size": 2})["data"]
    assert listed["total"] == 3 and len(listed["file_detail_list"]) == 2
    by_id = call("get/knowledgebase-file", {"file_ids": [added[1]["id"]]})["data"]
    assert by_id["file_detail_list"][0]["status"] == "completed"


def test_limits_and_bad_files_are_4xx_naming_them(call, local):
    kb = knowledge_base(call)
    many = [{"content": b64(b"x" * 10)} for _ in range(21)]
    body = call("add/knowledgebase-file", {"knowledgebase_id": kb, "file": many}, status=422)
    assert "limit is 20" in body["message"]
    pages = call("add/knowledgebase-file", {"knowledgebase_id": kb, "file": [
        {"content": b64(docs.pdf_pages(201)), "name": "long.pdf"}]}, status=413)
    assert "file[0] (long.pdf)" in pages["message"] and "200" in pages["message"]
    image = call("add/knowledgebase-file", {"knowledgebase_id": kb, "file": [
        {"content": b64(docs.text_png(["hello"])), "name": "a.png"}]}, status=422)
    assert "image" in image["message"] and "PDF, DOCX" in image["message"]
    url = call("add/knowledgebase-file", {"knowledgebase_id": kb, "file": [
        {"content": "http://169.254.169.254/latest/meta-data"}]}, status=422)
    assert "file[0]" in url["message"] and "refused" in url["message"]
    skill = call("add/knowledgebase-file", {"knowledgebase_id": kb, "file": [
        {"content": b64(b"x"), "type": "skill"}]}, status=422)
    assert "file.0.type" in skill["message"]
    # nothing of a refused request was kept
    assert call("get/knowledgebase-file", {"knowledgebase_id": kb})["data"]["total"] == 0
    both = call("get/knowledgebase-file", {"knowledgebase_id": kb, "file_ids": ["x"]},
                status=422)
    assert "exactly one of file_ids or knowledgebase_id" in both["message"]


def test_form_upload(call, local):
    kb = knowledge_base(call)
    boundary = uuid.uuid4().hex
    pdf = docs.pdf([docs.text_page(["The office closes at 18:00 on Fridays."])])
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"hours.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").encode() \
        + pdf + f"\r\n--{boundary}--\r\n".encode()
    added = call("add/knowledgebase-file", raw=(
        f"multipart/form-data; boundary={boundary}", b64(body), True),
        query=f"?knowledgebase_id={kb}")["data"]
    assert added[0]["name"] == "hours.pdf" and added[0]["status"] == "completed"
    found = search(call, "u1", "when does the office close on Friday", knowledgebase_ids=[kb])
    assert any("18:00" in d["memory_value"] for d in found)
    # a form without a knowledge base names the field
    missing = call("add/knowledgebase-file", raw=(
        f"multipart/form-data; boundary={boundary}", b64(body), True), status=422)
    assert "knowledgebase_id" in missing["message"]


def test_another_tenants_knowledge_base_is_not_found(call, local):
    kb = knowledge_base(call)
    file = add_text(call, kb, "Badges are collected at the front desk.")
    for route, body in (
            ("delete/knowledgebase", {"knowledgebase_id": kb}),
            ("add/knowledgebase-file", {"knowledgebase_id": kb, "file": [{"content": b64(b"x")}]}),
            ("get/knowledgebase-file", {"knowledgebase_id": kb}),
            ("get/knowledgebase-file", {"file_ids": [file["id"]]}),
            ("delete/knowledgebase-file", {"file_ids": [file["id"]]}),
            ("search/memory", {"query": "badges", "user_id": "u", "knowledgebase_ids": [kb]}),
            ("add/message", {"user_id": "u", "conversation_id": "c", "allow_knowledgebase_ids":
                             [kb], "messages": [{"role": "user", "content": "hi"}]})):
        assert call(route, body, OTHER, status=404)["code"] == 404, route
    # still whole for its own tenant
    assert call("get/knowledgebase-file", {"file_ids": [file["id"]]})["data"]["total"] == 1


def test_deleting_a_knowledge_base_erases_its_passages_and_files(call, local):
    kb = knowledge_base(call)
    file = add_text(call, kb, "The vault code is qzvault4417 and changes monthly.")
    passages = local.store.ids_for_user(TENANT, kb_scope(kb))
    assert passages and passages == file_passages(local, file["id"])
    objects = local.settings.data_dir / "objects"
    assert any(b"qzvault4417" in p.read_bytes() for p in objects.rglob("*") if p.is_file())

    assert call("delete/knowledgebase", {"knowledgebase_id": kb})["data"]["success"] is True
    assert local.store.get_many(TENANT, passages) == []
    assert local.store.ids_for_user(TENANT, kb_scope(kb)) == []
    assert local.index.remove_user(TENANT, kb_scope(kb)) == 0  # no index row left
    assert not any(b"qzvault4417" in p.read_bytes() for p in objects.rglob("*") if p.is_file())
    assert call("get/knowledgebase-file", {"file_ids": [file["id"]]}, status=404)
    call("search/memory", {"query": "vault", "user_id": "u", "knowledgebase_ids": [kb]},
         status=404)
    assert not any(b"qzvault4417" in p.read_bytes()
                   for p in local.settings.data_dir.glob("*.db*"))


def file_passages(local, file_id: str) -> list[str]:
    return local.services.knowledge.store.get_files(TENANT, [file_id])[0].passage_ids


def test_deleting_a_file_erases_its_passages(call, local):
    kb = knowledge_base(call)
    keep = add_text(call, kb, "Lunch is served from noon in the atrium.", "lunch.txt")
    gone = add_text(call, kb, "The gym opens at six in the basement.", "gym.txt")
    passages = file_passages(local, gone["id"])
    assert passages and local.store.get_many(TENANT, passages)
    assert call("delete/knowledgebase-file", {"file_ids": [gone["id"]]})["data"]["deleted"] == 1
    assert local.store.get_many(TENANT, passages) == []
    found = search(call, "u1", "gym basement lunch atrium", knowledgebase_ids=[kb],
                   relativity=0)
    names = {d.get("file_name") for d in found if d["source"] == "knowledgebase"}
    assert names == {"lunch.txt"}
    assert call("get/knowledgebase-file", {"knowledgebase_id": kb})["data"]["total"] == 1
    assert keep["passages"] == 1


def test_an_adds_memories_written_into_a_knowledge_base(call, local):
    kb = knowledge_base(call)
    said = "The staging server is called qzorion7."
    call("add/message", {"user_id": "writer", "conversation_id": "c", "async_mode": False,
                         "allow_knowledgebase_ids": [kb],
                         "messages": [{"role": "user", "content": said}]})
    found = search(call, "reader", "what is the staging server called", knowledgebase_ids=[kb])
    assert any("qzorion7" in d["memory_value"] and d["source"] == "knowledgebase"
               for d in found)
    assert not any("qzorion7" in d["memory_value"] for d in search(call, "reader", "staging"))

    # deleting the knowledge base unlinks the writer's memories: still theirs, out of it
    call("delete/knowledgebase", {"knowledgebase_id": kb})
    mine = [d for d in search(call, "writer", "what is the staging server called")
            if "qzorion7" in d["memory_value"]]
    assert mine
    assert all(kb not in m.knowledgebase_ids
               for m in local.store.get_many(TENANT, [d["id"] for d in mine]))
    assert local.index.matching_ids(TENANT, FilterNode(), 100, scope=kb_scope(kb)) == []


def test_public_memory_is_readable_by_every_user_but_only_its_owner_changes_it(call, local):
    call("add/message", {"user_id": "alice", "conversation_id": "c", "async_mode": False,
                         "allow_public": True, "messages": [
                             {"role": "user", "content": "The team offsite is in qzlisbon9."}]})
    call("add/message", {"user_id": "alice", "conversation_id": "c", "async_mode": False,
                         "messages": [{"role": "user", "content": "My locker is qzlocker3."}]})
    assert not any("qzlisbon9" in d["memory_value"]
                   for d in search(call, "bob", "where is the team offsite"))
    shared = [d for d in search(call, "bob", "where is the team offsite", include_public=True)
              if "qzlisbon9" in d["memory_value"]]
    assert shared and all(d["public"] and d["source"] == "public" for d in shared)
    # the per-source filter asks for the public source too
    assert any("qzlisbon9" in d["memory_value"] for d in search(
        call, "bob", "team offsite", filter={"public": {"memory_type": "LongTermMemory"}}))
    # alice's private memory never shows up for bob
    assert not any("qzlocker3" in d["memory_value"]
                   for d in search(call, "bob", "locker", include_public=True))
    # another tenant sees nothing of it
    other = call("search/memory", {"query": "team offsite qzlisbon9", "user_id": "bob",
                                   "include_public": True}, OTHER)["data"]["memory_detail_list"]
    assert other == []

    memory_id = shared[0]["id"]
    refused = call("update/memory", {"memory_id": memory_id, "user_id": "bob",
                                     "content": "The offsite is cancelled."}, status=404)
    assert "bob" in refused["message"]
    # bob erasing himself, or deleting his session's memories, leaves it
    call("delete/memory", {"user_id": "bob"})
    still = local.store.get_many(TENANT, [memory_id])[0]
    assert still.status.value == "activated" and still.user_id == "alice"
    # alice may edit her own public memory; it stays public
    call("update/memory", {"memory_id": memory_id, "user_id": "alice",
                           "content": "The team offsite is in qzporto2."})
    assert any("qzporto2" in d["memory_value"]
               for d in search(call, "bob", "team offsite", include_public=True))
    # erasing alice erases her public memories, from the public scope too
    call("delete/memory", {"user_id": "alice"})
    assert not any("qzporto2" in d["memory_value"]
                   for d in search(call, "bob", "team offsite", include_public=True))
    assert local.index.remove_user(TENANT, PUBLIC_SCOPE) == 0


def test_delete_by_agent_id_and_by_filter(call, local):
    def add(user: str, agent: str, text: str, tags: list[str]) -> None:
        call("add/message", {"user_id": user, "agent_id": agent, "conversation_id": "c",
                             "async_mode": False, "tags": tags,
                             "messages": [{"role": "user", "content": text}]})

    add("u1", "planner", "I fly to qzoslo1 on Monday.", ["travel"])
    add("u2", "planner", "I fly to qzrome2 on Tuesday.", ["travel"])
    add("u1", "coach", "I run qzfive3 kilometres daily.", ["sport"])
    deleted = call("delete/memory", {"agent_id": "planner"})["data"]
    assert deleted["deleted"] >= 2
    for user, word in (("u1", "qzoslo1"), ("u2", "qzrome2")):
        assert not any(word in d["memory_value"] for d in search(call, user, "fly"))
    assert any("qzfive3" in d["memory_value"] for d in search(call, "u1", "run kilometres"))
    assert call("delete/memory", {"filter": {"tags": {"contains": "sport"}}}
                )["data"]["deleted"] >= 1
    assert not any("qzfive3" in d["memory_value"] for d in search(call, "u1", "run kilometres"))
    # another tenant's delete touches nothing here
    add("u3", "keeper", "My dog is called qzrex4.", ["pets"])
    assert call("delete/memory", {"agent_id": "keeper"}, OTHER)["data"]["deleted"] == 0
    assert any("qzrex4" in d["memory_value"] for d in search(call, "u3", "dog called"))


@pytest.mark.parametrize("body, named", [
    ({}, "none"),
    ({"user_id": "u", "agent_id": "a"}, "user_id, agent_id"),
    ({"memory_ids": ["m"], "filter": {"agent_id": "a"}}, "memory_ids, filter"),
    ({"filter": {}}, "empty filter"),
    ({"filter": {"nonsense": 1}}, "unknown filter field 'nonsense'"),
])
def test_delete_takes_exactly_one_mode(call, body, named):
    message = call("delete/memory", body, status=422)["message"]
    assert named in message, message


def test_a_url_is_fetched_through_the_ssrf_policy(tmp_path):
    """A file named by URL is fetched server-side by the URL fetcher, under the one SSRF
    policy: an allow-listed origin is read; an address the policy refuses is a 422."""
    from tests.integration.test_multimodal import Origin

    pdf = docs.pdf([docs.text_page(["Visitors sign in at reception before 9."])])
    origin = Origin({"/kb/visitors.pdf": (pdf, "application/pdf")})
    runtime = build_local_runtime(Settings(data_dir=tmp_path / "data",
                                           fetch_allow_hosts=[f"127.0.0.1:{origin.port}"]),
                                  embedder=HashingEmbedder())
    try:
        kb = runtime.services.knowledge.create(TENANT, "front desk", None)
        app = create_app(runtime.services)

        def post(body: dict) -> dict:
            event = proxy_event("POST", "/v1/add/knowledgebase-file",
                                {"Content-Type": "application/json"}, json.dumps(body), TENANT,
                                "127.0.0.1")
            response = app.resolve(event, LambdaContext())
            return {"status": response["statusCode"], **json.loads(response["body"])}

        added = post({"knowledgebase_id": kb.knowledgebase_id,
                      "file": [{"content": origin.url("/kb/visitors.pdf")}]})
        assert added["status"] == 200, added
        assert added["data"][0]["name"] == "visitors.pdf"
        assert added["data"][0]["status"] == "completed"
        missing = post({"knowledgebase_id": kb.knowledgebase_id,
                        "file": [{"content": origin.url("/kb/nothing.pdf")}]})
        assert missing["status"] == 422 and "file[0]" in missing["message"]
        blocked = post({"knowledgebase_id": kb.knowledgebase_id,
                        "file": [{"content": "http://127.0.0.1:9/secret.pdf"}]})
        assert blocked["status"] == 422 and "refused" in blocked["message"]
    finally:
        runtime.close()
        origin.server.shutdown()


@pytest.mark.parametrize("content_type, body, status, named", [
    ("multipart/form-data", "", 400, "boundary"),
    ("multipart/form-data; boundary=xyz", b64(b"--xyz\r\nnot a part"), 400, "could not be parsed"),
    ("multipart/form-data; boundary=xyz", "!!not base64!!", 400, "base64"),
    ("multipart/form-data; boundary=xyz",
     b64(b"--xyz\r\nContent-Disposition: form-data; name=\"other\"; filename=\"a.txt\"\r\n\r\n"
         b"hi\r\n--xyz--\r\n"), 422, "'file' parts"),
])
def test_hostile_forms_are_4xx(call, content_type, body, status, named):
    kb = knowledge_base(call)
    answer = call("add/knowledgebase-file", raw=(content_type, body, True),
                  query=f"?knowledgebase_id={kb}", status=status)
    assert named in answer["message"], answer


def test_forms_elsewhere_are_still_415(call):
    answer = call("search/memory", raw=("multipart/form-data; boundary=xyz", b64(b"x"), True),
                  status=415)
    assert "multipart/form-data" in answer["message"]


def test_memory_routes_do_not_change_a_passage(call, local):
    kb = knowledge_base(call)
    file = add_text(call, kb, "The printer on floor two needs badge access.")
    passage = file_passages(local, file["id"])[0]
    for route, body in (("update/memory", {"memory_id": passage, "content": "x"}),
                        ("delete/memory", {"memory_ids": [passage]})):
        answer = call(route, body, status=422)
        assert "knowledge-base passage" in answer["message"], route
    assert local.store.get_many(TENANT, [passage])[0].status.value == "activated"


def test_a_file_whose_passages_cannot_be_indexed_is_failed_and_leaves_nothing(local):
    class Broken(HashingEmbedder):
        def embed(self, texts):
            raise RuntimeError("embedder down")

    service = local.services.knowledge
    base = service.create(TENANT, "kb", None)
    service.embedder = Broken()
    with pytest.raises(RuntimeError):
        service.add_files(TENANT, base.knowledgebase_id, [
            FileInput(where="file[0]", name="a.txt", data=b"Some text to keep.")])
    (record,) = service.list_files(TENANT, base.knowledgebase_id)
    assert record.status == "failed" and "RuntimeError" in record.error
    assert local.store.ids_for_user(TENANT, kb_scope(base.knowledgebase_id)) == []


def test_the_same_file_added_again_or_at_once_is_one_file(call, local):
    """A client's retry (MemOSClient retries a call that timed out) or the same add sent
    at once from several threads: one record, one set of passages."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    kb = knowledge_base(call)
    text = "Expense reports are due on the fifth working day of each month."
    first = add_text(call, kb, text, name="expenses.txt")
    again = add_text(call, kb, text, name="expenses.txt")
    assert again["id"] == first["id"] and again["status"] == "completed"
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: add_text(call, kb, "Travel is booked through the "
                                              "intranet portal only.", "travel.txt")["id"],
                           range(8)))
    assert len(ids) == 1
    listed = call("get/knowledgebase-file", {"knowledgebase_id": kb})["data"]
    assert sorted(f["name"] for f in listed["file_detail_list"]) == ["expenses.txt",
                                                                     "travel.txt"]
    passages = local.store.ids_for_user(TENANT, kb_scope(kb))
    values = [m.memory_value for m in local.store.get_many(TENANT, passages)]
    assert sum("Travel is booked" in v for v in values) == 1, values
    # another file name, or other bytes, is another file
    assert add_text(call, kb, text, name="expenses-2024.txt")["id"] != first["id"]
    assert add_text(call, kb, text + " ", name="expenses.txt")["id"] != first["id"]


def test_a_file_name_with_a_control_character_is_refused(call):
    kb = knowledge_base(call)
    body = call("add/knowledgebase-file", {"knowledgebase_id": kb, "file": [
        {"content": b64(b"Plain text."), "name": "a\u0000b.txt"}]}, status=422)
    assert "file[0].name" in body["message"] and "control" in body["message"]


def test_a_file_left_running_by_a_dead_process_is_read_again(call, local):
    """A process killed while it read a file leaves the file "running" and some of its
    passages written. Added again within the lease, the record answers as it is (another
    request may be reading it); past the lease it is read again, the orphans erased."""
    from engram.services import knowledge as kb_module  # noqa: PLC0415

    kb = knowledge_base(call)
    text = "Badges are renewed every January at the front desk."
    first = add_text(call, kb, text, name="badges.txt")
    record = local.services.knowledge.store.get_files(TENANT, [first["id"]])[0]
    passages = local.store.get_many(TENANT, record.passage_ids)
    # as a dead process leaves it: running, its passages written but not recorded
    record.status, record.passage_ids = "running", []
    local.services.knowledge.store.put_file(record)
    assert add_text(call, kb, text, name="badges.txt")["status"] == "running"
    record.update_time -= kb_module.RUNNING_LEASE_MS + 1
    local.services.knowledge.store.put_file(record)
    again = add_text(call, kb, text, name="badges.txt")
    assert again["id"] == first["id"] and again["status"] == "completed"
    values = [m.memory_value for m in local.store.get_many(
        TENANT, local.store.ids_for_user(TENANT, kb_scope(kb)))]
    assert sum("Badges are renewed" in v for v in values) == 1, values
    assert all(p.id not in local.store.ids_for_user(TENANT, kb_scope(kb)) for p in passages)
