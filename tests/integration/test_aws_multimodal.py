"""The AWS profile's multimodal path under moto: object/sign through the API function gives
S3 pre-signed POST forms whose policy pins key, content type and size range (checked in
the policy document itself: moto does not enforce POST policies); the file is posted to
S3 (moto) as a client would; the EverOS add names the key; then the real parse, extract,
dedupe and index handlers run, with Textract (moto, answering with Textract-shaped
blocks read by amazon-textract-response-parser): synchronously for the image, as one
asynchronous job with an SNS callback for the PDF's scanned page."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
from moto.textract.models import TextractBackend
from tests import fixtures_docs as docs
from tests.fakes.aws import aws_credentials  # noqa: F401 - fixture
from tests.fakes.openai_server import OpenAIEmbeddingsServer
from tests.integration.aws_stack import (
    API_KEY,
    BUCKET,
    TENANT,
    VISION_SECRET,
    MotoStack,
    call_api,
    invoke,
    load_event,
    moto_stack,
)
from tests.integration.test_parsing_textract import textract_blocks

from engram.config import VisionSettings
from engram.models.domain import TaskRef
from engram.models.pipeline import ParsedMessages, work_key

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

OCR_LINES = ["MemOS stores memories", "and finds them again"]


@pytest.fixture
def stack(aws_credentials, monkeypatch) -> MotoStack:  # noqa: F811 - fixture imported above
    monkeypatch.setattr(TextractBackend, "BLOCKS", textract_blocks([OCR_LINES]))
    with moto_stack(monkeypatch) as stack:
        stack.runtime.services.keys.register(API_KEY, TENANT, label="test")
        yield stack


def sign(*files: tuple[str, str]) -> list[dict]:
    response = call_api("POST", "object/sign", {"objectList": [
        {"fileId": f"f{i}", "fileName": name, "fileType": kind}
        for i, (name, kind) in enumerate(files)]}, prefix="/api/v1")
    assert response.status == 200, response.body
    assert response.body["status"] == 0 and response.body["error"] == "OK"
    return response.body["result"]["data"]["objectList"]


def policy_of(signed: dict) -> dict:
    return json.loads(base64.b64decode(signed["objectSignedInfo"]["fields"]["policy"]))


@pytest.mark.parametrize("name, kind, content_type, max_bytes", [
    ("photo.png", "image", "image/png", 10 * 2**20),
    ("report.pdf", "file", "application/pdf", 100 * 2**20),
    ("talk.mp3", "file", "audio/mpeg", 500 * 2**20),
    ("clip.mp4", "video", "video/mp4", 500 * 2**20),
])
def test_signed_post_policy_pins_key_type_and_size(stack, name, kind, content_type, max_bytes):
    (signed,) = sign((name, kind))
    key = signed["objectKey"]
    assert key.startswith(f"uploads/{TENANT}/anon/") and key.endswith("/" + name)
    info = signed["objectSignedInfo"]
    assert info["url"] == f"https://{BUCKET}.s3.amazonaws.com/" and info["maxSize"] == max_bytes
    fields = info["fields"]
    assert fields["key"] == key and fields["Content-Type"] == content_type
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4, not the retired SigV2
    assert {"x-amz-credential", "x-amz-date", "x-amz-signature"} <= set(fields)
    policy = policy_of(signed)
    conditions = policy["conditions"]
    assert {"bucket": BUCKET} in conditions and {"key": key} in conditions
    assert {"Content-Type": content_type} in conditions
    assert ["content-length-range", 1, max_bytes] in conditions
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    left = (expires - datetime.now(UTC)).total_seconds()
    assert 14 * 60 < left <= 15 * 60 + 5


def test_sign_refuses_a_21st_file(stack):
    response = call_api("POST", "object/sign", {"objectList": [
        {"fileId": str(i), "fileName": f"{i}.pdf", "fileType": "file"} for i in range(21)]},
        prefix="/api/v1")
    assert response.status == 400 and response.body["status"] == 2018
    assert "limit is 20" in response.body["error"]


def post_to_s3(signed: dict, data: bytes) -> None:
    info = signed["objectSignedInfo"]
    response = requests.post(info["url"], data=info["fields"], timeout=30, files={
        "file": (signed["fileName"], data, info["fields"]["Content-Type"])})
    assert response.status_code == 204, response.text


def run_steps(stack: MotoStack, task_id: str, user_id: str) -> None:
    ref = TaskRef(tenant_id=TENANT, task_id=task_id, user_id=user_id).model_dump()
    for step in ("parse", "extract", "dedupe", "index"):
        assert invoke(step, ref) == ref


def test_upload_add_and_parse_step_under_moto(stack, monkeypatch):
    user = f"aws-docs-{uuid.uuid4().hex[:8]}"
    report, scan, image = sign(("falcon-report.pdf", "file"), ("scan.pdf", "file"),
                               ("memos.png", "image"))
    post_to_s3(report, docs.pdf_text_on_page_two())
    post_to_s3(scan, docs.pdf_scanned())
    post_to_s3(image, docs.text_png(OCR_LINES))

    added = call_api("POST", "memories", {"user_id": user, "messages": [{
        "role": "user", "timestamp": int(time.time() * 1000), "content": [
            {"type": "text", "text": "The Falcon files."},
            {"type": "pdf", "uri": report["objectKey"]},
            {"type": "pdf", "uri": scan["objectKey"]},
            {"type": "image", "uri": image["objectKey"]}]}]}, prefix="/api/v1")
    assert added.status == 202 and added.body["data"]["status"] == "accumulated", added.body
    task_id = added.body["data"]["task_id"]
    assert [e["name"] for e in stack.executions()] == [task_id]  # the state machine started

    ref = TaskRef(tenant_id=TENANT, task_id=task_id, user_id=user).model_dump()
    parsed_ref = invoke("parse", ref)
    # The scan's text layer is read now; its scanned page waits for one async Textract job.
    message_id = stack.task(task_id).items[0].message_id
    job = {"message_id": message_id, "index": 2, "engine": "ocr"}
    assert parsed_ref == {**ref, "content_jobs": [job]}
    task = stack.task(task_id)
    assert [(i.state, i.kind, i.pages) for i in task.items] == [
        ("completed", "pdf", 3), ("processing", "pdf", 2), ("completed", "image", None)]
    waiting = call_api("GET", f"tasks/{task_id}", prefix="/api/v1").body["data"]
    assert waiting["status"] == "processing", waiting
    assert [(i["state"], i["pages"]) for i in waiting["items"]][1] == ("processing", 2)

    # The state machine's wait: start_content_job with the task token, Textract → SNS →
    # the OCR queue → ocr_done (moto's job holds blocks for both pages, as Textract's would).
    monkeypatch.setattr(TextractBackend, "BLOCKS",
                        textract_blocks([["Cover letter from Acme Corp."], OCR_LINES]))
    started = invoke("start_content_job", {**ref, "job": job, "task_token": "token-scan"})
    assert started["engine"] == "ocr" and started["job_id"]
    assert invoke("ocr_done", stack.ocr_notices()) == {"batchItemFailures": []}
    done = {**ref, "job": job, "outcome": {"message_id": message_id, "index": 2, "blocks": 1}}
    assert invoke("collect_content", {**parsed_ref, "content_results": [done]}) == ref

    task = stack.task(task_id)
    assert [(i.state, i.kind, i.pages) for i in task.items] == [
        ("completed", "pdf", 3), ("completed", "pdf", 2), ("completed", "image", None)]
    parsed = ParsedMessages.model_validate_json(stack.s3.get_object(
        Bucket=BUCKET, Key=work_key(TENANT, task_id, "parsed"))["Body"].read())
    pages = {(b.name, b.page): b.text for b in parsed.blocks}
    assert "launch moved to March 14" in pages[("falcon-report.pdf", 2)]
    assert pages[("scan.pdf", 1)] == "Cover letter from Acme Corp."  # the text layer
    assert "MemOS stores memories" in pages[("scan.pdf", 2)]  # Textract read the scan
    assert [b.page for b in parsed.blocks if b.name == "scan.pdf"] == [1, 2]
    assert any("[image: text reading" in m.text for m in parsed.messages)

    for step in ("extract", "dedupe", "index"):
        assert invoke(step, ref) == ref
    status = call_api("GET", f"tasks/{task_id}", prefix="/api/v1")
    assert status.body["data"]["status"] == "success", status.body
    found = call_api("POST", "search/memory", {"query": "When did the Falcon launch move?",
                                               "user_id": user, "memory_limit_number": 10})
    hits = [m for m in found.body["data"]["memory_detail_list"]
            if "March 14" in m["memory_value"]]
    assert hits, found.body
    assert any(s == f"{report['objectKey']}#page=2" for hit in hits for s in hit["sources"])


def test_item_failures_are_per_item_on_aws(stack):
    user = f"aws-fail-{uuid.uuid4().hex[:8]}"
    (fake,) = sign(("fake.png", "image"))
    post_to_s3(fake, b"this is not a png at all")
    added = call_api("POST", "memories", {"user_id": user, "messages": [{
        "role": "user", "timestamp": int(time.time() * 1000), "content": [
            {"type": "text", "text": "I moved to Porto last year."},
            {"type": "image", "uri": fake["objectKey"]}]}]}, prefix="/api/v1")
    task_id = added.body["data"]["task_id"]
    run_steps(stack, task_id, user)
    task = stack.task(task_id)
    assert task.status == "completed"
    (item,) = task.items
    assert item.state == "failed" and item.error.startswith("Processing Failed: ")
    assert "not an image" in item.error


def test_images_are_described_when_a_vision_model_is_set(aws_credentials,  # noqa: F811
                                                          monkeypatch):
    """The parse step under moto: Textract reads the text, the vision model (its key from
    Secrets Manager) says what the image shows; both reach the memory."""
    vision = OpenAIEmbeddingsServer()
    vision.chat_model = "gpt-4o-mini"
    monkeypatch.setattr(TextractBackend, "BLOCKS", textract_blocks([OCR_LINES]))
    settings = VisionSettings(model="gpt-4o-mini", base_url=vision.base_url)
    try:
        with moto_stack(monkeypatch, vision=settings) as stack:
            stack.runtime.services.keys.register(API_KEY, TENANT, label="test")
            user = f"aws-vision-{uuid.uuid4().hex[:8]}"
            (image,) = sign(("bike.png", "image"))
            post_to_s3(image, docs.text_png(OCR_LINES))
            added = call_api("POST", "memories", {"user_id": user, "messages": [{
                "role": "user", "timestamp": int(time.time() * 1000), "content": [
                    {"type": "image", "uri": image["objectKey"]}]}]}, prefix="/api/v1")
            run_steps(stack, added.body["data"]["task_id"], user)
            (item,) = stack.task(added.body["data"]["task_id"]).items
            assert item.state == "completed" and item.warnings == []
            found = call_api("POST", "search/memory", {"query": "bicycle", "user_id": user})
            values = [m["memory_value"] for m in found.body["data"]["memory_detail_list"]]
            assert any(v.startswith("The user shared an image of a photo of a red bicycle "
                                    "leaning on a wall; text reading \"MemOS stores")
                       for v in values), values
    finally:
        vision.close()
    assert vision.requests[-1]["auth"] == f"Bearer {VISION_SECRET}"


def test_never_uploaded_and_foreign_keys_are_refused(stack):
    (signed,) = sign(("never.pdf", "file"))
    refused = call_api("POST", "memories", {"user_id": "u", "messages": [{
        "role": "user", "timestamp": 1, "content": [{"type": "pdf", "uri": signed["objectKey"]}]}]},
        prefix="/api/v1")
    assert refused.status == 404 and "nothing was uploaded" in refused.body["message"]
    foreign = signed["objectKey"].replace(f"uploads/{TENANT}/", "uploads/tenant-b/")
    refused = call_api("POST", "memories", {"user_id": "u", "messages": [{
        "role": "user", "timestamp": 1, "content": [{"type": "pdf", "uri": foreign}]}]},
        prefix="/api/v1")
    assert refused.status == 403


def test_the_sample_events_drive_the_api_function(stack):
    """events/api/everos_*.json, as `sam local invoke ApiFunction -e ...` would send them."""
    response = invoke("api", load_event("api", "everos_object_sign"))
    body = json.loads(response["body"])
    assert response["statusCode"] == 200 and len(body["result"]["data"]["objectList"]) == 2
    event = load_event("api", "everos_add_memories")
    for item in json.loads(event["body"])["messages"][0]["content"][1:]:
        stack.s3.put_object(Bucket=BUCKET, Key=item["uri"], Body=b"%PDF-1.4 sample")
    response = invoke("api", event)
    assert response["statusCode"] == 202, response["body"]
    assert json.loads(response["body"])["data"]["status"] == "accumulated"
