"""The directory behind EverOS's groups, senders and settings (services/directory.py) on
both backends: SQLite (engram serve) and DynamoDB under moto (AWS), the same calls and
the same answers, tenant by tenant."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from tests.fakes.aws import REGION, aws_credentials, create_tables  # noqa: F401 - fixture

from engram.adapters.dynamodb_directory import DynamoDirectory
from engram.adapters.sqlite_directory import SqliteDirectory
from engram.adapters.sqlite_store import SqliteStore
from engram.errors import NotFound, Unprocessable
from engram.services.directory import DirectoryService


@pytest.fixture(params=["sqlite", "dynamodb"])
def directory(request, tmp_path, aws_credentials):  # noqa: F811 - the fixture imported above
    if request.param == "sqlite":
        store = SqliteStore(tmp_path / "engram.db")
        yield DirectoryService(SqliteDirectory(store))
        store.close()
        return
    with mock_aws():
        tables = create_tables(boto3.resource("dynamodb", region_name=REGION))
        table = tables["records"]

        def refuse_scan(**_):
            raise AssertionError("the directory scanned the records table")

        table.meta.client.meta.events.register("before-call.dynamodb.Scan", refuse_scan)
        yield DirectoryService(DynamoDirectory(table))


def test_groups_members_and_tenants(directory):
    group = directory.put_group("t1", "g#1", "Team", None)
    assert (group.group_id, group.name, group.description) == ("g#1", "Team", None)
    directory.put_group("t1", "g#1", None, "the team")
    directory.note_group_messages("t1", "g#1", [("u-b", "Bob"), ("u-a", None), ("u-b", "Bob")])
    got = directory.get_group("t1", "g#1")
    assert (got.name, got.description) == ("Team", "the team")
    assert directory.members("t1", "g#1") == ["u-a", "u-b"]
    with pytest.raises(NotFound, match="group g#1 not found"):
        directory.get_group("t2", "g#1")
    with pytest.raises(NotFound):
        directory.patch_group("t2", "g#1", "x", None)
    assert directory.members("t2", "g#1") == []
    with pytest.raises(Unprocessable):
        directory.patch_group("t1", "g#1", None, None)
    # a group add makes a group that was never created
    directory.note_group_messages("t1", "other", [("u-c", None)])
    assert directory.get_group("t1", "other").name is None
    assert directory.forget_members("t1", "g#1") == 2
    assert directory.members("t1", "g#1") == [] and directory.members("t1", "other") == ["u-c"]


def test_senders_names_and_tenants(directory):
    directory.put_sender("t1", "u-a", "Alice")
    directory.note_group_messages("t1", "g", [("u-a", "Ally"), ("u-b", "Bob"), ("u-c", None)])
    # a name set is kept; a sender seen first without one takes the next name it is given
    assert directory.get_sender("t1", "u-a").name == "Alice"
    assert directory.get_sender("t1", "u-c").name is None
    directory.note_group_messages("t1", "g", [("u-c", "Carol")])
    assert directory.sender_names("t1", ["u-a", "u-b", "u-c", "nobody"]) == {
        "u-a": "Alice", "u-b": "Bob", "u-c": "Carol"}
    assert directory.patch_sender("t1", "u-b", "Robert").name == "Robert"
    assert directory.sender_names("t2", ["u-a"]) == {}
    with pytest.raises(NotFound, match="sender u-a not found"):
        directory.get_sender("t2", "u-a")


def test_settings_and_conversation_owners(directory):
    first = directory.settings("t1")
    assert directory.settings("t1").create_time == first.create_time  # stored on first read
    updated = directory.update_settings("t1", {"timezone": "Asia/Tokyo",
                                               "extraction_mode": "pro"})
    assert (updated.timezone, updated.extraction_mode) == ("Asia/Tokyo", "pro")
    assert directory.settings("t1").timezone == "Asia/Tokyo"
    assert directory.settings("t2").timezone == "UTC"
    with pytest.raises(Unprocessable, match="timezone"):
        directory.update_settings("t1", {"timezone": "../../etc/passwd"})
    directory.note_owner("t1", "s1", "alice")
    directory.note_owner("t1", "s1", "agent:bot")
    directory.note_owner("t1", "s1", "alice")
    assert directory.owners("t1", "s1") == ["agent:bot", "alice"]
    assert directory.owners("t2", "s1") == [] and directory.owners("t1", "s2") == []
    directory.note_owner("t1", "s2", "alice")
    directory.forget_owner("t1", "alice")  # her data was erased
    assert directory.owners("t1", "s1") == ["agent:bot"] and directory.owners("t1", "s2") == []
