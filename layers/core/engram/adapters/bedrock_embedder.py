"""Embedder on Amazon Titan Text Embeddings V2 (Bedrock InvokeModel).

Titan V2 takes one text per call, so a batch is embedded by up to eight calls in
flight at once (boto3 clients are thread-safe). Failures are classified for the state
machine: throttling, timeouts and 5xx are RetryableError; anything else the service
refuses (validation, access) is PermanentError.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from engram.errors import PermanentError, RetryableError

if TYPE_CHECKING:
    import numpy as np

TITAN_V2_DIMENSIONS = (256, 512, 1024)
PARALLEL_CALLS = 8
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ServiceUnavailableException", "InternalServerException",
    "ModelNotReadyException", "ModelTimeoutException",
})


class BedrockEmbedder:
    def __init__(self, client: Any, model_id: str = "amazon.titan-embed-text-v2:0",
                 dimension: int = 1024):
        if dimension not in TITAN_V2_DIMENSIONS:
            raise ValueError(f"Titan V2 embeds in {TITAN_V2_DIMENSIONS} dimensions, "
                             f"not {dimension}")
        self._bedrock = client  # a boto3 bedrock-runtime client
        self.model_name = model_id
        self.dimension = dimension
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL_CALLS,
                                        thread_name_prefix="bedrock-embed")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text, in the order given."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        texts = list(texts)
        if len(texts) <= 1:
            rows = [self._embed_one(t) for t in texts]
        else:
            rows = list(self._pool.map(self._embed_one, texts))
        import numpy as np  # by the first embed: a Lambda request that embeds nothing loads none

        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0).astype(np.float32)

    def _embed_one(self, text: str) -> list[float]:
        body = json.dumps({"inputText": text, "dimensions": self.dimension, "normalize": True})
        try:
            response = self._bedrock.invoke_model(
                modelId=self.model_name, body=body, contentType="application/json",
                accept="application/json")
        except ClientError as exc:
            raise _classified(exc, self.model_name) from exc
        except BotoCoreError as exc:  # connection reset, read timeout
            raise RetryableError(f"Bedrock {self.model_name}: {exc}") from exc
        embedding = json.loads(response["body"].read())["embedding"]
        if len(embedding) != self.dimension:
            raise PermanentError(f"Bedrock {self.model_name} returned {len(embedding)} "
                                 f"dimensions, expected {self.dimension}")
        return embedding


def _classified(exc: ClientError, model_id: str) -> RetryableError | PermanentError:
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = f"Bedrock {model_id}: {code}: {error.get('Message', '')}"
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return RetryableError(message)
    return PermanentError(message)
