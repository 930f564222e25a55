"""With the real int8 model `engram serve` runs, whose vectors move a little with the texts
sharing their forward pass: async adds and sync adds still store the same vectors, bit
for bit, because a request's turns are embedded by the same call in both modes
(retrieval/vectors.py; the fakes' version is tests/unit/test_async_turn_vectors.py)."""

from __future__ import annotations

import pytest
from tests.unit.test_async_turn_vectors import indexed, ingest

from engram.config import Settings
from engram.local.runtime import build_local_runtime, local_embedder

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow


def test_async_and_sync_adds_store_the_same_int8_vectors(tmp_path):
    embedder = local_embedder(Settings())
    stored = {}
    for mode in ("sync", "async"):
        runtime = build_local_runtime(Settings(data_dir=tmp_path / mode), embedder=embedder)
        try:
            ingest(runtime, async_mode=mode == "async")
        finally:
            runtime.close()
        stored[mode] = indexed(tmp_path / mode)
    assert len(stored["sync"]) == 10  # as in the fakes' test
    assert stored["async"] == stored["sync"]
