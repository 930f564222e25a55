"""The OpenAI-compatible image describer through the unmodified `openai` client against a
local server speaking the chat-completions wire protocol; its wiring in both runtimes."""

from __future__ import annotations

import base64
import io
import logging
import os
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from PIL import Image
from tests import fixtures_docs as docs
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - a fixture
from tests.fakes.openai_server import OpenAIEmbeddingsServer

from engram.adapters.openai_vision import MAX_TOKENS, OpenAIVisionDescriber, vision_client
from engram.aws.runtime import default_describer
from engram.config import Settings
from engram.errors import ImageDescriptionFailed
from engram.local.runtime import local_describer

SECRET = "sk-vision-test-0123456789"


@pytest.fixture
def server():
    fake = OpenAIEmbeddingsServer()
    yield fake
    fake.close()


def describer(server: OpenAIEmbeddingsServer, timeout: float = 5) -> OpenAIVisionDescriber:
    return OpenAIVisionDescriber(vision_client(server.base_url, SECRET, timeout=timeout),
                                 "gpt-4o-mini")


def test_the_image_goes_as_a_data_url_and_one_sentence_comes_back(server):
    png = docs.text_png(["Gate B12"])
    server.chat_model = "gpt-4o-mini"
    assert describer(server).describe(png, "image/png") == \
        "A photo of a red bicycle leaning on a wall."
    (request,) = server.requests
    body = request["body"]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == f"Bearer {SECRET}"
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == MAX_TOKENS
    (message,) = body["messages"]
    text, image = message["content"]
    assert "one short, factual sentence" in text["text"]
    assert image["image_url"]["url"] == \
        f"data:image/png;base64,{base64.b64encode(png).decode()}"
    assert server.images == [("image/png", png)]


def test_the_answer_is_one_line(server):
    server.description = "  A whiteboard\n with a   diagram  "
    assert describer(server).describe(b"\xff\xd8\xff", "image/jpeg") == \
        "A whiteboard with a diagram"


@pytest.mark.parametrize(("status", "reason"), [
    (500, "HTTP 500"), (404, "HTTP 404"), (401, "HTTP 401")])
def test_http_errors_say_the_status_and_never_the_key(server, status, reason, caplog):
    server.chat_failure = status
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ImageDescriptionFailed, match=reason) as failed:
        describer(server).describe(b"\x89PNG\r\n\x1a\n", "image/png")
    assert SECRET not in str(failed.value) and SECRET not in caplog.text
    # One retry at most for a server error; none for a refusal.
    assert len(server.requests) == (2 if status >= 500 else 1)


def test_a_slow_endpoint_times_out(server):
    server.chat_delay = 1.5
    with pytest.raises(ImageDescriptionFailed, match="timed out"):
        OpenAIVisionDescriber(vision_client(server.base_url, SECRET, timeout=0.3).with_options(
            max_retries=0), "m").describe(b"\x89PNG\r\n\x1a\n", "image/png")


def test_an_unreachable_endpoint(server):
    base_url = server.base_url
    server.close()
    client = vision_client(base_url, SECRET, timeout=1).with_options(max_retries=0)
    with pytest.raises(ImageDescriptionFailed, match="could not be reached"):
        OpenAIVisionDescriber(client, "m").describe(b"\x89PNG\r\n\x1a\n", "image/png")


def test_an_empty_answer_is_a_failure(server):
    server.description = ""
    with pytest.raises(ImageDescriptionFailed, match="no description"):
        describer(server).describe(b"\x89PNG\r\n\x1a\n", "image/png")


def test_local_settings_wire_the_describer(server, monkeypatch):
    for name in ("ENGRAM_VISION_MODEL", "ENGRAM_VISION_BASE_URL", "ENGRAM_VISION_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert local_describer(Settings()) is None  # off unless configured
    monkeypatch.setenv("ENGRAM_VISION_MODEL", "llava")
    monkeypatch.setenv("ENGRAM_VISION_BASE_URL", server.base_url)
    monkeypatch.setenv("ENGRAM_VISION_API_KEY", SECRET)
    settings = Settings()
    assert SECRET not in repr(settings)
    assert local_describer(settings).describe(docs.text_png(["x"]), "image/png")
    assert server.requests[-1]["body"]["model"] == "llava"
    assert server.requests[-1]["auth"] == f"Bearer {SECRET}"
    monkeypatch.delenv("ENGRAM_VISION_MODEL")
    with pytest.raises(ValueError, match="ENGRAM_VISION_MODEL"):
        Settings()


def aws_settings(**env: str) -> Settings:
    with mock.patch.dict(os.environ, {
            "AWS_REGION": REGION, "ENGRAM_TASKS_TABLE": "t", "ENGRAM_API_KEYS_TABLE": "k",
            "ENGRAM_RECORDS_TABLE": "r", "ENGRAM_IDEMPOTENCY_TABLE": "i", "ENGRAM_BUCKET": "b",
            **env}):
        return Settings()


def test_aws_runtime_reads_the_key_from_secrets_manager_on_first_use(
        server, aws_credentials):  # noqa: F811
    assert default_describer(aws_settings()) is None
    with pytest.raises(ValueError, match="ENGRAM_VISION_MODEL"):
        aws_settings(ENGRAM_VISION_BASE_URL=server.base_url)
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="engram/provider", SecretString=SECRET)["ARN"]
        built = default_describer(aws_settings(
            ENGRAM_VISION_MODEL="gpt-4o-mini", ENGRAM_VISION_BASE_URL=server.base_url,
            ENGRAM_PROVIDER_SECRET_ARN=arn))
        assert server.requests == []  # nothing called at cold start
        gif = io.BytesIO()
        Image.new("RGB", (4, 4), "red").save(gif, format="GIF")
        assert built.describe(gif.getvalue(), "image/gif").startswith("A photo")
    assert server.requests[-1]["auth"] == f"Bearer {SECRET}"
    assert server.images[-1][0] == "image/gif"
