"""The AWS side of knowledge bases and shared scopes: DynamoKnowledgeStore under moto
(checked call for call against the SQLite store), the OpenSearch index's shared scopes
and matching_ids on the fake server that speaks the wire protocol (checked against the
local index), and the whole knowledge-base flow on DynamoDB + S3 + OpenSearch."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from moto import mock_aws
from tests import fixtures_docs as docs
from tests.fakes.aws import REGION, aws_credentials, create_tables  # noqa: F401 - fixture
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.opensearch_server import FakeOpenSearch
from tests.integration.test_opensearch_index import DIM, client_for, unit

from engram.adapters.dynamodb_knowledge import DynamoKnowledgeStore
from engram.adapters.dynamodb_tables import DynamoRecordStore
from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.opensearch_index import OpenSearchMemoryIndex
from engram.adapters.s3_object_store import S3ObjectStore
from engram.adapters.sqlite_knowledge import SqliteKnowledgeStore
from engram.adapters.sqlite_store import SqliteStore
from engram.config import Limits
from engram.models.domain import Memory, MemoryStatus, MemoryType
from engram.models.filters import compile_filter
from engram.models.knowledge import PUBLIC_SCOPE, KnowledgeBase, KnowledgeFile, kb_scope
from engram.services.knowledge import FileInput, KnowledgeService
from engram.services.memories import MemoryService

TYPES = list(MemoryType)


@pytest.fixture
def tables(aws_credentials):  # noqa: F811 - the fixture imported above
    with mock_aws():
        yield create_tables(boto3.resource("dynamodb", region_name=REGION))


@pytest.fixture(params=["dynamodb", "sqlite"])
def store(request, tables, tmp_path):
    if request.param == "dynamodb":
        table = tables["records"]

        def refuse_scan(**_):
            raise AssertionError("DynamoKnowledgeStore scanned the records table")

        table.meta.client.meta.events.register("before-call.dynamodb.Scan", refuse_scan)
        return DynamoKnowledgeStore(table)
    return SqliteKnowledgeStore(SqliteStore(tmp_path / "engram.db"))


def test_knowledge_store_keeps_bases_and_files_by_tenant(store):
    base = KnowledgeBase(tenant_id="t1", name="handbook", description="HR")
    store.put_base(base)
    assert store.get_base("t1", base.knowledgebase_id) == base
    assert store.get_base("t2", base.knowledgebase_id) is None  # another tenant's id
    files = [KnowledgeFile(tenant_id="t1", knowledgebase_id=base.knowledgebase_id,
                           name=f"f{i}.pdf", size=10 * i, source="upload",
                           create_time=1000 + i) for i in range(3)]
    for f in reversed(files):
        store.put_file(f)
    assert [f.name for f in store.list_files("t1", base.knowledgebase_id)] == \
        ["f0.pdf", "f1.pdf", "f2.pdf"]
    assert store.list_files("t2", base.knowledgebase_id) == []
    files[1].status, files[1].passage_ids = "completed", ["m1", "m2"]
    store.put_file(files[1])
    got = store.get_files("t1", [files[1].file_id, "unknown", files[0].file_id])
    assert [f.file_id for f in got] == [files[1].file_id, files[0].file_id]
    assert got[0].passage_ids == ["m1", "m2"] and got[0].status == "completed"
    assert store.get_files("t2", [files[1].file_id]) == []
    store.delete_files(files[:2])
    assert [f.name for f in store.list_files("t1", base.knowledgebase_id)] == ["f2.pdf"]
    assert store.get_files("t1", [files[0].file_id]) == []
    store.delete_base("t1", base.knowledgebase_id)
    assert store.get_base("t1", base.knowledgebase_id) is None


def test_a_file_is_claimed_once(store):
    """claim_file stores a record only when none has its id: a replayed or concurrent add
    of the same file finds the first one (listed once, in its knowledge base)."""
    base = KnowledgeBase(tenant_id="t1", name="handbook")
    store.put_base(base)
    first = KnowledgeFile(tenant_id="t1", knowledgebase_id=base.knowledgebase_id,
                          file_id="f-1", name="a.txt", size=3, source="upload")
    assert store.claim_file(first) is None
    second = first.model_copy(update={"status": "completed", "size": 99})
    assert store.claim_file(second) == first  # what is there, unchanged
    assert store.get_files("t1", ["f-1"]) == [first]
    assert [f.file_id for f in store.list_files("t1", base.knowledgebase_id)] == ["f-1"]
    other = first.model_copy(update={"tenant_id": "t2"})  # the same id, another tenant
    assert store.claim_file(other) is None


# --- the indexes' shared scopes ------------------------------------------------------------

@pytest.fixture
def fake():
    with FakeOpenSearch(required_filter_fields=("tenant_id", "user_id")) as server:
        yield server


@pytest.fixture(params=["opensearch", "local"])
def index(request, fake):
    if request.param == "local":
        return LocalMemoryIndex()
    index = OpenSearchMemoryIndex(client_for(fake), "memories", DIM)
    index.ensure_index()
    return index


def memory(text: str, user: str = "alice", tenant: str = "t1", **fields) -> Memory:
    fields.setdefault("memory_type", MemoryType.long_term)
    return Memory(tenant_id=tenant, user_id=user, memory_key=text, memory_value=text, **fields)


def found(index, scope: str, tenant: str = "t1") -> set[str]:
    return {hit.id for hit in index.search(tenant, scope, unit(1), "offsite", 50, TYPES)}


def test_shared_scopes_in_both_indexes(index):
    public = memory("offsite public", public=True)
    private = memory("offsite private")
    shared = memory("offsite shared", knowledgebase_ids=["kb1"])
    passage = memory("offsite passage", user=kb_scope("kb1"), knowledgebase_ids=["kb1"])
    elsewhere = memory("offsite public", tenant="t2", public=True)
    rows = [public, private, shared, passage, elsewhere]
    index.upsert(rows, np.stack([unit(i) for i in range(len(rows))]))

    assert found(index, "alice") == {public.id, private.id, shared.id}
    assert found(index, PUBLIC_SCOPE) == {public.id}
    assert found(index, kb_scope("kb1")) == {shared.id, passage.id}
    assert found(index, "bob") == set()
    assert found(index, PUBLIC_SCOPE, "t2") == {elsewhere.id}

    # no longer public: gone from the public scope, still the owner's
    public.public = False
    index.upsert([public], np.stack([unit(0)]))
    assert found(index, PUBLIC_SCOPE) == set()
    assert public.id in found(index, "alice")

    # matching_ids: the tenant's users' rows, never a scope's own (the passage)
    where = compile_filter({"memory_type": "LongTermMemory"})
    assert set(index.matching_ids("t1", where, 100)) == {public.id, private.id, shared.id}
    assert index.matching_ids("t3", where, 100) == []
    assert set(index.matching_ids("t1", where, 100, scope=kb_scope("kb1"))) == \
        {shared.id, passage.id}

    # erasing the owner takes the memory out of every scope
    index.remove_user("t1", "alice", [public.id, private.id, shared.id])
    assert found(index, kb_scope("kb1")) == {passage.id}
    deleted = shared.model_copy(update={"status": MemoryStatus.deleted})
    index.upsert([deleted], np.stack([unit(2)]))
    assert found(index, kb_scope("kb1")) == {passage.id}


# --- the flow on DynamoDB + S3 + OpenSearch ----------------------------------------------

def test_knowledge_base_flow_on_aws_adapters(tables, fake):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="engram-test")
    objects = S3ObjectStore(s3, "engram-test")
    records = DynamoRecordStore(tables["records"])
    index = OpenSearchMemoryIndex(client_for(fake), "memories", HashingEmbedder().dimension)
    index.ensure_index()
    knowledge = KnowledgeService(store=DynamoKnowledgeStore(tables["records"]),
                                 objects=objects, memories=records, index=index,
                                 embedder=HashingEmbedder(),
                                 limits=Limits())
    base = knowledge.create("t1", "handbook", None)
    pdf = docs.pdf([docs.text_page(["Expense reports are due by the fifth of the month."])])
    added = knowledge.add_files("t1", base.knowledgebase_id, [
        FileInput(where="file[0]", name="expenses.pdf", data=pdf),
        FileInput(where="file[1]", name="notes.txt", data=b"Desks are booked in the app.")])
    assert [f.status for f in added] == ["completed", "completed"]
    passages = [i for f in added for i in f.passage_ids]
    stored = records.get_many("t1", passages)
    assert {m.info["file_name"] for m in stored} == {"expenses.pdf", "notes.txt"}
    assert {m.info.get("page") for m in stored if m.info["file_name"] == "expenses.pdf"} == {"1"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="engram-test").get("Contents", [])]
    assert len(keys) == 2
    vector = HashingEmbedder().embed(["expense reports due"])[0]
    hits = index.search("t1", kb_scope(base.knowledgebase_id), vector, "expense reports", 5,
                        TYPES)
    assert set(passages) >= {h.id for h in hits} and hits

    # a tenant-wide delete by filter never reaches the passages
    memories = MemoryService(memories=records, messages=records, index=index,
                             embedder=HashingEmbedder(), objects=objects, tasks=None,
                             forget_content_job=lambda *a: [])
    assert memories.delete_matching("t1", compile_filter({"tags": "knowledgebase"})) == 0

    # a user's memory an add wrote into the knowledge base
    written = memory("expense reports go to finance", user="carol",
                     knowledgebase_ids=[base.knowledgebase_id])
    records.put_many([written])
    index.upsert([written], HashingEmbedder().embed([written.memory_value]))

    knowledge.delete("t1", base.knowledgebase_id)
    assert records.get_many("t1", [written.id])[0].knowledgebase_ids == []  # unlinked, kept
    assert [h.id for h in index.search("t1", "carol", vector, "expense", 5, TYPES)] == \
        [written.id]
    assert records.get_many("t1", passages) == []
    assert index.search("t1", kb_scope(base.knowledgebase_id), vector, "expense", 5,
                        TYPES) == []
    assert s3.list_objects_v2(Bucket="engram-test").get("KeyCount", 0) == 0
    assert knowledge.store.get_files("t1", [f.file_id for f in added]) == []
    assert knowledge.store.get_base("t1", base.knowledgebase_id) is None
