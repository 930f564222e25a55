"""The raw-turn baselines: BM25, dense (the same embedding model as Engram) and their
reciprocal-rank fusion. Each returns, per query, turn indices best first."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from engram.ports import Embedder
from engram.retrieval.lexical import tokenize

RRF_K = 60


class BM25:
    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75):
        self.docs = [Counter(tokenize(t)) for t in texts]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=np.float64)
        self.avg = float(self.lengths.mean()) if len(texts) else 0.0
        self.k1, self.b = k1, b
        self.postings: dict[str, list[int]] = {}
        for i, doc in enumerate(self.docs):
            for term in doc:
                self.postings.setdefault(term, []).append(i)

    def rank(self, query: str, limit: int) -> list[int]:
        scores = np.zeros(len(self.docs))
        n = len(self.docs)
        for term in set(tokenize(query)):
            rows = self.postings.get(term)
            if not rows:
                continue
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            for i in rows:
                tf = self.docs[i][term]
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg)
                scores[i] += idf * tf * (self.k1 + 1) / norm
        order = np.argsort(-scores, kind="stable")
        return [int(i) for i in order[:limit] if scores[i] > 0]


class Dense:
    def __init__(self, texts: Sequence[str], embedder: Embedder):
        self.embedder = embedder
        self.matrix = embedder.embed(list(texts))

    def rank(self, query: str, limit: int) -> list[int]:
        scores = self.matrix @ self.embedder.embed([query])[0]
        return [int(i) for i in np.argsort(-scores, kind="stable")[:limit]]


def rrf(*rankings: list[int], k: int = RRF_K) -> list[int]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(fused, key=lambda i: -fused[i])
