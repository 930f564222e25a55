"""The OpenAI-compatible embedder through the unmodified `openai` client against a local
server speaking the embeddings wire protocol; its wiring from Secrets Manager under moto."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from moto import mock_aws
from openai import OpenAI
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - a fixture
from tests.fakes.openai_server import OpenAIEmbeddingsServer

from engram.adapters.openai_embedder import OpenAIEmbedder
from engram.aws.runtime import default_embedder
from engram.config import AwsSettings, EmbeddingSettings, Settings
from engram.errors import PermanentError, RetryableError


@pytest.fixture
def server():
    fake = OpenAIEmbeddingsServer(dimension=8)
    yield fake
    fake.close()


def embedder(server: OpenAIEmbeddingsServer, **kw) -> OpenAIEmbedder:
    client = OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=5)
    return OpenAIEmbedder(client, "text-embedding-3-small", server.dimension, **kw)


def test_vectors_come_back_in_input_order_normalised_and_batched(server):
    server.reverse_order = True
    texts = ["alpha", "beta", "gamma", "delta", "epsilon"]
    vectors = embedder(server, batch_size=2).embed(texts)
    assert vectors.shape == (5, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    expected = np.asarray(server.vector("gamma"), dtype=np.float32)
    assert np.allclose(vectors[2], expected / np.linalg.norm(expected), atol=1e-5)
    assert [len(r["body"]["input"]) for r in server.requests] == [2, 2, 1]
    assert server.requests[0]["auth"] == "Bearer sk-test"
    assert server.requests[0]["body"]["model"] == "text-embedding-3-small"


def test_no_texts_no_request(server):
    assert embedder(server).embed([]).shape == (0, 8) and server.requests == []


def test_throttling_is_retryable(server):
    server.scripted = [(429, {"error": {"message": "slow down", "type": "rate_limit"}})]
    with pytest.raises(RetryableError, match="slow down"):
        embedder(server).embed(["x"])


def test_a_refused_request_is_permanent(server):
    server.scripted = [(400, {"error": {"message": "model not found", "type": "invalid"}})]
    with pytest.raises(PermanentError, match="model not found"):
        embedder(server).embed(["x"])


def test_wrong_dimension_names_the_setting(server):
    wrong = OpenAIEmbedder(OpenAI(base_url=server.base_url, api_key="k", max_retries=0),
                           "m", dimension=16)
    with pytest.raises(PermanentError, match="ENGRAM_EMBEDDING_DIMENSION"):
        wrong.embed(["x"])


def test_runtime_reads_the_key_from_secrets_manager(server, aws_credentials):  # noqa: F811
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="engram/provider", SecretString="sk-from-secrets-manager")["ARN"]
        settings = Settings(aws=AwsSettings(
            region=REGION, tasks_table="t", api_keys_table="k", records_table="r",
            idempotency_table="i", bucket="b", state_machine_arn="arn", provider_secret_arn=arn,
            embedding=EmbeddingSettings(provider="openai", model_id="m", dimension=8,
                                        base_url=server.base_url)))
        built = default_embedder(settings, clients=None)
        assert built.embed(["hello"]).shape == (1, 8)
    assert server.requests[-1]["auth"] == "Bearer sk-from-secrets-manager"
