"""What the API and authorizer functions import at cold start, and the tracer that loads
without blocking them (bench/coldstart.py measures the time; these keep the reasons).
Each check runs in a fresh interpreter: imports are the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def fresh(code: str, **env: str) -> dict:
    """Run `code` in a new interpreter with the Lambda layout on its path; it prints JSON."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("AWS_", "ENGRAM_", "POWERTOOLS_", "LAMBDA_"))}
    environment.update(PYTHONPATH=f"{ROOT / 'layers' / 'core'}:{ROOT}", **env)
    proc = subprocess.run([sys.executable, "-c", code], env=environment, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


IMPORT_FUNCTION = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", "functions/{name}/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in {watch} if m in sys.modules)))
"""
# Needed by some requests only: imported by the request that needs them.
NOT_AT_IMPORT = ["aws_xray_sdk", "opensearchpy", "onnxruntime", "openai",
                 "aws_lambda_powertools.utilities.idempotency", "engram.aws.intake",
                 "engram.aws.steps", "engram.extraction.rules.extractor"]


@pytest.mark.parametrize("name", ["api", "authorizer"])
def test_the_latency_sensitive_functions_import_only_what_every_request_needs(name):
    loaded = fresh(IMPORT_FUNCTION.format(name=name, watch=NOT_AT_IMPORT))
    assert loaded == []


def test_the_authorizer_does_not_import_the_services_or_the_pipeline():
    watch = ["engram.container", "engram.pipeline.steps", "engram.services.ingest",
             "engram.api.app"]
    assert fresh(IMPORT_FUNCTION.format(name="authorizer", watch=watch)) == []


DEFERRED = """
import importlib.util, json
spec = importlib.util.spec_from_file_location("app", "functions/api/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from engram.api.everos.models import MemoryAddRequest
built_at_import = MemoryAddRequest.__pydantic_complete__
try:
    MemoryAddRequest.model_validate({"user_id": "u", "messages": []})
    refused = None
except Exception as error:
    refused = type(error).__name__
print(json.dumps([built_at_import, MemoryAddRequest.__pydantic_complete__, refused]))
"""


def test_models_are_built_on_first_use_and_still_validate():
    built_at_import, built_after_use, refused = fresh(DEFERRED)
    assert built_at_import is False and built_after_use is True
    assert refused == "ValidationError"  # an empty message list is refused, as before


TRACER = """
import json, sys
from engram.aws.observability import tracer
@tracer.capture_lambda_handler(capture_response=False)
def handler(event, context):
    return {"ok": event}
first = handler(1, None)
tracer.ready.wait(60)
second = handler(2, None)
from aws_xray_sdk.core import patcher
print(json.dumps({"first": first, "second": second, "loaded": type(tracer.loaded).__name__,
                  "patched": sorted(patcher._PATCHED_MODULES)}))
"""


def test_in_lambda_the_tracer_loads_in_the_background_and_patches_only_the_aws_sdk():
    seen = fresh(TRACER, LAMBDA_TASK_ROOT=str(ROOT / "functions" / "api"),
                 AWS_REGION="us-east-1", AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR")
    assert seen["first"] == {"ok": 1} and seen["second"] == {"ok": 2}
    assert seen["loaded"] == "Tracer" and seen["patched"] == ["botocore"]


def test_outside_lambda_the_xray_sdk_is_never_imported():
    code = TRACER.split("from aws_xray_sdk")[0] + (
        "print(json.dumps([second, tracer.loaded, 'aws_xray_sdk' in sys.modules]))")
    assert fresh(code) == [{"ok": 2}, None, False]
