"""Deleting a user erases them, on a real `engram serve` over HTTP.

A user adds text turns, an inline file and a `data:` URL image (MemOS parts) and two
uploaded files (EverOS: object/sign → POST /uploads → an add naming the keys, one signed
without userId as the SDK does, one with it), and edits a memory (a version in its
history); every text carries words no other data holds. After `delete/memory
{"user_id"}` (and EverOS's `memories/delete {"user_id"}`): search, get/memory and
get/message are empty, get/status of each of their tasks is a 404, the receipt counts
what the stores held, and no file under the data directory — engram.db, index.db, their
-wal and -shm, every object — holds any of those words or file bytes. Another user's data
stays, findable, and its words are still on disk (the scan would see a leftover).

The pipeline side: a task still queued or running when its user is erased brings nothing
back (steps check their task; locally the erase also waits for the user's running task).
"""

from __future__ import annotations

import base64
import sqlite3
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import requests
from tests import fixtures_docs as docs
from tests.conftest import EngramServer, server_env
from tests.fakes.embedder import HashingEmbedder

from engram.api.memos.models import AddMessageRequest
from engram.api.memos.translate import accept_args
from engram.config import Settings
from engram.errors import TaskErased
from engram.extraction.rules.extractor import RuleBasedExtractor
from engram.local.runtime import build_local_runtime
from engram.models.domain import TaskRef
from engram.models.pipeline import work_prefix
from engram.pipeline import steps as pipeline

TENANT = "tenant-a"


def word(kind: str) -> str:
    """A word only this test's data holds (the tokenizer keeps it whole)."""
    return f"qz{kind}{uuid.uuid4().hex[:10]}x"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Person:
    user: str
    words: list[str] = field(default_factory=list)  # in their texts, files and file names
    blobs: list[bytes] = field(default_factory=list)  # their files' bytes, raw and base64
    tasks: list[str] = field(default_factory=list)
    conversations: list[str] = field(default_factory=lambda: ["c1", "c2", "default"])


def everos(server: EngramServer, route: str, body: dict | None = None,
           method: str = "POST") -> requests.Response:
    return requests.request(method, f"{server.root_url}/api/v1/{route}", json=body,
                            headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60)


def upload(server: EngramServer, name: str, data: bytes, user: str | None) -> str:
    body = {"objectList": [{"fileId": "f0", "fileName": name, "fileType": "file"}]}
    if user:
        body["userId"] = user
    response = everos(server, "object/sign", body)
    assert response.status_code == 200, response.text
    (signed,) = response.json()["result"]["data"]["objectList"]
    info = signed["objectSignedInfo"]
    posted = requests.post(info["url"], data=info["fields"], timeout=60,
                           files={"file": (name, data, info["fields"]["Content-Type"])})
    assert posted.status_code == 204, posted.text
    return signed["objectKey"]


def populate(server: EngramServer, label: str) -> Person:
    """Three adds (text turns; an inline file and a data: URL image; two uploads), all
    run to the end, and one edited memory."""
    person = Person(user=f"erase-{label}-{uuid.uuid4().hex[:8]}")
    museum, tea, secret, shared, own, edit, name = (word(k) for k in "mtsuoen")
    person.words += [museum, tea, secret, shared, own, edit, name, person.user]

    added = server.post("add/message", {"user_id": person.user, "conversation_id": "c1",
                                        "messages": [
        {"role": "user", "content": f"I visited the {museum} museum in Lisbon yesterday."},
        {"role": "assistant", "content": f"The {museum} museum sounds lovely."},
        {"role": "user", "content": f"I prefer {tea} tea in the morning."}]})
    assert added.status_code == 200, added.text
    person.tasks.append(added.json()["data"]["task_id"])

    note = f"Project notes: the launch code name is {secret}.".encode()
    png = docs.text_png([f"Picture {person.user}"])  # an image of their own
    middle = len(png) // 2
    person.blobs += [note, b64(note).encode(), png[middle:middle + 48], b64(png).encode()]
    added = server.post("add/message", {"user_id": person.user, "conversation_id": "c2",
                                        "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Here are my notes and a picture."},
        {"type": "file", "file": {"file_data": b64(note), "file_name": f"{name}.txt"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(png)}"}}]}]})
    assert added.status_code == 200, added.text
    person.tasks.append(added.json()["data"]["task_id"])

    shared_file = f"Upload memo: the vault word is {shared}.".encode()
    own_file = f"Second memo: the gate word is {own}.".encode()
    person.blobs += [shared_file, own_file]
    keys = [upload(server, "memo.txt", shared_file, None),  # the tenant's shared folder
            upload(server, "gate.txt", own_file, person.user)]  # the user's folder
    assert "/anon/" in keys[0] and f"/{person.user}/" in keys[1]
    added = everos(server, "memories", {"user_id": person.user, "messages": [{
        "role": "user", "timestamp": 1_790_000_000_000, "content": [
            {"type": "text", "text": "Two memos for the vault."},
            *({"type": "doc", "uri": key} for key in keys)]}]})
    assert added.status_code == 202, added.text
    person.tasks.append(added.json()["data"]["task_id"])

    for task_id in person.tasks:
        done = server.wait_task(task_id, timeout=120)
        assert done["status"] == "completed", done
        assert all(i["state"] == "completed" for i in done["items"]), done["items"]

    listed = server.post("get/memory", {"user_id": person.user, "size": 50}).json()["data"]
    target = next(m for m in listed["memory_detail_list"] if museum in m["memory_value"])
    edited = server.post("update/memory", {"memory_id": target["id"],
                                           "content": f"The user loves the {edit} gallery."})
    assert edited.status_code == 200, edited.text
    return person


def stored_counts(data_dir: Path, user: str) -> dict[str, int]:
    """What the databases hold for a user (read-only connections, closed at once)."""
    def count(db: str, sql: str) -> int:
        with sqlite3.connect(f"file:{data_dir / db}?mode=ro", uri=True) as conn:
            return conn.execute(sql, (TENANT, user)).fetchone()[0] or 0

    where = "WHERE tenant_id = ? AND user_id = ?"
    return {
        "memories": count("engram.db", f"SELECT COUNT(*) FROM memories {where}"),
        "versions": count("engram.db", "SELECT SUM(json_array_length(body, '$.history')) "
                                       f"FROM memories {where}"),
        "index_rows": count("index.db", f"SELECT COUNT(*) FROM entries {where}"),
    }


def on_disk(data_dir: Path, person: Person) -> dict[str, list[str]]:
    """Each of the person's words and file fragments → the files under the data
    directory that hold it (words compared case-insensitively)."""
    files = {p: p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}
    found: dict[str, list[str]] = {}
    for needle in [w.encode() for w in person.words] + person.blobs:
        lower = needle.lower() if needle.isascii() else needle
        holders = [str(p.relative_to(data_dir)) for p, data in files.items()
                   if needle in data or lower in data.lower()]
        if holders:
            found[needle.decode(errors="replace")[:60]] = holders
    return found


def is_gone(server: EngramServer, person: Person) -> None:
    for query in person.words:
        hits = server.post("search/memory", {"user_id": person.user, "query": query}).json()
        data = hits["data"]
        assert not data["memory_detail_list"] and not data["preference_detail_list"], data
        assert not data.get("tool_memory_detail_list"), data
    listed = server.post("get/memory", {"user_id": person.user}).json()["data"]
    assert listed["total"] == 0 and not listed["memory_detail_list"], listed
    for conversation in person.conversations:
        messages = server.post("get/message", {"user_id": person.user,
                                               "conversation_id": conversation})
        assert messages.json()["data"]["message_detail_list"] == [], messages.text
    for task_id in person.tasks:
        status = server.post("get/status", {"task_id": task_id})
        assert status.status_code == 404, status.text
        assert status.json()["data"] is None  # no file name, no object key
        assert everos(server, f"tasks/{task_id}", method="GET").status_code == 404


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> EngramServer:
    engram = EngramServer(data_dir=tmp_path_factory.mktemp("erasure") / "data",
                          env=server_env(ENGRAM_PIPELINE_WORKERS="2"))
    engram.start()
    yield engram
    engram.stop()


def test_deleting_a_user_leaves_nothing_of_them_anywhere(server):
    gone_memos, gone_everos, kept = (populate(server, label) for label in ("a", "b", "k"))
    for person in (gone_memos, gone_everos, kept):
        held = on_disk(server.data_dir, person)
        assert {w[:60] for w in person.words} <= set(held), held  # the scan sees them
    expected = {p.user: stored_counts(server.data_dir, p.user) for p in (gone_memos, gone_everos)}
    assert all(c["memories"] and c["versions"] and c["index_rows"] for c in expected.values())

    deleted = server.post("delete/memory", {"user_id": gone_memos.user})
    assert deleted.status_code == 200, deleted.text
    data = deleted.json()["data"]
    assert data["success"] is True and data["deleted"] == expected[gone_memos.user]["memories"]
    assert data["receipt"] == {
        **expected[gone_memos.user], "messages": 5, "requests": 3, "files": 2, "uploads": 2,
        "work_objects": 0, "tasks": 3}

    deleted = everos(server, "memories/delete", {"user_id": gone_everos.user})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"]["receipt"] == {
        **expected[gone_everos.user], "messages": 5, "requests": 3, "files": 2,
        "uploads": 2, "work_objects": 0, "tasks": 3}

    for person in (gone_memos, gone_everos):
        is_gone(server, person)
        assert on_disk(server.data_dir, person) == {}
    # Deleting again finds nothing more.
    again = server.post("delete/memory", {"user_id": gone_memos.user}).json()["data"]
    assert again["deleted"] == 0 and set(again["receipt"].values()) == {0}

    # The other user: everything still there, findable, and on disk.
    assert {w[:60] for w in kept.words} <= set(on_disk(server.data_dir, kept))
    for secret in kept.words[2:5]:  # the inline file's, both uploads'
        hits = server.post("search/memory", {"user_id": kept.user, "query": secret})
        assert any(secret in m["memory_value"]
                   for m in hits.json()["data"]["memory_detail_list"]), hits.text
    for task_id in kept.tasks:
        assert server.wait_task(task_id)["status"] == "completed"
    assert len(server.post("get/message", {"user_id": kept.user, "conversation_id": "c1"})
               .json()["data"]["message_detail_list"]) == 3


def test_tasks_queued_when_their_user_is_erased_bring_nothing_back(tmp_path):
    """One pipeline worker: the user's adds queue behind each other; the erase waits for
    the one running, the rest start after it and find their task gone."""
    server = EngramServer(data_dir=tmp_path / "data",
                          env=server_env(ENGRAM_PIPELINE_WORKERS="1"))
    server.start()
    try:
        person = Person(user=f"erase-q-{uuid.uuid4().hex[:8]}", conversations=["c1"])
        for _ in range(6):
            secret = word("q")
            person.words.append(secret)
            added = server.post("add/message", {
                "user_id": person.user, "conversation_id": "c1", "messages": [
                    {"role": "user", "content": f"My locker code word is {secret} today."}]})
            person.tasks.append(added.json()["data"]["task_id"])
        receipt = server.post("delete/memory", {"user_id": person.user}).json()["data"]
        assert receipt["receipt"]["tasks"] == 6 and receipt["receipt"]["messages"] == 6

        # Queued behind the erased user's tasks on the one worker: when it is done, so
        # are they.
        other = server.post("add/message", {"user_id": "erase-q-other", "conversation_id": "c1",
                                            "messages": [{"role": "user", "content": "Hi."}]})
        assert server.wait_task(other.json()["data"]["task_id"])["status"] == "completed"
        is_gone(server, person)
        assert on_disk(server.data_dir, person) == {}
    finally:
        server.stop()


# --- the pipeline's own check, step by step (in process) --------------------------------

@pytest.fixture
def local(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path / "data"), embedder=HashingEmbedder())
    yield runtime
    runtime.close()


class Held:
    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        pass


def accepted(runtime, user: str, text: str) -> tuple[pipeline.PipelineDeps, TaskRef]:
    """An add accepted but not run, and the steps' dependencies to run it by hand."""
    runtime.services.ingest.workflow = Held()
    data = runtime.services.ingest.accept(TENANT, *accept_args(AddMessageRequest(
        user_id=user, conversation_id="c1", messages=[{"role": "user", "content": text}])))
    deps = pipeline.PipelineDeps(
        objects=runtime.services.memories.objects, tasks=runtime.store,
        memories=runtime.store, index=runtime.index, embedder=HashingEmbedder(),
        extractor=RuleBasedExtractor())
    return deps, TaskRef(tenant_id=TENANT, task_id=data.task_id, user_id=user)


def nothing_left(runtime, deps: pipeline.PipelineDeps, ref: TaskRef) -> None:
    assert runtime.store.ids_for_user(TENANT, ref.user_id) == []
    assert runtime.store.get(TENANT, ref.task_id) is None
    assert runtime.index.remove_user(TENANT, ref.user_id) == 0
    root = runtime.settings.data_dir / "objects"
    assert not (root / work_prefix(TENANT, ref.task_id)).exists()


def test_a_step_after_the_erase_removes_what_it_wrote(local):
    deps, ref = accepted(local, "u-step", "I moved to Porto in 2021 with my sister Ana.")
    for step in (pipeline.parse, pipeline.extract, pipeline.dedupe):
        step(deps, ref)
    local.services.memories.erase_user(TENANT, "u-step")
    with pytest.raises(TaskErased):
        pipeline.index(deps, ref)
    nothing_left(local, deps, ref)
    pipeline.mark_failed(deps, ref, RuntimeError("late"))  # the Catch: nothing to mark
    assert local.store.get(TENANT, ref.task_id) is None


def test_an_erase_between_a_steps_writes_and_its_save_is_undone(local):
    """The index step has stored and indexed its memories when the erase lands; its
    final save finds no row (and recreates none), so it removes them again."""
    deps, ref = accepted(local, "u-race", "I moved to Porto in 2021 with my sister Ana.")
    for step in (pipeline.parse, pipeline.extract, pipeline.dedupe):
        step(deps, ref)
    store, written = local.store, []

    class EraseBeforeSave:
        def __getattr__(self, name):
            return getattr(store, name)

        def save(self, task):
            if task.status == "completed":
                written.extend(store.ids_for_user(TENANT, "u-race"))
                local.services.memories.erase_user(TENANT, "u-race")
            store.save(task)

    with pytest.raises(TaskErased):
        pipeline.index(replace(deps, tasks=EraseBeforeSave()), ref)
    assert written  # the step had stored its memories when the erase came
    nothing_left(local, deps, ref)


def test_the_same_user_id_in_another_tenant_is_not_touched(local):
    def add(tenant: str, text: str) -> str:
        return local.services.ingest.accept(tenant, *accept_args(AddMessageRequest(
            user_id="same/../user", conversation_id="c1", async_mode=False,
            messages=[{"role": "user", "content": text}]))).task_id

    mine = add(TENANT, "I moved to Porto in 2021.")
    theirs = add("tenant-b", "I moved to Oslo in 2019.")
    receipt = local.services.memories.erase_user(TENANT, "same/../user")
    assert receipt.tasks == 1 and receipt.messages == 1 and receipt.requests == 1
    assert local.store.get(TENANT, mine) is None
    assert local.store.get("tenant-b", theirs) is not None
    kept = local.store.list_conversation("tenant-b", "same/../user", "c1", 10)
    assert [m.text for m in kept] == ["I moved to Oslo in 2019."]
    assert local.store.ids_for_user("tenant-b", "same/../user")
    assert local.store.ids_for_user(TENANT, "same/../user") == []
    objects = local.settings.data_dir / "objects" / "requests"
    assert [p.parent.parent.name for p in objects.rglob("*.json")] == ["tenant-b"]


def test_files_written_before_secure_delete_are_rewritten_once(tmp_path):
    """A data directory from before: rows deleted without secure_delete left their text
    in free space. Opening it with this version rewrites both files (VACUUM) once."""
    from engram.adapters import local_index, sqlite_store

    secret = word("old").encode()
    for name, schema, insert in (
            ("engram.db", sqlite_store.SCHEMA, "INSERT INTO tasks VALUES ('t', ?, ?)"),
            ("index.db", local_index.SCHEMA,
             "INSERT INTO entries VALUES ('t', ?, 'u', x'0000803f', '[]', ?)")):
        db = sqlite3.connect(tmp_path / name, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA secure_delete=OFF")
        db.executescript(schema)
        db.executemany(insert, [(str(i), f"note {i} {secret.decode()} " * 20)
                                for i in range(200)])
        db.execute(f"DELETE FROM {'tasks' if name == 'engram.db' else 'entries'}")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        assert secret in (tmp_path / name).read_bytes()  # left behind by the delete

    sqlite_store.SqliteStore(tmp_path / "engram.db").close()
    local_index.LocalMemoryIndex(tmp_path / "index.db").close()
    assert not [p.name for p in tmp_path.iterdir() if secret in p.read_bytes()]
    # once: a second open finds the files marked and leaves them as they are
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    local_index.LocalMemoryIndex(tmp_path / "index.db").close()
    assert (tmp_path / "index.db").stat().st_mtime_ns == mtimes["index.db"]
