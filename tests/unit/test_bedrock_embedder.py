"""BedrockEmbedder with a real bedrock-runtime client whose HTTP layer is replaced:
botocore's Stubber for request shape and errors (moto cannot invoke Bedrock models),
and a before-send hook that answers each request from its own body for the parallel
path, where responses arrive in any order."""

from __future__ import annotations

import io
import json
import threading
import time

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - fixture

from engram.adapters.bedrock_embedder import PARALLEL_CALLS, BedrockEmbedder
from engram.errors import PermanentError, RetryableError

MODEL = "amazon.titan-embed-text-v2:0"


@pytest.fixture
def client(aws_credentials):  # noqa: F811 - the fixture imported above
    return boto3.client("bedrock-runtime", region_name=REGION)


def titan_response(embedding: list[float]) -> dict:
    data = json.dumps({"embedding": embedding, "inputTextTokenCount": 3}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def fake_embedding(text: str, dimension: int) -> list[float]:
    vector = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(dimension)
    return (vector / np.linalg.norm(vector)).tolist()


def test_one_text_is_one_invoke_model_call_with_the_titan_v2_body(client):
    sent = []
    client.meta.events.register("before-parameter-build.bedrock-runtime.InvokeModel",
                                lambda params, **_: sent.append(json.loads(params["body"])))
    embedder = BedrockEmbedder(client, dimension=256)
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response([3.0, 4.0] + [0.0] * 254),
                          {"modelId": MODEL, "body": ANY, "contentType": "application/json",
                           "accept": "application/json"})
        vectors = embedder.embed(["hotel in paris"])

    assert sent == [{"inputText": "hotel in paris", "dimensions": 256, "normalize": True}]
    assert vectors.dtype == np.float32 and vectors.shape == (1, 256)
    assert vectors[0, :2] == pytest.approx([0.6, 0.8])  # unit length whatever comes back
    assert embedder.model_name == MODEL and embedder.dimension == 256


def test_no_texts_no_calls(client):
    with Stubber(client):
        assert BedrockEmbedder(client).embed([]).shape == (0, 1024)


@pytest.mark.parametrize("code, status, error", [
    ("ThrottlingException", 429, RetryableError),
    ("ServiceUnavailableException", 503, RetryableError),
    ("ModelTimeoutException", 408, RetryableError),
    ("InternalServerException", 500, RetryableError),
    ("ValidationException", 400, PermanentError),
    ("AccessDeniedException", 403, PermanentError),
])
def test_failures_are_classified_for_the_state_machine(client, code, status, error):
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", service_error_code=code,
                              service_message="nope", http_status_code=status)
        with pytest.raises(error, match=code):
            BedrockEmbedder(client).embed(["x"])


def test_a_response_of_the_wrong_size_is_refused(client):
    with Stubber(client) as stub:
        stub.add_response("invoke_model", titan_response([0.1] * 512))
        with pytest.raises(PermanentError, match="512 dimensions, expected 1024"):
            BedrockEmbedder(client).embed(["x"])


def test_only_titan_v2_dimensions_are_accepted(client):
    with pytest.raises(ValueError, match="384"):
        BedrockEmbedder(client, dimension=384)


def test_a_batch_runs_in_parallel_and_keeps_its_order(client):
    in_flight, peak, lock = 0, 0, threading.Lock()

    def answer(request, **_):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)
        text = json.loads(request.body)["inputText"]
        with lock:
            in_flight -= 1
        body = json.dumps({"embedding": fake_embedding(text, 512)}).encode()
        return AWSResponse(request.url, 200, {"content-type": "application/json"},
                           _RawBody(body))

    client.meta.events.register("before-send.bedrock-runtime.InvokeModel", answer)
    texts = [f"memory number {i}" for i in range(20)]
    vectors = BedrockEmbedder(client, dimension=512).embed(texts)

    expected = np.asarray([fake_embedding(t, 512) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert 1 < peak <= PARALLEL_CALLS


class _RawBody(io.BytesIO):
    """What botocore reads an HTTP body from (urllib3's stream)."""

    def stream(self, **_):
        yield self.getvalue()
