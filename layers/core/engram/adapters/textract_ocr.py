"""OCR with Amazon Textract, read through amazon-textract-response-parser (`trp`).

- `TextractOcr`: the Ocr port for one image (sync DetectDocumentText, ≤ 10 MB PNG/JPEG).
- PDFs go async: `start_pdf_text_detection` starts StartDocumentTextDetection on the object
  in S3 with an SNS topic to call back on; `parse_completion` reads that callback (raw or
  wrapped by an SNS→SQS subscription); `pdf_text_result` pages through
  GetDocumentTextDetection (NextToken) into page-numbered TextBlocks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from engram.errors import ParseError, RetryableError
from engram.models.parsed import ParseResult, TextBlock, paragraphs_to_blocks

MAX_RESULTS_PER_CALL = 1000  # GetDocumentTextDetection's ceiling


class TextractJobNotFinished(RetryableError):
    """The async job is still running: retry later (or wait for its SNS callback)."""


class TextractOcr:
    name = "textract"

    def __init__(self, client: Any = None, *, region_name: str | None = None):
        if client is None:
            import boto3

            client = boto3.client("textract", region_name=region_name)
        self._client = client

    def image_text(self, image: bytes) -> str:
        response = self._client.detect_document_text(Document={"Bytes": image})
        return "\n\n".join(_page_text(page) for page in _document([response]).pages).strip()


def start_pdf_text_detection(
    client: Any,
    *,
    bucket: str,
    key: str,
    sns_topic_arn: str,
    role_arn: str,
    job_tag: str | None = None,
    request_token: str | None = None,
) -> str:
    """Start OCR of a PDF in S3; Textract publishes to the topic when done. `request_token`
    (a business key: same document, same job) makes a retried start return the same job."""
    params: dict[str, Any] = {
        "DocumentLocation": {"S3Object": {"Bucket": bucket, "Name": key}},
        "NotificationChannel": {"SNSTopicArn": sns_topic_arn, "RoleArn": role_arn},
    }
    if job_tag:
        params["JobTag"] = re.sub(r"[^\w.:-]", "_", job_tag)[:64]
    if request_token:
        params["ClientRequestToken"] = re.sub(r"[^\w-]", "_", request_token)[:64]
    return client.start_document_text_detection(**params)["JobId"]


class TextractPdfJobs:
    """The OcrJobs port: one StartDocumentTextDetection per PDF in the bucket, its
    completion published to `sns_topic_arn` by Textract assuming `role_arn`."""

    def __init__(self, client: Any, *, bucket: str, sns_topic_arn: str, role_arn: str):
        self._client = client
        self._bucket = bucket
        self._topic = sns_topic_arn
        self._role = role_arn

    def start(self, key: str, *, job_tag: str, request_token: str) -> str:
        return start_pdf_text_detection(self._client, bucket=self._bucket, key=key,
                                        sns_topic_arn=self._topic, role_arn=self._role,
                                        job_tag=job_tag, request_token=request_token)

    def status(self, job_id: str) -> str:
        return self._client.get_document_text_detection(JobId=job_id, MaxResults=1)["JobStatus"]

    def result(self, job_id: str) -> ParseResult:
        return pdf_text_result(self._client, job_id)


@dataclass(frozen=True)
class TextractCompletion:
    job_id: str
    status: str  # SUCCEEDED | FAILED | ERROR | PARTIAL_SUCCESS
    job_tag: str
    bucket: str
    key: str

    @property
    def succeeded(self) -> bool:
        return self.status in ("SUCCEEDED", "PARTIAL_SUCCESS")


def parse_completion(message: str | dict) -> TextractCompletion:
    """Textract's completion notice, as SNS delivers it or as an SQS body holding the SNS
    envelope (a subscription without raw message delivery)."""
    body = json.loads(message) if isinstance(message, str) else message
    if "Message" in body and "JobId" not in body:  # the SNS envelope
        body = json.loads(body["Message"])
    location = body.get("DocumentLocation") or {}
    return TextractCompletion(
        job_id=body["JobId"],
        status=body["Status"],
        job_tag=body.get("JobTag") or "",
        bucket=location.get("S3Bucket", ""),
        key=location.get("S3ObjectName", ""),
    )


def pdf_text_result(client: Any, job_id: str) -> ParseResult:
    """All of a finished job's pages → blocks with 1-based page numbers."""
    responses = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"JobId": job_id, "MaxResults": MAX_RESULTS_PER_CALL}
        if token:
            params["NextToken"] = token
        response = client.get_document_text_detection(**params)
        status = response.get("JobStatus")
        if status == "IN_PROGRESS":
            raise TextractJobNotFinished(f"Textract job {job_id} is still running")
        if status == "FAILED":
            reason = response.get("StatusMessage") or "no reason given"
            raise ParseError(f"OCR of the PDF failed: {reason}")
        responses.append(response)
        token = response.get("NextToken")
        if not token:
            break
    result = text_blocks_result(responses)
    if status == "PARTIAL_SUCCESS":
        result.warnings.append("OCR read only part of the PDF (Textract: partial success)")
    return result


def text_blocks_result(responses: list[dict]) -> ParseResult:
    """Textract responses (one per NextToken page) → a pdf ParseResult."""
    document = _document(responses)
    blocks: list[TextBlock] = []
    for index, page in enumerate(document.pages):
        number = page.blocks[0].get("Page", index + 1) if page.blocks else index + 1
        text = _page_text(page)
        blocks += paragraphs_to_blocks([(text, False)], page=number)
    pages = (responses[0].get("DocumentMetadata") or {}).get("Pages") if responses else None
    warnings = [
        f"Textract: {w.get('ErrorCode')} on pages {w.get('Pages')}"
        for r in responses for w in r.get("Warnings") or []
    ]
    return ParseResult(kind="pdf", blocks=blocks, pages=pages or len(document.pages),
                       warnings=warnings)


def _document(responses: list[dict]):
    import trp

    return trp.Document(responses)


def _page_text(page) -> str:
    # Textract's own line order (trp's getLinesInReadingOrder mis-groups short lines).
    return "\n".join(line.text for line in page.lines).strip()
