"""Object store on the local file system (the embedded stand-in for S3)."""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from engram.ports import ObjectInfo


class FileObjectStore:
    def __init__(self, root: Path):
        self._root = root.resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers never see a half-written object

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """A file to stream an object into; it appears under `key` only when the block
        ends without an error (temp file, then rename), else it is removed."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def head(self, key: str) -> ObjectInfo | None:
        try:
            path = self._path(key)
        except ValueError:
            return None
        if not path.is_file():
            return None
        # No metadata is kept beside a file: an upload's content type was pinned to the
        # one its name implies when the form was signed.
        return ObjectInfo(path.stat().st_size, mimetypes.guess_type(path.name)[0])

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise KeyError(key)
        return path.read_bytes()

    def delete_prefix(self, prefix: str) -> list[str]:
        """The file `prefix`, or the directory `prefix/` with everything in it."""
        path = self._path(prefix)
        if path == self._root:
            raise ValueError("refusing to delete every object: the prefix is empty")
        removed: list[Path] = []
        if path.is_dir():
            removed = [p for p in path.rglob("*") if p.is_file()]
            shutil.rmtree(path)
        elif path.is_file():
            removed = [path]
            path.unlink()
        # Temp files of writes in progress (".upload-*.tmp") are not objects yet.
        return sorted(p.relative_to(self._root).as_posix() for p in removed
                      if not p.name.endswith(".tmp"))
