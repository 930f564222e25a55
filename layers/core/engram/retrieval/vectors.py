"""How a memory is embedded: its own text, mixed with the turn it was said in.

A memory alone is focused but often leaves out what "it" or "they" were; the turn says.
A weighted sum of the two unit vectors keeps the memory's meaning first and lets the turn
pull in what it leaves out, at one extra embedding per turn (not per memory). On LoCoMo
dev, recall_frac@10 with turn weight 0 / 0.2 / 0.25 / 0.35 / 0.5 was 0.761 / 0.774 / 0.776 /
0.770 / 0.729 with cosine diversification alone, and 0.2 / 0.25 / 0.3 / 0.35 gave 0.793 /
0.804 / 0.797 / 0.800 with the final search (services/search.py, retrieval/diversify.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engram.models.domain import Candidate, Memory
from engram.ports import Embedder

TURN_WEIGHT = 0.25


def memory_vectors(embedder: Embedder, items: Sequence[Memory | Candidate]) -> np.ndarray:
    """Unit vectors, one per memory or candidate, in order; identical turns embedded once.
    What the assistant said gets a zero vector: it is found by its words alone
    (extraction/assistant.py)."""
    embedded = [i for i, item in enumerate(items) if item.said_by != "assistant"]
    if len(embedded) < len(items):
        out = np.zeros((len(items), embedder.dimension), dtype=np.float32)
        if embedded:
            out[embedded] = memory_vectors(embedder, [items[i] for i in embedded])
        return out
    texts = [item.dense_text for item in items]
    turns = [item.turn_text for item in items]
    unique = [t for t in dict.fromkeys(turns) if t]
    vectors = embedder.embed(texts + unique)  # one call, so the embedder batches them all
    own, of_turn = vectors[: len(texts)], dict(zip(unique, vectors[len(texts):], strict=True))
    mixed = np.array([(1 - TURN_WEIGHT) * vector + TURN_WEIGHT * of_turn[turn] if turn
                      else vector for vector, turn in zip(own, turns, strict=True)],
                     dtype=np.float32).reshape(len(items), -1)
    return mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
