"""A deterministic stand-in for the embedding model: hashed bag of words, so texts that
share words are close. For unit tests that must not load the real model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    model_name = "hashing-test-embedder"
    dimension = 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension
                out[row, bucket] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out


class SameVectorEmbedder:
    """Every text at cosine 1 to every other: what is left to tell two memories apart is
    what their texts say (dedupe's rules must not rest on cosine alone)."""

    model_name = "same-vector-test-embedder"
    dimension = 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.full((len(texts), self.dimension), self.dimension ** -0.5, dtype=np.float32)
