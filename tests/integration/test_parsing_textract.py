"""Textract OCR (AWS profile) under moto, with responses shaped as Textract returns them,
read by the real amazon-textract-response-parser: sync for images, async with an SNS
callback and NextToken pages for PDFs."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.textract.models import TextractBackend
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - fixture

from engram.adapters.textract_ocr import (
    TextractJobNotFinished,
    TextractOcr,
    parse_completion,
    pdf_text_result,
    start_pdf_text_detection,
)
from engram.errors import ParseError


def geometry(top: float) -> dict:
    box = {"Width": 0.5, "Height": 0.03, "Left": 0.1, "Top": top}
    corners = [(0.1, top), (0.6, top), (0.6, top + 0.03), (0.1, top + 0.03)]
    return {"BoundingBox": box, "Polygon": [{"X": x, "Y": y} for x, y in corners]}


def textract_blocks(pages: list[list[str]], *, with_page_field: bool = True) -> list[dict]:
    """PAGE → LINE → WORD blocks as DetectDocumentText / GetDocumentTextDetection return them."""
    blocks: list[dict] = []
    for lines in pages:
        page = {"BlockType": "PAGE", "Id": str(uuid.uuid4()), "Geometry": geometry(0.0),
                "Relationships": [{"Type": "CHILD", "Ids": []}]}
        blocks.append(page)
        for n, text in enumerate(lines):
            line = {"BlockType": "LINE", "Id": str(uuid.uuid4()), "Text": text,
                    "Confidence": 99.1, "Geometry": geometry(0.1 + n * 0.05),
                    "Relationships": [{"Type": "CHILD", "Ids": []}]}
            page["Relationships"][0]["Ids"].append(line["Id"])
            blocks.append(line)
            for word_text in text.split():
                word = {"BlockType": "WORD", "Id": str(uuid.uuid4()), "Text": word_text,
                        "TextType": "PRINTED", "Confidence": 98.7,
                        "Geometry": geometry(0.1 + n * 0.05)}
                line["Relationships"][0]["Ids"].append(word["Id"])
                blocks.append(word)
    if with_page_field:
        number = 0
        for block in blocks:
            number += block["BlockType"] == "PAGE"
            block["Page"] = number
    return blocks


PAGES = [["Invoice number 4711", "Acme Corp, Lisbon"], ["Total due 250 EUR"], ["Thank you"]]


@pytest.fixture
def aws(aws_credentials, monkeypatch):  # noqa: F811 - the fixture imported above
    monkeypatch.setattr(TextractBackend, "BLOCKS", textract_blocks(PAGES))
    monkeypatch.setattr(TextractBackend, "PAGES", 3)
    with mock_aws():
        yield


def test_image_text_sync(aws, monkeypatch):
    lines = [["Hello from Engram", "Order 4711 ships Monday"]]
    # sync responses carry no Page field
    monkeypatch.setattr(TextractBackend, "BLOCKS", textract_blocks(lines, with_page_field=False))

    text = TextractOcr(region_name=REGION).image_text(b"\x89PNG\r\n\x1a\n...")

    assert text == "Hello from Engram\nOrder 4711 ships Monday"


def test_pdf_async_job_calls_back_through_sns_and_pages_keep_their_numbers(aws):
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    textract = boto3.client("textract", region_name=REGION)
    topic = sns.create_topic(Name="engram-textract-done")["TopicArn"]
    queue = sqs.create_queue(QueueName="engram-textract-done")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    job_id = start_pdf_text_detection(
        textract, bucket="engram-ingest", key="t1/uploads/invoice.pdf",
        sns_topic_arn=topic, role_arn="arn:aws:iam::123456789012:role/textract-sns",
        job_tag="task:abc/1", request_token="t1/uploads/invoice.pdf")

    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    done = parse_completion(message["Body"])  # the SNS envelope, as SQS delivers it
    assert (done.job_id, done.status, done.succeeded) == (job_id, "SUCCEEDED", True)
    assert (done.bucket, done.key) == ("engram-ingest", "t1/uploads/invoice.pdf")

    result = pdf_text_result(textract, done.job_id)

    assert result.kind == "pdf" and result.pages == 3
    assert [(b.page, b.text) for b in result.blocks] == [
        (1, "Invoice number 4711\nAcme Corp, Lisbon"), (2, "Total due 250 EUR"), (3, "Thank you")]


def test_results_spread_over_next_token_pages_are_joined():
    """A page's blocks may straddle two GetDocumentTextDetection responses."""
    blocks = textract_blocks(PAGES)
    first, second = blocks[:11], blocks[11:]  # cut inside page 2's blocks
    assert first[-1]["Page"] == 2 and second[0]["Page"] == 2
    client = boto3.client("textract", region_name=REGION, aws_access_key_id="x",
                          aws_secret_access_key="x")
    meta = {"Pages": 3}
    with Stubber(client) as stub:
        stub.add_response("get_document_text_detection",
                          {"JobStatus": "SUCCEEDED", "DocumentMetadata": meta, "Blocks": first,
                           "NextToken": "page-2"},
                          {"JobId": "job-1", "MaxResults": 1000})
        stub.add_response("get_document_text_detection",
                          {"JobStatus": "SUCCEEDED", "DocumentMetadata": meta, "Blocks": second,
                           "Warnings": [{"ErrorCode": "LOW_QUALITY", "Pages": [3]}]},
                          {"JobId": "job-1", "MaxResults": 1000, "NextToken": "page-2"})
        result = pdf_text_result(client, "job-1")
        stub.assert_no_pending_responses()

    assert [b.page for b in result.blocks] == [1, 2, 3]
    assert result.blocks[1].text == "Total due 250 EUR"
    assert result.warnings == ["Textract: LOW_QUALITY on pages [3]"]


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [("IN_PROGRESS", TextractJobNotFinished, "still running"),
     ("FAILED", ParseError, "^OCR of the PDF failed: unsupported document format$")],
)
def test_unfinished_and_failed_jobs(status, error, match):
    client = boto3.client("textract", region_name=REGION, aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("get_document_text_detection",
                          {"JobStatus": status, "StatusMessage": "unsupported document format"})
        with pytest.raises(error, match=match):
            pdf_text_result(client, "job-2")


def test_completion_notice_raw_from_sns():
    notice = {"JobId": "j-9", "Status": "FAILED", "API": "StartDocumentTextDetection",
              "JobTag": "task_1", "Timestamp": 1,
              "DocumentLocation": {"S3ObjectName": "k.pdf", "S3Bucket": "b"}}
    done = parse_completion(json.dumps(notice))
    assert (done.job_id, done.succeeded, done.job_tag) == ("j-9", False, "task_1")
    assert (done.bucket, done.key) == ("b", "k.pdf")
