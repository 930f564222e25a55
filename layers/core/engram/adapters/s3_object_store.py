"""ObjectStore on S3: raw requests and the pointers pipeline steps hand each other."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from engram.ports import ObjectInfo

DELETE_BATCH = 1000  # DeleteObjects' maximum


class S3ObjectStore:
    def __init__(self, client: Any, bucket: str):
        self._s3 = client  # a boto3 S3 client
        self._bucket = bucket

    def put_bytes(self, key: str, data: bytes) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=data,
                            ServerSideEncryption="AES256")

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """Spooled to a local temp file, uploaded only when the block ends without an error."""
        with tempfile.TemporaryFile() as spool:
            yield spool
            spool.seek(0)
            self._s3.upload_fileobj(spool, self._bucket, key,
                                    ExtraArgs={"ServerSideEncryption": "AES256"})

    def get_bytes(self, key: str) -> bytes:
        """Raises KeyError for a missing key. S3 only says NoSuchKey to a caller allowed to
        s3:ListBucket; without it a missing key is AccessDenied, which is not caught."""
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise

    def head(self, key: str) -> ObjectInfo | None:
        """None for a missing key (needs s3:ListBucket, as get_bytes' KeyError does)."""
        try:
            out = self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return ObjectInfo(int(out.get("ContentLength", 0)), out.get("ContentType"))

    def delete_prefix(self, prefix: str) -> list[str]:
        """Delete the object named `prefix` and everything below `prefix/`, as the file
        store removes a file or a directory: `requests/t/u` never touches `requests/t/u2`.
        Returns the keys removed."""
        prefix = prefix.rstrip("/")
        if not prefix:
            raise ValueError("refusing to delete every object: the prefix is empty")
        # The object named `prefix` itself is looked up, not listed: listing `prefix`
        # without the slash would page through every sibling (u2, u20, …) too.
        removed = [prefix] if self.head(prefix) is not None else []
        batch = list(removed)
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix + "/")
        for page in pages:
            for obj in page.get("Contents", []):
                batch.append(obj["Key"])
                removed.append(obj["Key"])
                if len(batch) == DELETE_BATCH:
                    self._delete(batch)
                    batch = []
        if batch:
            self._delete(batch)
        return removed

    def _delete(self, keys: list[str]) -> None:
        out = self._s3.delete_objects(
            Bucket=self._bucket,
            Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
        if out.get("Errors"):
            first = out["Errors"][0]
            raise RuntimeError(
                f"S3 refused to delete {len(out['Errors'])} objects, first "
                f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}")
