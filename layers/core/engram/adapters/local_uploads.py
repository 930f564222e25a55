"""The local stand-in for S3 pre-signed POST uploads: `object/sign` hands out forms for
`POST /uploads` on the `engram serve` server, and that endpoint enforces the same policy
S3 would (signature, expiry, exact key, content type, size range), answering 204 like S3
and S3's XML error on refusal.

The form is S3's: `key`, `Content-Type`, a base64 JSON `policy` in S3's policy language,
and an HMAC-SHA256 of the policy under a secret kept in the data directory (mode 0600).
The file, the last form field (as S3 requires), is streamed to a temp file beside its
destination and renamed into place only once every check passed: a refused or cut-off
upload leaves nothing behind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

from engram.adapters.file_object_store import FileObjectStore
from engram.ports import SignedUpload

SECRET_FILE = "upload_secret"
BUCKET = "engram-local"
ALGORITHM = "ENGRAM-HMAC-SHA256"
SIGNATURE_FIELD = "x-engram-signature"
ALGORITHM_FIELD = "x-engram-algorithm"
UNSIGNED_FIELDS = frozenset({"policy", SIGNATURE_FIELD, ALGORITHM_FIELD, "file"})
UPLOAD_PREFIX = "uploads/"
MAX_FIELD_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
FORM_OVERHEAD_BYTES = 1024 * 1024  # room for the other fields around the file
CHUNK = 256 * 1024


def load_or_create_secret(data_dir: Path) -> bytes:
    """The signing secret, made once and kept (0600) like the generated API key."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex() + "\n")
    return secret


def _sign(secret: bytes, policy_b64: str) -> str:
    return hmac.new(secret, policy_b64.encode(), hashlib.sha256).hexdigest()


class LocalUploadSigner:
    """UploadSigner for `engram serve`: forms for its own `POST /uploads`."""

    def __init__(self, secret: bytes, url: str):
        self._secret = secret
        self._url = url

    def sign(self, key: str, content_type: str, max_bytes: int,
             expires_in: int) -> SignedUpload:
        expires = datetime.now(UTC) + timedelta(seconds=expires_in)
        policy = {
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "conditions": [{"bucket": BUCKET}, {"key": key}, {"Content-Type": content_type},
                           ["content-length-range", 1, max_bytes]],
        }
        policy_b64 = base64.b64encode(json.dumps(policy).encode()).decode()
        return SignedUpload(url=self._url, fields={
            "key": key, "Content-Type": content_type, "policy": policy_b64,
            ALGORITHM_FIELD: ALGORITHM, SIGNATURE_FIELD: _sign(self._secret, policy_b64)})


class UploadRefused(Exception):
    """An S3-style refusal: HTTP status, S3 error code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.body_read = True  # False: refused before the body was read (close the connection)

    def xml(self) -> str:
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                f"<Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
                f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>")


def _denied(message: str) -> UploadRefused:
    return UploadRefused(403, "AccessDenied", f"Invalid according to Policy: {message}")


@dataclass
class CheckedPolicy:
    key: str
    min_bytes: int
    max_bytes: int


def check_policy(secret: bytes, fields: dict[str, str], now: datetime | None = None
                 ) -> CheckedPolicy:
    """The form's fields (names lower-cased) against its signed policy, as S3 checks
    them; the size range is returned for the caller to enforce while reading the file."""
    policy_b64 = fields.get("policy")
    signature = fields.get(SIGNATURE_FIELD)
    if not policy_b64 or not signature:
        raise UploadRefused(403, "AccessDenied",
                            "the form has no policy or signature (sign it with object/sign)")
    if not hmac.compare_digest(_sign(secret, policy_b64), signature.strip().lower()):
        raise UploadRefused(403, "SignatureDoesNotMatch",
                            "The request signature we calculated does not match the "
                            "signature you provided.")
    try:
        policy = json.loads(base64.b64decode(policy_b64, validate=True))
        expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        conditions = policy["conditions"]
    except (ValueError, KeyError, TypeError):
        raise UploadRefused(400, "InvalidPolicyDocument", "the policy is not valid") from None
    if (now or datetime.now(UTC)) >= expires:
        raise _denied("Policy expired.")
    key = fields.get("key", "")
    if not key.startswith(UPLOAD_PREFIX) or ".." in key.split("/"):
        raise _denied(f"the key {key!r} is not an upload key")
    covered = set(UNSIGNED_FIELDS)
    low, high = 0, None
    for condition in conditions:
        if isinstance(condition, dict) and len(condition) == 1:
            name, expected = next(iter(condition.items()))
            op, field = "eq", name.lower()
        elif isinstance(condition, list) and len(condition) == 3 and \
                condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            continue
        elif isinstance(condition, list) and len(condition) == 3 and \
                condition[0] in ("eq", "starts-with") and str(condition[1]).startswith("$"):
            op, name, expected = condition[0], condition[1][1:], condition[2]
            field = name.lower()
        else:
            raise UploadRefused(400, "InvalidPolicyDocument",
                                f"unsupported policy condition {condition!r}")
        covered.add(field)
        actual = BUCKET if field == "bucket" else fields.get(field)
        ok = actual is not None and (actual == expected if op == "eq"
                                     else actual.startswith(str(expected)))
        if not ok:
            shown = json.dumps([op, f"${name}", expected])
            raise _denied(f"Policy Condition failed: {shown}")
    extra = sorted(f for f in fields if f not in covered and not f.startswith("x-ignore-"))
    if extra:
        raise _denied(f"Extra input fields: {', '.join(extra)}")
    if high is None:
        raise _denied("the policy has no content-length-range")
    return CheckedPolicy(key=key, min_bytes=low, max_bytes=high)


class _FormReader:
    """A streaming multipart/form-data reader over exactly `length` bytes of `stream`."""

    def __init__(self, stream: BinaryIO, length: int, boundary: bytes):
        self._stream, self._left = stream, length
        self._buffer = b""
        self._delimiter = b"\r\n--" + boundary

    def _fill(self) -> bool:
        if self._left <= 0:
            return False
        chunk = self._stream.read(min(CHUNK, self._left))
        if not chunk:
            raise UploadRefused(400, "IncompleteBody",
                                "the request body ended before its Content-Length")
        self._left -= len(chunk)
        self._buffer += chunk
        return True

    def drain(self) -> None:
        self._buffer = b""
        while self._left > 0:
            got = self._stream.read(min(CHUNK, self._left))
            if not got:
                return
            self._left -= len(got)

    def start(self) -> None:
        # The body begins with the delimiter without its leading CRLF.
        self._buffer = b"\r\n"
        self._expect_delimiter()

    def _expect_delimiter(self) -> bool:
        """Consume a delimiter; True when more parts follow, False at the closing one."""
        need = len(self._delimiter) + 2
        while len(self._buffer) < need and self._fill():
            pass
        if not self._buffer.startswith(self._delimiter):
            raise UploadRefused(400, "MalformedPOSTRequest",
                                "The body of your POST request is not well-formed "
                                "multipart/form-data.")
        tail = self._buffer[len(self._delimiter):len(self._delimiter) + 2]
        self._buffer = self._buffer[len(self._delimiter) + 2:]
        return tail != b"--"

    def headers(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > MAX_HEADER_BYTES or not self._fill():
                raise UploadRefused(400, "MalformedPOSTRequest", "a form part has no headers")
        raw, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        out: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                out[name.strip().lower()] = value.strip()
        return out

    def body(self, sink: BinaryIO | None, limit: int) -> tuple[int, bool]:
        """Copy the part's content to `sink` (None: keep nothing) up to the next delimiter;
        stop with EntityTooLarge past `limit` bytes. Returns (size, more parts follow)."""
        size = 0
        keep = len(self._delimiter)
        while True:
            at = self._buffer.find(self._delimiter)
            if at >= 0:
                size += at
                if size > limit:
                    raise UploadRefused(400, "EntityTooLarge",
                                        "Your proposed upload exceeds the maximum allowed size")
                if sink is not None:
                    sink.write(self._buffer[:at])
                self._buffer = self._buffer[at:]
                return size, self._expect_delimiter()
            if len(self._buffer) > keep:
                out = self._buffer[:-keep]
                size += len(out)
                if size > limit:
                    raise UploadRefused(400, "EntityTooLarge",
                                        "Your proposed upload exceeds the maximum allowed size")
                if sink is not None:
                    sink.write(out)
                self._buffer = self._buffer[-keep:]
            if not self._fill():
                raise UploadRefused(400, "MalformedPOSTRequest",
                                    "the form ended inside a part")

    def value(self) -> tuple[str, bool]:
        buffer = _Collect()
        _, more = self.body(buffer, MAX_FIELD_BYTES)
        return buffer.data.decode("utf-8", "replace"), more


class _Collect:
    def __init__(self) -> None:
        self.data = b""

    def write(self, chunk: bytes) -> None:
        self.data += chunk


def _disposition(headers: dict[str, str]) -> tuple[str, str | None]:
    name, filename = "", None
    for piece in headers.get("content-disposition", "").split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        value = value.strip().strip('"')
        if key.lower() == "name":
            name = value
        elif key.lower() == "filename":
            filename = value
    return name, filename


def _boundary(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise UploadRefused(412, "PreconditionFailed",
                            "uploads must be POSTed as multipart/form-data")
    for piece in params.split(";"):
        key, _, value = piece.strip().partition("=")
        if key.lower() == "boundary" and value.strip().strip('"'):
            return value.strip().strip('"').encode()
    raise UploadRefused(400, "MalformedPOSTRequest", "the multipart boundary is missing")


class LocalUploadReceiver:
    """`POST /uploads`: checks a signed form and stores its file in the object store."""

    def __init__(self, secret: bytes, objects: FileObjectStore, max_bytes: int):
        self._secret = secret
        self._objects = objects
        self._max_body = max_bytes + FORM_OVERHEAD_BYTES

    def receive(self, content_type: str, length: int | None, stream: BinaryIO) -> str:
        """Reads exactly the request body; returns the stored key or raises UploadRefused
        (the body was read to its end either way, so the connection stays usable)."""
        try:
            if length is None:
                raise UploadRefused(411, "MissingContentLength",
                                    "You must provide the Content-Length HTTP header.")
            if length > self._max_body:
                raise UploadRefused(400, "EntityTooLarge",
                                    "Your proposed upload exceeds the maximum allowed size")
            reader = _FormReader(stream, length, _boundary(content_type))
        except UploadRefused as refused:
            refused.body_read = False
            raise
        try:
            return self._read_form(reader)
        finally:
            reader.drain()

    def _read_form(self, reader: _FormReader) -> str:
        reader.start()
        fields: dict[str, str] = {}
        while True:
            name, filename = _disposition(reader.headers())
            if name.lower() == "file" or filename is not None:
                break
            fields[name.lower()], more = reader.value()
            if not more:
                raise UploadRefused(400, "InvalidArgument",
                                    "POST requires exactly one file upload per request "
                                    "(a form field named 'file', last)")
            if len(fields) > 50:
                raise UploadRefused(400, "MalformedPOSTRequest", "too many form fields")
        policy = check_policy(self._secret, fields)
        # S3 ignores whatever follows the file; so does this endpoint.
        with self._objects.writer(policy.key) as out:
            size, _ = reader.body(out, policy.max_bytes)
            if size < policy.min_bytes:
                raise UploadRefused(400, "EntityTooSmall",
                                    "Your proposed upload is smaller than the minimum "
                                    "allowed size")
        return policy.key
