"""Direct uploads without a server: object/sign's keys and limits, the local signed-POST
policy (every check S3 makes), and the streaming multipart reader behind POST /uploads."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest

from engram.adapters import local_uploads
from engram.adapters.file_object_store import FileObjectStore
from engram.adapters.local_uploads import (
    LocalUploadReceiver,
    LocalUploadSigner,
    UploadRefused,
    check_policy,
    load_or_create_secret,
)
from engram.api.everos.models import ObjectSignRequest
from engram.api.everos.translate import sign_objects
from engram.config import Limits
from engram.errors import Forbidden, NotFound, Unprocessable
from engram.services.uploads import UploadService, safe_file_name

SECRET = b"s" * 32
KEY = "uploads/tenant-a/anon/0123/report.pdf"


def form(expires_in: int = 900, max_bytes: int = 1000, key: str = KEY,
         content_type: str = "application/pdf") -> dict[str, str]:
    signed = LocalUploadSigner(SECRET, "http://127.0.0.1:1/uploads").sign(
        key, content_type, max_bytes, expires_in)
    return {name.lower(): value for name, value in signed.fields.items()}


def test_a_signed_form_passes_and_returns_its_size_range():
    checked = check_policy(SECRET, form())
    assert (checked.key, checked.min_bytes, checked.max_bytes) == (KEY, 1, 1000)


@pytest.mark.parametrize("change, status, reason", [
    (lambda f: f.update(policy=f["policy"][:-4] + "AAA="), 403, "SignatureDoesNotMatch"),
    (lambda f: f.update({"x-engram-signature": "0" * 64}), 403, "SignatureDoesNotMatch"),
    (lambda f: f.pop("x-engram-signature"), 403, "no policy or signature"),
    (lambda f: f.update(key=KEY.replace("report", "other")), 403, '["eq", "$key"'),
    (lambda f: f.update({"content-type": "text/html"}), 403, '"$Content-Type"'),
    (lambda f: f.update({"acl": "public-read"}), 403, "Extra input fields: acl"),
])
def test_tampered_forms_are_refused(change, status, reason):
    fields = form()
    change(fields)
    with pytest.raises(UploadRefused) as refused:
        check_policy(SECRET, fields)
    assert refused.value.status == status and reason in str(refused.value)


def test_ignored_fields_pass_and_an_expired_policy_does_not():
    assert check_policy(SECRET, {**form(), "x-ignore-note": "anything"}).key == KEY
    with pytest.raises(UploadRefused, match="Policy expired"):
        check_policy(SECRET, form(expires_in=-1))
    later = datetime.now(UTC) + timedelta(minutes=16)
    with pytest.raises(UploadRefused, match="Policy expired"):
        check_policy(SECRET, form(), now=later)


def test_a_policy_must_be_for_an_upload_key():
    with pytest.raises(UploadRefused, match="not an upload key"):
        check_policy(SECRET, form(key="requests/tenant-a/u/task.json"))
    with pytest.raises(UploadRefused, match="not an upload key"):
        check_policy(SECRET, form(key="uploads/tenant-a/../../engram.db"))


def test_secret_is_made_once_and_kept_private(tmp_path):
    first = load_or_create_secret(tmp_path)
    assert load_or_create_secret(tmp_path) == first and len(first) == 32
    assert (tmp_path / "upload_secret").stat().st_mode & 0o777 == 0o600


# --- the multipart reader ----------------------------------------------------------------

BOUNDARY = "----engram-test-boundary"


def multipart(fields: dict[str, str], content: bytes | None, after: dict | None = None) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                      f"{value}\r\n".encode())
    if content is not None:
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                     f'filename="report.pdf"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
                     + content + b"\r\n")
    for name, value in (after or {}).items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.fixture
def receiver(tmp_path):
    store = FileObjectStore(tmp_path / "objects")
    return LocalUploadReceiver(SECRET, store, max_bytes=10 * 2**20), store, tmp_path / "objects"


def signed_fields(max_bytes: int = 2 * 2**20) -> dict[str, str]:
    return LocalUploadSigner(SECRET, "u").sign(KEY, "application/pdf", max_bytes, 900).fields


def receive(receiver_, body: bytes):
    stream = BytesIO(body)
    key = receiver_.receive(f"multipart/form-data; boundary={BOUNDARY}", len(body), stream)
    assert stream.read() == b""  # the whole body was read either way
    return key


def test_a_file_larger_than_a_chunk_arrives_whole(receiver):
    receiver_, store, _ = receiver
    # the delimiter search must work across chunk edges, with CRLFs and dashes in the data
    content = (b"%PDF-1.4\r\n--" + bytes(range(256)) * 2000)[: local_uploads.CHUNK * 2 + 77]
    assert receive(receiver_, multipart(signed_fields(), content,
                                        after={"ignored": "after the file"})) == KEY
    assert store.get_bytes(KEY) == content


class Trickle(BytesIO):
    """A client whose body arrives a few bytes at a time."""

    def read(self, size: int = -1) -> bytes:
        return super().read(min(size, 7) if size >= 0 else 7)


def test_a_form_read_in_small_pieces_and_what_follows_the_file_is_ignored(receiver):
    receiver_, store, _ = receiver
    content = b"%PDF-1.4\r\n--" + bytes(range(256)) * 4
    body = multipart(signed_fields(), content)[:-len(f"--{BOUNDARY}--\r\n")]
    body += f"--{BOUNDARY}\r\nnot a part at all".encode()  # S3 never reads past the file
    stream = Trickle(body)
    assert receiver_.receive(f"multipart/form-data; boundary={BOUNDARY}", len(body),
                             stream) == KEY
    assert store.get_bytes(KEY) == content and stream.read() == b""


def test_a_body_shorter_than_its_length_is_incomplete(receiver):
    receiver_, store, _ = receiver
    body = multipart(signed_fields(), b"z" * 100)
    with pytest.raises(UploadRefused) as refused:
        receiver_.receive(f"multipart/form-data; boundary={BOUNDARY}", len(body) + 10,
                          BytesIO(body[:50]))
    assert refused.value.code == "IncompleteBody" and store.head(KEY) is None


@pytest.mark.parametrize("body, code", [
    (lambda: multipart(signed_fields(max_bytes=100), b"x" * 101), "EntityTooLarge"),
    (lambda: multipart(signed_fields(), b""), "EntityTooSmall"),
    (lambda: multipart(signed_fields(), None), "InvalidArgument"),
    (lambda: multipart(signed_fields(), b"y" * 5000)[:-200], "MalformedPOSTRequest"),
    (lambda: b"not a form at all", "MalformedPOSTRequest"),
    (lambda: f"--{BOUNDARY}--\r\n".encode(), "MalformedPOSTRequest"),
    (lambda: multipart({**signed_fields(), "x-ignore-big": "v" * 70000}, b"x"),
     "EntityTooLarge"),
    (lambda: multipart({**signed_fields(), **{f"x-ignore-{i}": "v" for i in range(50)}}, b"x"),
     "MalformedPOSTRequest"),
])
def test_refused_uploads_leave_nothing_behind(receiver, body, code):
    receiver_, store, root = receiver
    with pytest.raises(UploadRefused) as refused:
        receive(receiver_, body())
    assert refused.value.code == code
    assert refused.value.xml().startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error>')
    assert store.head(KEY) is None
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_length_and_type_are_checked_before_reading(receiver):
    receiver_, _, _ = receiver
    with pytest.raises(UploadRefused) as refused:
        receiver_.receive("multipart/form-data; boundary=x", None, BytesIO())
    assert refused.value.status == 411 and not refused.value.body_read
    with pytest.raises(UploadRefused) as refused:
        receiver_.receive("multipart/form-data; boundary=x", 11 * 2**20 + 2**20, BytesIO())
    assert refused.value.code == "EntityTooLarge" and not refused.value.body_read
    with pytest.raises(UploadRefused) as refused:
        receiver_.receive("application/json", 2, BytesIO(b"{}"))
    assert refused.value.status == 412


# --- object/sign ---------------------------------------------------------------------------

class Store:
    def __init__(self, keys=()):
        self.keys = set(keys)

    def head(self, key):
        from engram.ports import ObjectInfo
        return ObjectInfo(10, "application/pdf") if key in self.keys else None


def service(keys=()) -> UploadService:
    return UploadService(LocalUploadSigner(SECRET, "http://x/uploads"), Store(keys), Limits())


def request(*files, user=None) -> ObjectSignRequest:
    return ObjectSignRequest.model_validate({"objectList": [
        {"fileId": str(i), "fileName": name, "fileType": kind}
        for i, (name, kind) in enumerate(files)], **({"userId": user} if user else {})})


def test_sign_makes_a_key_per_file_under_the_tenant():
    signed = sign_objects(service(), "tenant/a", request(
        ("Q3 report (final).pdf", "file"), ("cat.PNG", "image"), ("talk.mp3", "file")))
    keys = [s.objectKey for s in signed]
    assert all(k.startswith("uploads/tenant%2Fa/anon/") for k in keys)
    assert keys[0].endswith("/Q3_report_final.pdf") and keys[1].endswith("/cat.PNG")
    assert [s.objectSignedInfo.maxSize for s in signed] == [100 * 2**20, 10 * 2**20, 500 * 2**20]
    policy = json.loads(base64.b64decode(signed[1].objectSignedInfo.fields["policy"]))
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert sign_objects(service(), "t", request(("a.pdf", "file"), user="u 1")
                        )[0].objectKey.startswith("uploads/t/u%201/")


def test_sign_limits():
    with pytest.raises(Unprocessable, match="21 files; the limit is 20"):
        sign_objects(service(), "t", request(*[("a.pdf", "file")] * 21))
    with pytest.raises(Unprocessable, match="is not an image"):
        sign_objects(service(), "t", request(("notes.pdf", "image")))


def test_keys_are_checked_against_the_tenant_and_the_store():
    key = "uploads/t/anon/1/a.pdf"
    assert service([key]).check_key("t", key, "x").size == 10
    with pytest.raises(Forbidden):
        service([key]).check_key("other", key, "x")
    with pytest.raises(Forbidden):
        service([key]).check_key("t", "uploads/t/../other/1/a.pdf", "x")
    with pytest.raises(NotFound, match="nothing was uploaded"):
        service().check_key("t", key, "x")


@pytest.mark.parametrize("name, safe", [
    ("report.pdf", "report.pdf"), ("../../etc/passwd", "passwd"),
    ("C:\\docs\\a b.docx", "a_b.docx"),
    ("...", "file"), ("照片.jpg", "file.jpg"), ("x" * 300 + ".pdf", "x" * 96 + ".pdf"),
    ("README", "README"), (".bashrc", "file.bashrc"),
])
def test_safe_file_names(name, safe):
    assert safe_file_name(name) == safe
