"""The ProfileStore on both backends: SQLite (engram serve) and DynamoDB's records table
(AWS, under moto), held to the same behaviour: templates per tenant, profiles per tenant
and subject, deletes and erasure; and ProfileService over DynamoDB end to end."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from tests.fakes.aws import REGION, aws_credentials, create_tables  # noqa: F401 - fixture

from engram.adapters.dynamodb_profiles import DynamoProfileStore
from engram.adapters.dynamodb_tables import DynamoRecordStore
from engram.adapters.sqlite_profiles import SqliteProfileStore
from engram.adapters.sqlite_store import SqliteStore
from engram.errors import NotFound
from engram.models.domain import Memory, MemoryType, MessageRecord, Role
from engram.models.profiles import Profile, ProfileTemplate
from engram.services.profiles import ProfileService

T0 = 1_750_000_000_000
FIELDS = {"Basic": {"City": {"value": "", "algorithm_updatable": True}}}


@pytest.fixture
def tables(aws_credentials):  # noqa: F811 - the fixture imported above
    with mock_aws():
        yield create_tables(boto3.resource("dynamodb", region_name=REGION))


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request, tmp_path):
    """(profile store, record store) of one backend."""
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "engram.db")
        yield SqliteProfileStore(store), store
        store.close()
    else:
        tables = request.getfixturevalue("tables")
        table = tables["records"]

        def refuse_scan(**_):
            raise AssertionError("the profile store scanned the records table")

        table.meta.client.meta.events.register("before-call.dynamodb.Scan", refuse_scan)
        yield DynamoProfileStore(table), DynamoRecordStore(table)


def template(tid: str, tenant: str = "t1", at: int = T0) -> ProfileTemplate:
    return ProfileTemplate(tenant_id=tenant, profile_template_id=tid, name=f"name {tid}",
                           metadata=FIELDS, create_time=at, update_time=at)


def profile(tid: str, subject: str, kind: str = "user", tenant: str = "t1") -> Profile:
    return Profile(tenant_id=tenant, profile_template_id=tid, subject_kind=kind,
                   subject_id=subject, metadata={}, create_time=T0, update_time=T0)


def test_templates_are_per_tenant_newest_first(backend):
    store, _ = backend
    store.put_template(template("tpl_a", at=T0))
    store.put_template(template("tpl_b", at=T0 + 1))
    store.put_template(template("tpl_c", tenant="t2"))
    assert store.get_template("t1", "tpl_a").name == "name tpl_a"
    assert store.get_template("t2", "tpl_a") is None
    assert [t.profile_template_id for t in store.list_templates("t1")] == ["tpl_b", "tpl_a"]
    assert [t.profile_template_id for t in store.list_templates("t2")] == ["tpl_c"]


def test_profiles_are_per_tenant_and_subject(backend):
    store, _ = backend
    for p in (profile("tpl_a", "u1"), profile("tpl_b", "u1"), profile("tpl_a", "u2"),
              profile("tpl_a", "u1", kind="agent"), profile("tpl_a", "u1", tenant="t2")):
        store.put_profile(p)
    assert [p.profile_template_id for p in store.profiles_of("t1", "user", "u1")] == [
        "tpl_a", "tpl_b"]
    assert store.get_profile("t1", "agent", "u1", "tpl_a").subject_kind == "agent"
    assert store.get_profile("t1", "user", "u3", "tpl_a") is None
    assert store.get_profile("t2", "user", "u1", "tpl_b") is None
    assert store.delete_profile("t1", "user", "u1", "tpl_b") is True
    assert store.delete_profile("t1", "user", "u1", "tpl_b") is False
    assert store.erase_subject("t1", "user", "u1") == 1
    assert store.profiles_of("t1", "user", "u1") == []
    # the others stay: another user, the agent of the same id, another tenant
    assert len(store.profiles_of("t1", "user", "u2")) == 1
    assert len(store.profiles_of("t1", "agent", "u1")) == 1
    assert len(store.profiles_of("t2", "user", "u1")) == 1


def test_erasing_profiles_leaves_the_users_messages_and_the_reverse(backend):
    store, records = backend
    records.add_many([MessageRecord(tenant_id="t1", user_id="u1", conversation_id="c",
                                    message_id="m1", seq=0, role=Role.user, text="hi")])
    store.put_profile(profile("tpl_a", "u1"))
    assert store.erase_subject("t1", "user", "u1") == 1
    assert len(records.list_conversation("t1", "u1", "c", 10)) == 1
    store.put_profile(profile("tpl_a", "u1"))
    assert records.delete_user("t1", "u1") == 1
    assert len(store.profiles_of("t1", "user", "u1")) == 1


def test_the_profile_service_over_the_backend(backend):
    store, records = backend
    service = ProfileService(store=store, memories=records)
    tid = service.add_template("t1", "Customer", FIELDS).profile_template_id
    service.bind("t1", [("user", "u1", tid)])
    records.put_many([Memory(tenant_id="t1", user_id="u1", memory_type=MemoryType.user,
                             memory_key="Lives in Berlin",
                             memory_value="The user lives in Berlin.", content_hash="h1")])
    (view,) = service.views("t1", "user", "u1")
    assert [(f.path, f.value, f.source) for f in view.fields] == [
        (["Basic", "City"], "Berlin", "memory")]
    with pytest.raises(NotFound):
        service.template("t2", tid)
    with pytest.raises(NotFound):
        service.edit("t1", "user", "u2", tid, {"Basic": {"City": {"value": "x"}}}, [])
    assert service.erase_user("t1", "u1") == 1 and service.views("t1", "user", "u1") == []
