"""The deployable artifacts, built offline: `sam build` (python3.12, no container) of
template.yaml, each function with its layers under Lambda's 250 MB unzipped limit, and a
core layer that carries what the functions import and nothing twice (scripts/
check_sizes.py, layers/core/Makefile)."""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import check_sizes  # noqa: E402

MB = 1024 * 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the size check itself (no build) ----------------------------------------------------

def fake_build(tmp_path: Path, layer_bytes: int) -> Path:
    (tmp_path / "ApiFunction").mkdir(parents=True)
    (tmp_path / "ApiFunction" / "app.py").write_text("x = 1\n")
    layer = tmp_path / "CoreLayer" / "python"
    layer.mkdir(parents=True)
    with (layer / "big.bin").open("wb") as handle:  # sparse: no disk is used
        handle.truncate(layer_bytes)
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Globals:\n  Function:\n    Layers: [!Ref CoreLayer]\n"
        "Resources:\n"
        "  CoreLayer:\n    Type: AWS::Serverless::LayerVersion\n"
        "    Properties: {ContentUri: CoreLayer}\n"
        "  ApiFunction:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: ApiFunction, Handler: app.handler, Runtime: python3.12}\n")
    return tmp_path


def test_size_check_counts_the_function_with_its_layers(tmp_path):
    (row,) = check_sizes.sizes(fake_build(tmp_path, 100 * MB))
    assert row["function"] == "ApiFunction" and row["layers"] == ["CoreLayer"]
    assert row["total_bytes"] == 100 * MB + 6 and row["within_limit"]
    assert check_sizes.main([str(tmp_path)]) == 0


def test_size_check_fails_over_250_mb_and_on_a_second_boto3(tmp_path, capsys):
    over = fake_build(tmp_path / "over", check_sizes.LIMIT_BYTES)  # + app.py: 6 bytes over
    assert check_sizes.main([str(over)]) == 1
    assert "over Lambda's unzipped limit: ApiFunction" in capsys.readouterr().err
    twice = fake_build(tmp_path / "twice", MB)
    (twice / "CoreLayer" / "python" / "botocore").mkdir()
    assert check_sizes.main([str(twice)]) == 1
    assert "CoreLayer: python/botocore" in capsys.readouterr().err


# --- the real build ---------------------------------------------------------------------

@pytest.mark.slow
def test_every_function_with_its_layers_is_under_lambdas_unzipped_limit(sam_build, capsys):
    build_dir, _ = sam_build
    rows = check_sizes.sizes(build_dir)
    functions = {row["function"] for row in rows}
    assert {"ApiFunction", "AuthorizerFunction", "ParseFunction"} <= functions
    for row in rows:
        assert row["layers"] == ["CoreLayer"], row["function"]
        assert row["within_limit"], f"{row['function']}: {row['total_bytes'] / MB:.1f} MB"
    with capsys.disabled():  # the sizes, as make validate prints them
        largest = max(rows, key=lambda row: row["total_bytes"])
        print(f"\nlargest function with its layers: {largest['function']} "
              f"{largest['total_bytes'] / MB:.1f} MB of {check_sizes.LIMIT_BYTES / MB:.0f}")
    assert check_sizes.duplicated_runtime_packages(build_dir) == []


@pytest.mark.slow
def test_the_layer_ships_the_model_engram_serve_runs(sam_build, request):
    build_dir, _ = sam_build
    export = Path(request.config.cache.mkdir("onnx-minilm"))  # what sam_build built from
    shipped = build_dir / "CoreLayer" / "minilm-onnx"
    for name in ("model-int8.onnx", "tokenizer.json"):
        assert sha256(shipped / name) == sha256(export / name), name
    site = build_dir / "CoreLayer" / "python"
    for package in ("engram", "onnxruntime", "tokenizers", "numpy", "pydantic",
                    "aws_lambda_powertools", "opensearchpy", "openai", "trp"):
        assert (site / package).is_dir(), package
    # declared by packages that never import them (layers/core/requirements-nodeps.txt)
    for absent in ("boto3", "botocore", "grpc", "huggingface_hub", "torch"):
        assert not (site / absent).exists(), absent


@pytest.mark.slow
def test_the_layer_is_compiled_to_bytecode_that_is_never_rechecked(sam_build):
    """/opt is read-only: without .pyc files every cold start compiles what it imports.
    The .pyc files are hash-based and unchecked (PEP 552 flags 0b01), so their sources'
    timestamps after unzipping do not matter."""
    build_dir, _ = sam_build
    site = build_dir / "CoreLayer" / "python"
    for module in ("engram/aws/runtime.py", "engram/api/app.py", "pydantic/main.py",
                   "aws_lambda_powertools/event_handler/api_gateway.py"):
        source = site / module
        (compiled,) = (source.parent / "__pycache__").glob(f"{source.stem}.cpython-312.pyc")
        flags = struct.unpack("<I", compiled.read_bytes()[4:8])[0]
        assert flags == 0b01, (module, flags)
    assert not any(name.endswith(".pyc") for name in os.listdir(build_dir / "ApiFunction"))
