"""What the API and authorizer functions import at cold start, the tracer that loads
after their first response, and the garbage collection paused until then
(bench/coldstart.py measures the time; these keep the reasons). Each check runs in a
fresh interpreter: imports are the point."""

from __future__ import annotations

import pytest
from tests.fresh_interpreter import LAMBDA_CONTEXT, ROOT, fresh

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


STATUS_REQUEST = """
import importlib.util, json, os, sys
from moto import mock_aws
mock_aws().start()
import boto3
from engram.adapters.dynamodb_tables import table_definitions
os.environ.update(AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                  AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
dynamodb = boto3.resource("dynamodb")
for name, definition in table_definitions().items():
    dynamodb.create_table(TableName=f"t-{name}", **{
        k: v for k, v in definition.items() if k != "TimeToLiveSpecification"})
os.environ.update(
    ENGRAM_TASKS_TABLE="t-tasks", ENGRAM_API_KEYS_TABLE="t-api_keys",
    ENGRAM_RECORDS_TABLE="t-records", ENGRAM_IDEMPOTENCY_TABLE="t-idempotency",
    ENGRAM_BUCKET="engram-test", ENGRAM_EMBEDDING_PROVIDER="EMBEDDER",
    ENGRAM_STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:t",
    ENGRAM_OPENSEARCH_ENDPOINT="http://127.0.0.1:9")
loaded_by_the_test = [m for m in WATCH if m in sys.modules]
spec = importlib.util.spec_from_file_location("app", "functions/api/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
with open("events/api/get_status.json") as handle:
    event = json.load(handle)
LAMBDA_CONTEXT
status = module.lambda_handler(event, Context())["statusCode"]
print(json.dumps([loaded_by_the_test, status, sorted(m for m in WATCH if m in sys.modules)]))
"""
# What only a request that embeds, searches or runs the pipeline needs: the pipeline is
# built on first use, and the services and routes import the parsing, extraction and
# ranking rules where they use them. Nor the other dialects' models and routes, which the
# first request under their paths includes. (A package is in sys.modules if any of its
# modules is. Tracing is off here: the X-Ray SDK's loading after the first response is
# the tracer test's.)
NOT_FOR_A_STATUS = ["numpy", "onnxruntime", "opensearchpy", "engram.pipeline",
                    "engram.parsing", "engram.extraction", "engram.retrieval.lexical",
                    "engram.retrieval.timeframes", "engram.retrieval.intent",
                    "engram.retrieval.fusion", "engram.retrieval.diversify",
                    "engram.api.everos", "engram.api.mem0", "engram.api.dialects"]


@pytest.mark.parametrize("provider", ["onnx", "bedrock"])
def test_a_status_request_loads_no_numpy_index_client_pipeline_or_extraction_rules(provider):
    code = (STATUS_REQUEST.replace("LAMBDA_CONTEXT", LAMBDA_CONTEXT)
            .replace("WATCH", repr(NOT_FOR_A_STATUS)).replace("EMBEDDER", provider))
    before, status, loaded = fresh(code)
    assert before == []  # the test's own imports (moto, boto3) load none of them
    assert status == 404  # the event's task does not exist: the route ran, DynamoDB answered
    assert loaded == []


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


COLLECTION = """
import gc, json
from engram.aws.coldstart import after_first_response
paused_at_import = not gc.isenabled()
@after_first_response
def handler(event, context):
    if event == "fail":
        raise ValueError(event)
    return gc.isenabled()
try:
    handler("fail", None)
except ValueError:
    pass
print(json.dumps([paused_at_import, gc.isenabled(), gc.get_freeze_count() > 0,
                  handler("ok", None)]))
"""


def test_garbage_collection_waits_for_the_first_response_whatever_it_was():
    paused_at_import, resumed, frozen, enabled_later = fresh(COLLECTION)
    assert paused_at_import and resumed and frozen and enabled_later


TRACER = """
import json, sys, threading
from engram.aws.observability import tracer
loading_before = any(t.name == "tracer-load" for t in threading.enumerate())
@tracer.capture_lambda_handler(capture_response=False)
def handler(event, context):
    return {"ok": event}
first = handler(1, None)
tracer.ready.wait(60)
second = handler(2, None)
from aws_xray_sdk.core import patcher
print(json.dumps({"first": first, "second": second, "loaded": type(tracer.loaded).__name__,
                  "loading_before_the_first_invocation": loading_before,
                  "patched": sorted(patcher._PATCHED_MODULES)}))
"""


def test_in_lambda_the_tracer_loads_after_the_first_invocation_and_patches_only_the_aws_sdk():
    seen = fresh(TRACER, LAMBDA_TASK_ROOT=str(ROOT / "functions" / "api"),
                 AWS_REGION="us-east-1", AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR")
    assert seen["first"] == {"ok": 1} and seen["second"] == {"ok": 2}
    assert not seen["loading_before_the_first_invocation"]
    assert seen["loaded"] == "Tracer" and seen["patched"] == ["botocore"]


def test_outside_lambda_the_xray_sdk_is_never_imported():
    code = TRACER.split("from aws_xray_sdk")[0] + (
        "print(json.dumps([second, tracer.loaded, 'aws_xray_sdk' in sys.modules]))")
    assert fresh(code) == [{"ok": 2}, None, False]
