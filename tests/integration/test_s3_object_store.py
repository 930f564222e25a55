"""S3ObjectStore under moto."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - fixture

from engram.adapters import s3_object_store
from engram.adapters.s3_object_store import S3ObjectStore

BUCKET = "engram-test-objects"


@pytest.fixture
def s3(aws_credentials):  # noqa: F811 - the fixture imported above
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def store(s3):
    return S3ObjectStore(s3, BUCKET)


def keys(s3) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def test_bytes_round_trip_encrypted_at_rest(store, s3):
    store.put_bytes("requests/t1/u1/task.json", b'{"a": 1}')

    assert store.get_bytes("requests/t1/u1/task.json") == b'{"a": 1}'
    head = s3.head_object(Bucket=BUCKET, Key="requests/t1/u1/task.json")
    assert head["ServerSideEncryption"] == "AES256"


def test_a_missing_key_is_a_key_error(store):
    with pytest.raises(KeyError, match="work/t1/nothing.json"):
        store.get_bytes("work/t1/nothing.json")


def test_delete_prefix_removes_a_tree_and_nothing_beside_it(store, s3, monkeypatch):
    monkeypatch.setattr(s3_object_store, "DELETE_BATCH", 7)  # so 26 keys take four batches
    for i in range(25):
        store.put_bytes(f"requests/t1/u1/{i:04d}.json", b"x")
    store.put_bytes("requests/t1/u1", b"an object named like the prefix")
    store.put_bytes("requests/t1/u10/keep.json", b"x")  # shares the prefix as a string
    store.put_bytes("requests/t1/u2/keep.json", b"x")

    store.delete_prefix("requests/t1/u1")

    assert keys(s3) == ["requests/t1/u10/keep.json", "requests/t1/u2/keep.json"]


def test_delete_prefix_of_one_object_and_of_nothing(store, s3):
    store.put_bytes("work/t1/task/plan.json", b"x")
    store.delete_prefix("work/t1/task/plan.json")
    store.delete_prefix("work/t1/never-written/")
    assert keys(s3) == []


def test_an_empty_prefix_is_refused(store):
    store.put_bytes("requests/t1/u1/a.json", b"x")
    with pytest.raises(ValueError, match="prefix is empty"):
        store.delete_prefix("/")
    assert store.get_bytes("requests/t1/u1/a.json") == b"x"


def test_a_streamed_object_appears_only_when_the_block_ends_well(store, s3):
    with store.writer("uploads/t1/anon/1/a.pdf") as out:
        out.write(b"%PDF-1.4 ")
        out.write(b"streamed")
    assert store.get_bytes("uploads/t1/anon/1/a.pdf") == b"%PDF-1.4 streamed"
    assert s3.head_object(Bucket=BUCKET, Key="uploads/t1/anon/1/a.pdf")[
        "ServerSideEncryption"] == "AES256"
    with pytest.raises(RuntimeError), store.writer("uploads/t1/anon/2/b.pdf") as out:
        out.write(b"half")
        raise RuntimeError("refused half-way")
    assert store.head("uploads/t1/anon/2/b.pdf") is None
