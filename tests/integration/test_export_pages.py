"""MemoryStore.page_active (the export's keyset pages) on SQLite and on DynamoDB under
moto: every current memory exactly once, newest first, ties on create_time broken by id,
nothing of another user or tenant, no archived or deleted row, no scan."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from tests.fakes.aws import REGION, aws_credentials, create_tables  # noqa: F401 - fixture

from engram.adapters.dynamodb_tables import DynamoRecordStore
from engram.adapters.sqlite_store import SqliteStore
from engram.models.domain import Memory, MemoryStatus, MemoryType
from engram.ports import MemoryCursor

T0 = 1_750_000_000_000


def memory(i: int, user: str = "u1", tenant: str = "t1", **fields) -> Memory:
    fields.setdefault("memory_type", list(MemoryType)[i % len(MemoryType)])
    # three memories share each create_time: the id must break the tie
    return Memory(id=f"m{i:03d}", tenant_id=tenant, user_id=user, memory_key=f"k{i}",
                  memory_value=f"value {i}", content_hash=f"h{i}", create_time=T0 + i // 3,
                  **fields)


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path, aws_credentials):  # noqa: F811 - the fixture imported above
    if request.param == "sqlite":
        db = SqliteStore(tmp_path / "engram.db")
        yield db
        db.close()
        return
    with mock_aws():
        table = create_tables(boto3.resource("dynamodb", region_name=REGION))["records"]

        def refuse_scan(**_):
            raise AssertionError("page_active scanned the records table")

        table.meta.client.meta.events.register("before-call.dynamodb.Scan", refuse_scan)
        yield DynamoRecordStore(table)


def read_all(store, tenant: str, user: str, size: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = store.page_active(tenant, user, after, size)
        if not page:
            return pages
        pages.append([m.id for m in page])
        after = MemoryCursor(page[-1].create_time, page[-1].id)


def test_pages_cover_every_current_memory_once_newest_first(store):
    mine = [memory(i) for i in range(23)]
    retired = [memory(100, status=MemoryStatus.archived),
               memory(101, status=MemoryStatus.deleted)]
    others = [memory(200, user="u2"), memory(201, tenant="t2")]
    store.put_many(mine + retired + others)

    pages = read_all(store, "t1", "u1", 5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    ids = [i for page in pages for i in page]
    expected = sorted(mine, key=lambda m: (m.create_time, m.id), reverse=True)
    assert ids == [m.id for m in expected]  # once each, in order, ties by id


def test_a_page_size_above_the_count_reads_one_page(store):
    store.put_many([memory(i) for i in range(4)])
    assert read_all(store, "t1", "u1", 500) == [["m003", "m002", "m001", "m000"]]
    assert store.page_active("t1", "nobody", None, 10) == []
    assert store.page_active("t2", "u1", None, 10) == []
