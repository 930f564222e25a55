"""The local stand-in for S3 pre-signed POST uploads: `object/sign` hands out forms for
`POST /uploads` on the `engram serve` server, and that endpoint enforces the same policy
S3 would (signature, expiry, exact key, content type, size range), answering 204 like S3
and S3's XML error on refusal.

The form is S3's: `key`, `Content-Type`, a base64 JSON `policy` in S3's policy language,
and an HMAC-SHA256 of the policy under a secret kept in the data directory (mode 0600).
python-multipart parses the body as it is read. The file, the last form field (as S3
requires; what follows it is ignored, as S3 does), is streamed into the object store's
writer (locally a temp file beside its destination, renamed into place) and kept only
once every check passed: a refused or cut-off upload leaves nothing behind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import escape

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from engram.ports import ObjectStore, SignedUpload

SECRET_FILE = "upload_secret"
BUCKET = "engram-local"
ALGORITHM = "ENGRAM-HMAC-SHA256"
SIGNATURE_FIELD = "x-engram-signature"
ALGORITHM_FIELD = "x-engram-algorithm"
UNSIGNED_FIELDS = frozenset({"policy", SIGNATURE_FIELD, ALGORITHM_FIELD, "file"})
UPLOAD_PREFIX = "uploads/"
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50
MAX_HEADERS = 32  # per part
MAX_HEADER_BYTES = 16 * 1024  # one header line
MAX_BOUNDARY_BYTES = 256  # python-multipart's limit (RFC 2046 allows 70)
FORM_OVERHEAD_BYTES = 1024 * 1024  # room for the other fields around the file
CHUNK = 256 * 1024
# The parser logs each malformed body as a warning before raising; the refusal is logged
# once, by the server, already.
logging.getLogger("python_multipart").setLevel(logging.ERROR)


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


class _Form:
    """The parser's callbacks: form fields up to the file, then the file itself streamed
    into `objects.writer` once the fields passed `check_policy`."""

    def __init__(self, secret: bytes, objects: ObjectStore, stack: ExitStack):
        self._secret, self._objects, self._stack = secret, objects, stack
        self.fields: dict[str, str] = {}
        self.key: str | None = None  # set once the file has arrived whole and passed
        self.in_part = False
        self.parts = 0
        self._headers: list[list[bytes]] = []
        self._value = bytearray()
        self._name = ""
        self._file: BinaryIO | None = None
        self._policy: CheckedPolicy | None = None
        self._size = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        """Each stops listening once the file is in: what follows it is ignored."""
        def until_done(callback: Callable[..., None]) -> Callable[..., None]:
            return lambda *args: None if self.key is not None else callback(*args)

        return {event: until_done(callback) for event, callback in (
            ("on_part_begin", self._part_begin), ("on_header_begin", self._header_begin),
            ("on_header_field", self._header_field),
            ("on_header_value", self._header_value), ("on_headers_finished", self._headers_done),
            ("on_part_data", self._data), ("on_part_end", self._part_end))}

    def _part_begin(self) -> None:
        self.in_part, self._headers, self._value = True, [], bytearray()
        self.parts += 1

    def _header_begin(self) -> None:
        self._headers.append([b"", b""])  # name, value: each may come in several pieces

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._headers[-1][0] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers[-1][1] += data[start:end]

    def _headers_done(self) -> None:
        disposition = next((value for name, value in self._headers
                            if name.strip().lower() == b"content-disposition"), b"")
        _, params = parse_options_header(disposition)
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name.lower() != "file" and b"filename" not in params:
            return
        # The file (S3 requires it last): the form is judged before a byte of it is kept.
        self._policy = check_policy(self._secret, self.fields)
        self._file = self._stack.enter_context(self._objects.writer(self._policy.key))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._size += end - start
            if self._size > self._policy.max_bytes:
                raise _too_large()
            self._file.write(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise _too_large()

    def _part_end(self) -> None:
        self.in_part = False
        if self._file is not None:
            if self._size < self._policy.min_bytes:
                raise UploadRefused(400, "EntityTooSmall",
                                    "Your proposed upload is smaller than the minimum "
                                    "allowed size")
            self.key = self._policy.key
            return
        self.fields[self._name.lower()] = self._value.decode("utf-8", "replace")
        if len(self.fields) > MAX_FIELDS:
            raise UploadRefused(400, "MalformedPOSTRequest", "too many form fields")


def _too_large() -> UploadRefused:
    return UploadRefused(400, "EntityTooLarge",
                         "Your proposed upload exceeds the maximum allowed size")


def _malformed() -> UploadRefused:
    return UploadRefused(400, "MalformedPOSTRequest",
                         "The body of your POST request is not well-formed "
                         "multipart/form-data.")


def _boundary(content_type: str) -> bytes:
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise UploadRefused(412, "PreconditionFailed",
                            "uploads must be POSTed as multipart/form-data")
    boundary = params.get(b"boundary", b"")
    if not boundary:
        raise UploadRefused(400, "MalformedPOSTRequest", "the multipart boundary is missing")
    if len(boundary) > MAX_BOUNDARY_BYTES:
        raise UploadRefused(400, "MalformedPOSTRequest",
                            f"the multipart boundary is over {MAX_BOUNDARY_BYTES} characters")
    return boundary


class LocalUploadReceiver:
    """`POST /uploads`: checks a signed form and stores its file in the object store."""

    def __init__(self, secret: bytes, objects: ObjectStore, max_bytes: int):
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
                raise _too_large()
            boundary = _boundary(content_type)
        except UploadRefused as refused:
            refused.body_read = False
            raise
        body = _Body(stream, length)
        try:
            return self._read_form(boundary, body)
        finally:
            body.drain()

    def _read_form(self, boundary: bytes, body: _Body) -> str:
        # The object writer is entered when the file part starts and closed here: it
        # keeps the file only if the form got as far as `form.key` without an error.
        with ExitStack() as stack:
            form = _Form(self._secret, self._objects, stack)
            parser = MultipartParser(boundary, form.callbacks(), max_header_count=MAX_HEADERS,
                                     max_header_size=MAX_HEADER_BYTES)
            for chunk in body.chunks():
                try:
                    parser.write(chunk)
                except MultipartParseError:
                    if form.key is None:
                        raise _malformed() from None
                if form.key is not None:
                    return form.key  # S3 ignores whatever follows the file; so does this
            if form.in_part:
                raise UploadRefused(400, "MalformedPOSTRequest", "the form ended inside a part")
            if parser.state != MultipartState.END or not form.parts:
                raise _malformed()
            raise UploadRefused(400, "InvalidArgument",
                                "POST requires exactly one file upload per request "
                                "(a form field named 'file', last)")


class _Body:
    """Exactly `length` bytes of a request body, in chunks."""

    def __init__(self, stream: BinaryIO, length: int):
        self._stream, self._left = stream, length

    def chunks(self) -> Iterator[bytes]:
        while self._left > 0:
            chunk = self._stream.read(min(CHUNK, self._left))
            if not chunk:
                raise UploadRefused(400, "IncompleteBody",
                                    "the request body ended before its Content-Length")
            self._left -= len(chunk)
            yield chunk

    def drain(self) -> None:
        while self._left > 0:
            got = self._stream.read(min(CHUNK, self._left))
            if not got:
                return
            self._left -= len(got)
