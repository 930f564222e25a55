"""Multimodal content against a real `engram serve` over HTTP, with real files the tests
generate (tests/fixtures_docs.py): EverOS's flow (object/sign → upload to the signed form
→ /api/v1/memories with the object keys → task status → search), MemOS's parts (image
URLs from a local test server named in the allow-list, base64, data: URLs), and every
refusal: oversized, wrong type, expired or tampered form, a 21st file, other tenants'
keys, metadata addresses — each with the right error and nothing half-written."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from tests import fixtures_docs as docs
from tests.conftest import EngramServer, server_env

from engram.adapters.local_uploads import LocalUploadSigner, load_or_create_secret

pytestmark = pytest.mark.slow

PNG_TEXT = ["MemOS stores memories", "and finds them again"]
SEED_EPOCH_MS = 1766041646311  # the seed's create_time: 2025-12-18 07:07 UTC


# --- a local origin for URL parts -------------------------------------------------------

class Origin:
    """Serves fixed files over HTTP on 127.0.0.1, as a CDN would."""

    def __init__(self, files: dict[str, tuple[bytes, str]]):
        self.files = files
        served = files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body, content_type = served.get(unquote(self.path.split("?")[0]), (b"", ""))
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", content_type or "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def origin():
    served = Origin({
        "/img/memos.png": (docs.text_png(PNG_TEXT), "image/png"),
        "/file/MemOS 2.pdf": (docs.pdf_text_on_page_two(), "application/pdf"),
    })
    yield served
    served.server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, origin) -> EngramServer:
    """A server whose fetch allow-list names the origin (the session server's does not)."""
    data = tmp_path_factory.mktemp("multimodal") / "data"
    engram = EngramServer(data_dir=data, env=server_env(
        ENGRAM_FETCH_ALLOW_HOSTS=f"127.0.0.1:{origin.port}", ENGRAM_PIPELINE_WORKERS="2"))
    engram.start()
    yield engram
    engram.stop()


# --- helpers -----------------------------------------------------------------------------

def api(server: EngramServer, route: str, body: dict | None = None, key: str | None = None,
        method: str = "POST") -> requests.Response:
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    return requests.request(method, f"{server.root_url}/api/v1/{route}", json=body,
                            headers=headers, timeout=60)


def sign(server: EngramServer, *files: tuple[str, str], key: str | None = None) -> list[dict]:
    response = api(server, "object/sign", {"objectList": [
        {"fileId": f"f{i}", "fileName": name, "fileType": kind}
        for i, (name, kind) in enumerate(files)]}, key=key)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == 0 and body["error"] == "OK", body
    return body["result"]["data"]["objectList"]


def upload(signed: dict, data: bytes, name: str, content_type: str | None = None,
           fields: dict | None = None) -> requests.Response:
    info = signed["objectSignedInfo"]
    form = fields if fields is not None else info["fields"]
    return requests.post(info["url"], data=form, timeout=60, files={
        "file": (name, data, content_type or form.get("Content-Type", "application/octet-stream"))})


def sign_and_upload(server: EngramServer, name: str, kind: str, data: bytes) -> str:
    (signed,) = sign(server, (name, kind))
    response = upload(signed, data, name)
    assert response.status_code == 204, response.text
    return signed["objectKey"]


def wait_everos(server: EngramServer, task_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api(server, f"tasks/{task_id}", method="GET").json()["data"]
        if data["status"] != "processing":
            return data
        time.sleep(0.2)
    raise TimeoutError(task_id)


def memos_search(server: EngramServer, user: str, query: str, **extra) -> dict:
    response = server.post("search/memory", {"query": query, "user_id": user,
                                             "memory_limit_number": 10, **extra})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def found(memories: list[dict], text: str) -> dict:
    hits = [m for m in memories if text.lower() in m["memory_value"].lower()]
    assert hits, [m["memory_value"] for m in memories]
    return hits[0]


def stored_files(server: EngramServer) -> list[Path]:
    root = server.data_dir / "objects" / "uploads"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- EverOS: sign → upload → add → status → search -------------------------------------

@pytest.fixture(scope="module")
def documents_task(server: EngramServer) -> tuple[str, dict]:
    """One message carrying six real files, each uploaded through its signed form."""
    user = f"docs-{uuid.uuid4().hex[:8]}"
    files = [
        ("falcon-report.pdf", "file", docs.pdf_text_on_page_two(), "pdf"),
        ("scan.pdf", "file", docs.pdf_scanned(), "pdf"),
        ("travel.docx", "file", docs.docx_document(), "doc"),
        ("lisbon.html", "file", docs.HTML_PAGE, "html"),
        ("report-mail.eml", "file", docs.eml_with_pdf_attachment(), "email"),
        ("memos.png", "image", docs.text_png(PNG_TEXT), "image"),
    ]
    signed = sign(server, *[(name, kind) for name, kind, _, _ in files])
    for form, (name, _, data, _) in zip(signed, files, strict=True):
        assert form["objectKey"].startswith("uploads/tenant-a/anon/")
        assert form["objectKey"].endswith("/" + name)
        response = upload(form, data, name)
        assert response.status_code == 204, response.text
    content = [{"type": "text", "text": "Here are my files for the Falcon project."}]
    content += [{"type": item_type, "uri": form["objectKey"], "name": name}
                for form, (name, _, _, item_type) in zip(signed, files, strict=True)]
    response = api(server, "memories", {"user_id": user, "session_id": "s1", "messages": [
        {"role": "user", "timestamp": SEED_EPOCH_MS, "content": content}]})
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["status"] == "accumulated" and data["message_count"] == 1
    return user, wait_everos(server, data["task_id"])


def test_every_uploaded_document_is_processed(documents_task):
    _, task = documents_task
    assert task["status"] == "success", task
    items = {i["name"]: i for i in task["items"]}
    assert all(i["state"] == "completed" for i in items.values()), task["items"]
    assert items["falcon-report.pdf"]["pages"] == 3
    assert items["scan.pdf"]["pages"] == 2
    assert (items["travel.docx"]["kind"], items["lisbon.html"]["kind"],
            items["report-mail.eml"]["kind"], items["memos.png"]["kind"]) == (
        "doc", "html", "email", "image")


def test_pdf_text_on_page_two_is_found_with_its_page(server, documents_task):
    user, _ = documents_task
    hit = found(memos_search(server, user, "When did the Falcon launch move?")[
        "memory_detail_list"], "launch moved to March 14")
    assert "Falcon-report.pdf, page 2".lower() in hit["memory_key"].lower()
    assert any(s.endswith("#item=1&page=2") and s.startswith("msg_") for s in hit["sources"])
    assert any(s.startswith("uploads/tenant-a/") and s.endswith("falcon-report.pdf#page=2")
               for s in hit["sources"]), hit["sources"]


def test_scanned_page_is_read_by_ocr(server, documents_task):
    user, _ = documents_task
    hit = found(memos_search(server, user, "invoice number total due")["memory_detail_list"],
                "4711")
    assert any(s.endswith("&page=2") for s in hit["sources"]), hit


@pytest.mark.parametrize("query, expected", [
    ("window seat vegetarian meals", "window seats"),
    ("pastel de nata Manteigaria", "Manteigaria"),
    ("quarterly report attached email", "quarterly report is attached"),
])
def test_docx_html_and_email_content_is_searchable(server, documents_task, query, expected):
    user, _ = documents_task
    found(memos_search(server, user, query)["memory_detail_list"], expected)


def test_html_navigation_is_left_out(server, documents_task):
    user, _ = documents_task
    listed = server.post("get/memory", {"user_id": user, "size": 50}).json()["data"]
    values = " ".join(m["memory_value"] for m in listed["memory_detail_list"])
    assert "Sign in" not in values and "All rights reserved" not in values


def test_image_becomes_a_shared_image_memory(server, documents_task):
    user, _ = documents_task
    hit = found(memos_search(server, user, "shared image")["memory_detail_list"],
                "shared an image")
    assert "stores memories" in hit["memory_value"]
    assert any(s.endswith("#item=6") for s in hit["sources"]), hit["sources"]


def test_everos_search_and_get_return_episodes(server, documents_task):
    user, _ = documents_task
    response = api(server, "memories/search", {
        "filters": {"user_id": user, "session_id": "s1"}, "query": "Falcon launch March",
        "memory_types": ["episodic_memory", "profile", "raw_message"], "top_k": 5})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["query"]["text"] == "Falcon launch March"
    assert any("March 14" in e["episode"] for e in data["episodes"]), data["episodes"]
    assert all(e["user_id"] == user and e["session_id"] == "s1" for e in data["episodes"])
    response = api(server, "memories/get", {"filters": {"user_id": user},
                                            "memory_type": "episodic_memory", "page_size": 5})
    got = response.json()["data"]
    assert response.status_code == 200 and got["count"] == 5 and got["total_count"] > 5
    other_session = api(server, "memories/search", {
        "filters": {"user_id": user, "session_id": "elsewhere"}, "query": "Falcon"})
    assert other_session.json()["data"]["episodes"] == []


# --- one item over a limit leaves the rest processed ------------------------------------

def test_document_over_the_page_limit_fails_alone(server):
    user = f"limits-{uuid.uuid4().hex[:8]}"
    big = sign_and_upload(server, "long.pdf", "file", docs.pdf_pages(201))
    good = sign_and_upload(server, "travel.docx", "file", docs.docx_document())
    response = api(server, "memories", {"user_id": user, "messages": [
        {"role": "user", "timestamp": SEED_EPOCH_MS, "content": [
            {"type": "text", "text": "I moved to Porto last year."},
            {"type": "pdf", "uri": big}, {"type": "doc", "uri": good}]}]})
    task = wait_everos(server, response.json()["data"]["task_id"])
    assert task["status"] == "success", task
    long_pdf, docx = task["items"]
    assert long_pdf["state"] == "failed"
    assert long_pdf["error"].startswith("Processing Failed:") and "200" in long_pdf["error"]
    assert docx["state"] == "completed"
    status = server.post("get/status", {"task_id": task["task_id"]}).json()["data"]
    assert status["status"] == "completed" and status["items"][0]["state"] == "failed"
    found(memos_search(server, user, "Where do I live?")["memory_detail_list"], "Porto")
    found(memos_search(server, user, "vegetarian meals")["memory_detail_list"], "vegetarian")


# --- MemOS parts: the seed's examples -----------------------------------------------------

def seed_add(server: EngramServer, user: str, content: list[dict]) -> dict:
    """As the MemOS multimodal doc sends it: requests + json.dumps + Token header."""
    response = requests.post(f"{server.base_url}/add/message", data=json.dumps({
        "user_id": user, "conversation_id": "1211", "async_mode": False,
        "messages": [{"role": "user", "content": content},
                     {"role": "assistant", "content": "Okay, do you need any help?"}]}),
        headers={"Content-Type": "application/json",
                 "Authorization": f"Token {server.api_key}"}, timeout=60)
    body = response.json()
    assert response.status_code == 200 and body["code"] == 0, body
    # A file part makes the add asynchronous whatever async_mode says.
    assert body["data"]["status"] == "waiting", body
    return server.wait_task(body["data"]["task_id"], timeout=120)


def test_seed_image_url_example(server, origin):
    user = f"seed-image-{uuid.uuid4().hex[:8]}"
    done = seed_add(server, user, [
        {"type": "text", "text": "I am studying MemOS."},
        {"type": "image_url", "image_url": {"url": origin.url("/img/memos.png")}}])
    assert done["status"] == "completed", done
    (item,) = done["items"]
    assert item["state"] == "completed" and item["uri"] == origin.url("/img/memos.png")
    data = memos_search(server, user, "Help me summarize this image", conversation_id="1214")
    values = [m["memory_value"] for m in data["memory_detail_list"]]
    assert any("studying MemOS" in v for v in values), values
    found(data["memory_detail_list"], "shared an image")


def test_seed_base64_image_example(server):
    user = f"seed-b64-{uuid.uuid4().hex[:8]}"
    encoded = base64.b64encode(docs.text_png(PNG_TEXT)).decode()
    done = seed_add(server, user, [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}])
    assert done["status"] == "completed" and done["items"][0]["state"] == "completed", done
    assert done["items"][0]["uri"].startswith("requests/tenant-a/")  # kept, not inline
    hit = found(memos_search(server, user, "image memories")["memory_detail_list"],
                "shared an image")
    assert "finds them again" in hit["memory_value"]


def test_seed_document_url_and_base64_examples(server, origin):
    user = f"seed-doc-{uuid.uuid4().hex[:8]}"
    done = seed_add(server, user, [
        {"type": "file", "file": {"file_data": origin.url("/file/MemOS 2.pdf")}},
        {"type": "file", "file": {"file_data": base64.b64encode(docs.docx_document()).decode(),
                                  "file_name": "travel.docx"}}])
    assert done["status"] == "completed", done
    assert [i["kind"] for i in done["items"]] == ["pdf", "doc"], done["items"]
    hit = found(memos_search(server, user, "launch March")["memory_detail_list"], "March 14")
    assert any("MemOS 2.pdf#page=2" in s or "MemOS%202.pdf#page=2" in s for s in hit["sources"])
    found(memos_search(server, user, "frequent flyer")["memory_detail_list"], "LH-99812")


def test_the_same_url_without_the_allow_list_is_refused(engram_server, origin):
    response = engram_server.post("add/message", {
        "user_id": "no-allow", "conversation_id": "c", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": origin.url("/img/memos.png")}}]}]})
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "content[0].image_url.url" in message and "loopback" in message


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00:ec2::254]/latest/meta-data/",
])
def test_metadata_addresses_are_refused_even_when_allow_listed(server, url):
    before = stored_files(server)
    response = server.post("add/message", {
        "user_id": "ssrf", "conversation_id": "c",
        "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_data": url}}]}]})
    assert response.status_code == 422 and "metadata" in response.json()["message"], response.text
    assert stored_files(server) == before


# --- refusals ----------------------------------------------------------------------------

def test_oversized_upload_is_refused_and_nothing_is_written(server):
    (signed,) = sign(server, ("big.png", "image"))
    assert signed["objectSignedInfo"]["maxSize"] == 10 * 1024 * 1024
    before = stored_files(server)
    response = upload(signed, b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024), "big.png")
    assert response.status_code == 400 and "<Code>EntityTooLarge</Code>" in response.text
    assert stored_files(server) == before
    assert not list((server.data_dir / "objects").rglob("*.tmp"))
    item = {"type": "image", "uri": signed["objectKey"]}
    refused = api(server, "memories", {"user_id": "u", "messages": [{
        "role": "user", "timestamp": 1, "content": [item]}]})
    assert refused.status_code == 404 and "nothing was uploaded" in refused.json()["message"]


def test_wrong_content_type_is_refused(server):
    (signed,) = sign(server, ("photo.png", "image"))
    fields = {**signed["objectSignedInfo"]["fields"], "Content-Type": "text/html"}
    response = upload(signed, docs.text_png(["x"]), "photo.png", fields=fields)
    assert response.status_code == 403
    assert "Policy Condition failed" in response.text and "Content-Type" in response.text
    signed_as_image = api(server, "object/sign", {"objectList": [
        {"fileId": "x", "fileName": "page.html", "fileType": "image"}]})
    assert signed_as_image.status_code == 400
    assert "is not an image" in signed_as_image.json()["error"]


def test_tampered_and_expired_forms_are_refused(server):
    (signed,) = sign(server, ("notes.txt", "file"))
    fields = dict(signed["objectSignedInfo"]["fields"])
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["conditions"][-1] = ["content-length-range", 1, 10 ** 12]
    tampered = {**fields, "policy": base64.b64encode(json.dumps(policy).encode()).decode()}
    response = upload(signed, b"hello", "notes.txt", fields=tampered)
    assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text
    other_key = {**fields, "key": fields["key"].replace("notes.txt", "other.txt")}
    response = upload(signed, b"hello", "notes.txt", fields=other_key)
    assert response.status_code == 403 and "$key" in response.text
    # a form the server signed 10 s in the past (the test reads the server's secret)
    secret = load_or_create_secret(server.data_dir)
    expired = LocalUploadSigner(secret, f"{server.root_url}/uploads").sign(
        fields["key"], "text/plain", 1024, expires_in=-10)
    response = requests.post(expired.url, data=expired.fields, timeout=30,
                             files={"file": ("notes.txt", b"hello", "text/plain")})
    assert response.status_code == 403 and "Policy expired" in response.text
    assert not (server.data_dir / "objects" / fields["key"]).exists()
    assert upload(signed, b"hello", "notes.txt").status_code == 204  # the form itself is fine


def test_a_21st_file_is_refused(server):
    response = api(server, "object/sign", {"objectList": [
        {"fileId": str(i), "fileName": f"f{i}.pdf", "fileType": "file"} for i in range(21)]})
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 2018 and "limit is 20" in body["error"]
    content = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]
    response = server.post("add/message", {"user_id": "u", "conversation_id": "c", "messages": [
        {"role": "user", "content": content * 21}]})
    assert response.status_code == 422 and "limit is 20" in response.json()["message"]


def test_more_than_ten_items_in_a_message_is_refused(server):
    key = sign_and_upload(server, "a.txt", "file", b"some notes")
    response = api(server, "memories", {"user_id": "u", "messages": [{
        "role": "user", "timestamp": 1, "content": [{"type": "doc", "uri": key}] * 11}]})
    assert response.status_code == 422 and "limit is 10 per message" in response.json()["message"]


def test_another_tenants_key_is_refused(server):
    key = sign_and_upload(server, "mine.txt", "file", b"tenant a's notes")
    response = api(server, "memories", {"user_id": "u", "messages": [{
        "role": "user", "timestamp": 1, "content": [{"type": "doc", "uri": key}]}]},
        key=server.other_key)
    assert response.status_code == 403 and "not an object key of this" in response.text


def test_everos_body_over_300_kb_is_413(server):
    response = api(server, "memories", {"user_id": "u", "messages": [
        {"role": "user", "timestamp": 1, "content": "x" * (300 * 1024)}]})
    assert response.status_code == 413 and "300 KB" in response.json()["message"]
