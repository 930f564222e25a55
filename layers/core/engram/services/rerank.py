"""Rerank: order a caller's documents for a query with the scoring search uses on
memories: the embedding model's cosine and BM25 over the documents given (the request is
the corpus), fused into one relativity in [0, 1] (retrieval/fusion.py). Nothing is
stored or read from the tenant's data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engram.ports import Embedder, IndexHit

if TYPE_CHECKING:
    import numpy as np


def bm25(query: str, documents: Sequence[str]) -> np.ndarray:
    """Each document's BM25 score for the query, the documents being the corpus."""
    import numpy as np  # not at import: the API's get/status loads no numpy (nor these)

    from engram.retrieval.lexical import bm25_idf, bm25_term_scores, tokenize

    terms = [Counter(tokenize(d)) for d in documents]
    lengths = np.array([max(sum(t.values()), 1) for t in terms], dtype=np.float64)
    average = float(lengths.mean()) if len(lengths) else 1.0
    scores = np.zeros(len(documents))
    for term in set(tokenize(query)):
        freqs = np.array([t[term] for t in terms], dtype=np.float64)
        found = int((freqs > 0).sum())
        if found:
            scores += bm25_term_scores(bm25_idf(len(documents), found), freqs, lengths,
                                       average)
    return scores


@dataclass
class RerankService:
    embedder: Embedder

    def rerank(self, query: str, documents: Sequence[str],
               top_n: int | None = None) -> list[tuple[int, float]]:
        """(index into `documents`, relativity), best first; ties keep the given order."""
        from engram.retrieval.fusion import fuse

        vectors = self.embedder.embed([query, *documents])
        dense = vectors[1:] @ vectors[0]
        lexical = bm25(query, documents)
        scores = fuse([IndexHit(id=str(i), dense=float(dense[i]), lexical=float(lexical[i]))
                       for i in range(len(documents))])
        order = sorted(range(len(documents)), key=lambda i: (-scores[str(i)], i))
        return [(i, round(scores[str(i)], 6)) for i in order[:top_n]]
