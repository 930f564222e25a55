"""Embedder port on an OpenAI-compatible `/embeddings` endpoint (OpenAI, vLLM, Ollama,
Bedrock gateways), through the `openai` client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import openai

from engram.errors import PermanentError, RetryableError

TRANSIENT = (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError,
             openai.InternalServerError)


class OpenAIEmbedder:
    def __init__(self, client: Any, model: str, dimension: int, batch_size: int = 96):
        self._client = client
        self.model_name = model
        self.dimension = dimension
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows += self._embed_batch(list(texts[start:start + self.batch_size]))
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(model=self.model_name, input=batch)
        except TRANSIENT as exc:
            raise RetryableError(f"embedding endpoint unavailable: {exc}") from exc
        except openai.APIError as exc:
            raise PermanentError(f"embedding endpoint refused the request: {exc}") from exc
        data = sorted(response.data, key=lambda item: item.index)  # order is not promised
        if len(data) != len(batch) or any(len(d.embedding) != self.dimension for d in data):
            raise PermanentError(
                f"embedding endpoint returned {len(data)} vectors of "
                f"{len(data[0].embedding) if data else 0} dimensions for {len(batch)} texts; "
                f"expected {self.dimension} dimensions (ENGRAM_EMBEDDING_DIMENSION)")
        return [d.embedding for d in data]
