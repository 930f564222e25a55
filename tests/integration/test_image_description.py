"""Images described by a vision model, against a real `engram serve` configured with a
local server speaking OpenAI's chat-completions protocol (tests/fakes/openai_server.py):
the seed's image examples → status completed → a memory of what the image shows; the
vision endpoint failing → the item completes with its OCR text and a warning; no vision
model configured → OCR only, as before."""

from __future__ import annotations

import base64
import uuid

import pytest
from tests import fixtures_docs as docs
from tests.conftest import EngramServer, server_env
from tests.fakes.openai_server import OpenAIEmbeddingsServer
from tests.integration.test_multimodal import PNG_TEXT, Origin, found, memos_search, seed_add

pytestmark = pytest.mark.slow

MODEL = "gpt-4o-mini"
KEY = "sk-vision-e2e-0123456789"
DESCRIPTION = "A diagram of the MemOS memory layer with its API boxes."
MEMORY = 'The user shared an image of a diagram of the MemOS memory layer with its API boxes'


@pytest.fixture(scope="module")
def vision():
    fake = OpenAIEmbeddingsServer()
    fake.chat_model, fake.description = MODEL, DESCRIPTION
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def origin():
    served = Origin({"/img/1758706201390_iluj1c_compressed.png": (
        docs.text_png(PNG_TEXT), "image/png")})
    yield served
    served.server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory, vision, origin) -> EngramServer:
    engram = EngramServer(
        data_dir=tmp_path_factory.mktemp("vision") / "data", env=server_env(
            ENGRAM_VISION_MODEL=MODEL, ENGRAM_VISION_BASE_URL=vision.base_url,
            ENGRAM_VISION_API_KEY=KEY, ENGRAM_VISION_TIMEOUT_SECONDS="10",
            ENGRAM_FETCH_ALLOW_HOSTS=f"127.0.0.1:{origin.port}"))
    engram.start()
    yield engram
    engram.stop()


@pytest.fixture
def healthy(vision):
    vision.chat_failure = None
    yield vision
    vision.chat_failure = None


def test_seed_image_url_example_remembers_what_the_image_shows(server, origin, healthy):
    user = f"vision-url-{uuid.uuid4().hex[:8]}"
    url = origin.url("/img/1758706201390_iluj1c_compressed.png")
    done = seed_add(server, user, [{"type": "text", "text": "I am studying MemOS."},
                                   {"type": "image_url", "image_url": {"url": url}}])
    assert done["status"] == "completed", done
    (item,) = done["items"]
    assert item["state"] == "completed" and item["warnings"] == [], item
    request = healthy.requests[-1]
    assert request["auth"] == f"Bearer {KEY}" and request["body"]["model"] == MODEL
    assert healthy.images[-1] == ("image/png", docs.text_png(PNG_TEXT))

    data = memos_search(server, user, "Help me summarize this image", conversation_id="1214")
    hit = found(data["memory_detail_list"], MEMORY)
    # What it shows and the text on it, in one memory of the image.
    assert "stores memories" in hit["memory_value"], hit["memory_value"]
    assert any(s.endswith("#item=1") for s in hit["sources"]), hit["sources"]
    assert url in hit["sources"]
    values = [m["memory_value"] for m in data["memory_detail_list"]]
    assert any("studying MemOS" in v for v in values), values


def test_seed_base64_example_is_described_too(server, healthy):
    user = f"vision-b64-{uuid.uuid4().hex[:8]}"
    encoded = base64.b64encode(docs.text_png(PNG_TEXT)).decode()
    done = seed_add(server, user, [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}])
    assert done["status"] == "completed" and done["items"][0]["warnings"] == [], done
    found(memos_search(server, user, "what diagram did I share")["memory_detail_list"],
          MEMORY)


def test_a_failing_vision_endpoint_leaves_ocr_text_and_a_warning(server, healthy):
    healthy.chat_failure = 500
    asked = len(healthy.requests)
    user = f"vision-500-{uuid.uuid4().hex[:8]}"
    encoded = base64.b64encode(docs.text_png(PNG_TEXT)).decode()
    done = seed_add(server, user, [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}])
    assert done["status"] == "completed", done
    (item,) = done["items"]
    assert item["state"] == "completed" and item["error"] is None, item
    assert item["warnings"] == [
        "image description unavailable: the vision endpoint answered HTTP 500"], item
    assert len(healthy.requests) - asked == 2  # one retry, no more
    hit = found(memos_search(server, user, "image memories")["memory_detail_list"],
                "shared an image of text reading")
    assert "finds them again" in hit["memory_value"] and "diagram" not in hit["memory_value"]
    assert KEY not in server.log_path.read_text()


def test_without_a_vision_model_images_are_read_by_ocr_alone(engram_server):
    user = f"no-vision-{uuid.uuid4().hex[:8]}"
    encoded = base64.b64encode(docs.text_png(PNG_TEXT)).decode()
    done = seed_add(engram_server, user, [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}])
    assert done["status"] == "completed" and done["items"][0]["warnings"] == [], done
    hit = found(memos_search(engram_server, user, "image memories")["memory_detail_list"],
                'The user shared an image of text reading "')
    assert "stores memories" in hit["memory_value"] and ";" not in hit["memory_value"]
