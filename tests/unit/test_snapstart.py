"""Lambda SnapStart (template parameter SnapStart): the API and authorizer prime, before
the snapshot, what their first requests would load, make no AWS call doing it, and
reseed `random` after a restore; an ordinary cold start registers and primes nothing.
Each check runs in a fresh interpreter, where Lambda's runtime would run the hooks
(snapshot_restore_py's registries, as bench/coldstart_child.py runs them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.fakes.opensearch_server import FakeOpenSearch
from tests.fresh_interpreter import LAMBDA_CONTEXT, ROOT, fresh

from engram.adapters.onnx_embedder import export_minilm_onnx

IMPORT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", "functions/{name}/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps("snapshot_restore_py" in sys.modules))
"""


@pytest.mark.parametrize("name", ["api", "authorizer"])
@pytest.mark.parametrize("init", ["on-demand", ""])
def test_an_ordinary_cold_start_registers_no_hook(name, init):
    env = {"AWS_LAMBDA_INITIALIZATION_TYPE": init} if init else {}
    assert fresh(IMPORT.format(name=name), **env) is False


# Priming with every outbound connection refused (a call to DynamoDB, S3, Bedrock or
# OpenSearch would fail it), then, with moto answering, the first request of a restored
# environment: which modules it still had to import.
PRIMED = """
import gc, importlib.util, json, os, random, socket, sys
from moto import mock_aws  # before any client: moto hooks the clients made after it
import boto3
import snapshot_restore_py as hooks

attempts = []
real_connect = socket.socket.connect
def refuse(self, address):
    attempts.append(str(address))
    raise ConnectionRefusedError(f"priming connected to {address}")
socket.socket.connect = refuse

spec = importlib.util.spec_from_file_location("app", "functions/FUNCTION/app.py")
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
registered = [len(hooks._before_snapshot_registry), len(hooks._after_restore_registry)]
for hook, args, kwargs in reversed(hooks._before_snapshot_registry):
    hook(*args, **kwargs)
socket.socket.connect = real_connect

from pydantic import BaseModel
unbuilt, pending = [], [BaseModel]
while pending:
    for model in pending.pop().__subclasses__():
        pending.append(model)
        if not model.__pydantic_complete__ and model.__module__.startswith("engram."):
            unbuilt.append(model.__qualname__)
state = {"registered": registered, "attempts": attempts, "unbuilt": sorted(set(unbuilt)),
         "gc_enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
         "loaded": sorted(m for m in WATCH if m in sys.modules)}
if "FUNCTION" == "api":
    from engram.aws.runtime import aws_runtime
    embedder = aws_runtime().ports.embedder
    state["model_loaded"] = getattr(embedder, "_session", None) is not None

random.seed(7)
seeded = random.random()
random.seed(7)
for hook, args, kwargs in hooks._after_restore_registry:
    hook(*args, **kwargs)
state["reseeded"] = random.random() != seeded

mock_aws().start()
from engram.adapters.dynamodb_tables import table_definitions
dynamodb = boto3.resource("dynamodb")
for name, definition in table_definitions().items():
    dynamodb.create_table(TableName=f"t-{name}", **{
        k: v for k, v in definition.items() if k != "TimeToLiveSpecification"})
dynamodb.create_table(TableName="t-idempotency", BillingMode="PAY_PER_REQUEST",
                      KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                      AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
boto3.client("s3").create_bucket(Bucket="engram-test")
machine = boto3.client("stepfunctions").create_state_machine(
    name="t", roleArn="arn:aws:iam::123456789012:role/t",
    definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))
from engram.services.keys import hash_key
dynamodb.Table("t-api_keys").put_item(Item={"pk": hash_key(KEY), "tenant_id": "tenant-a"})
with open("events/FUNCTION/EVENT.json") as handle:
    event = json.load(handle)
LAMBDA_CONTEXT
before = set(sys.modules)
answer = module.lambda_handler(event, Context())
state["answer"] = answer.get("statusCode") or answer["policyDocument"]["Statement"][0]["Effect"]
state["body"] = str(answer.get("body", ""))[:300]
state["imported_by_the_request"] = sorted(
    m for m in set(sys.modules) - before if m.startswith(("engram", "aws_lambda_powertools",
                                                         "numpy", "onnxruntime", "opensearchpy",
                                                         "pydantic", "aws_xray_sdk")))
print(json.dumps(state))
"""
# What the first search or add of an ordinary cold start imports (test_coldstart.py)
FIRST_USE = ["numpy", "onnxruntime", "opensearchpy", "aws_xray_sdk",
             "aws_lambda_powertools.utilities.idempotency", "engram.aws.steps",
             "engram.extraction.rules.extractor"]
KEY = "eng_example-key-for-tenant-a-0123456789"  # the key events/ sends


def lambda_environment(model_dir: Path) -> dict[str, str]:
    return {
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start", "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "_X_AMZN_TRACE_ID": "Root=1-6751c2a0-0123456789abcdef01234567;Sampled=1",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "POWERTOOLS_METRICS_NAMESPACE": "Test",
        "ENGRAM_TASKS_TABLE": "t-tasks", "ENGRAM_API_KEYS_TABLE": "t-api_keys",
        "ENGRAM_RECORDS_TABLE": "t-records", "ENGRAM_IDEMPOTENCY_TABLE": "t-idempotency",
        "ENGRAM_BUCKET": "engram-test", "ENGRAM_EMBEDDING_PROVIDER": "onnx",
        "ENGRAM_EMBEDDING_MODEL_DIR": str(model_dir), "ENGRAM_EMBEDDING_DIMENSION": "384",
        "ENGRAM_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:t",
        "ENGRAM_OPENSEARCH_ENDPOINT": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def model_dir(request) -> Path:
    directory = Path(request.config.cache.mkdir("onnx-minilm"))  # shared with the other
    export_minilm_onnx(directory, quantize=True)  # ONNX tests: exported once
    return directory


def primed(function: str, event: str, model_dir: Path, **env: str) -> dict:
    code = (PRIMED.replace("LAMBDA_CONTEXT", LAMBDA_CONTEXT)
            .replace("FUNCTION", function).replace("EVENT", event)
            .replace("WATCH", repr(FIRST_USE)).replace("KEY", repr(KEY)))
    return fresh(code, **{**lambda_environment(model_dir), **env})


# An OpenAI-compatible endpoint's key is a Secrets Manager read: by the first embedding,
# not while priming (the connection test would see it).
OPENAI = {"ENGRAM_EMBEDDING_PROVIDER": "openai", "ENGRAM_EMBEDDING_MODEL": "text-embedding-3-small",
          "ENGRAM_EMBEDDING_BASE_URL": "http://127.0.0.1:9/v1",
          "ENGRAM_EMBEDDING_DIMENSION": "1536",
          "ENGRAM_PROVIDER_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k"}


@pytest.fixture(scope="module")
def opensearch():
    server = FakeOpenSearch().start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["onnx", "openai"])
def test_the_api_primes_before_the_snapshot_and_its_first_request_imports_nothing(
        model_dir, provider):
    state = primed("api", "get_status", model_dir, **(OPENAI if provider == "openai" else {}))
    assert state["registered"] == [1, 1]
    assert state["attempts"] == []  # no AWS call, no OpenSearch call while priming
    assert state["loaded"] == sorted(FIRST_USE) if provider == "onnx" else (
        sorted(set(FIRST_USE) - {"onnxruntime"}))
    assert state["model_loaded"] is (provider == "onnx")  # loaded and run once
    assert state["unbuilt"] == []  # every Engram model's validator is in the snapshot
    assert state["gc_enabled"] is True and state["frozen"] > 100_000
    assert state["reseeded"] is True
    assert state["answer"] == 404  # the event's task does not exist: DynamoDB answered
    assert state["imported_by_the_request"] == []


@pytest.mark.slow
@pytest.mark.parametrize(("event", "status"), [("search_memory", 200),
                                               ("add_message_async", 200),
                                               ("add_message_sync", 200),
                                               # its route ran: the file was never uploaded
                                               ("everos_add_memories", 404)])
def test_a_restored_environment_imports_nothing_for_a_first_search_or_add(
        model_dir, opensearch, event, status):
    state = primed("api", event, model_dir, ENGRAM_OPENSEARCH_ENDPOINT=opensearch)
    assert state["attempts"] == []
    assert state["answer"] == status, state["body"]
    assert state["imported_by_the_request"] == []


def test_the_authorizer_primes_its_key_lookup_and_nothing_of_the_api(model_dir):
    state = primed("authorizer", "valid_token", model_dir)
    assert state["registered"] == [1, 1] and state["attempts"] == []
    assert state["loaded"] == ["aws_xray_sdk"]  # the tracer; no numpy, index or pipeline
    assert state["unbuilt"] == []
    assert state["reseeded"] is True
    assert state["answer"] == "Allow"
    assert state["imported_by_the_request"] == []


# Priming imports whole packages: none of their modules may need what only `engram serve`
# installs (the local and mcp extras, rich), which the core layer does not ship.
IMPORT_PRIMED = """
import importlib, importlib.abc, json, sys
BLOCKED = set(sys.argv[1].split(","))
class NotInTheLayer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not in the core layer")
sys.meta_path.insert(0, NotInTheLayer())
from engram.aws.snapstart import api_modules
names = api_modules()
for name in names:
    importlib.import_module(name)
print(json.dumps(sorted(names)))
"""


def local_only_imports() -> set[str]:
    import importlib.metadata
    import re
    import tomllib

    def names(requirements) -> set[str]:
        return {re.split(r"[<>=!\[; ]", r.strip(), maxsplit=1)[0].lower().replace("_", "-")
                for r in requirements if r.strip() and not r.startswith("#")}

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    layer = set().union(*(names((ROOT / "layers" / "core" / f).read_text().splitlines())
                          for f in ("requirements.txt", "requirements-nodeps.txt")))
    local = names([*extras["local"], *extras["mcp"], "rich"]) - layer
    local = {n for n in local if not n.startswith("engram")}
    return {module for module, dists in importlib.metadata.packages_distributions().items()
            if any(d.lower().replace("_", "-") in local for d in dists)}


def test_every_module_priming_imports_needs_only_what_the_layer_ships():
    blocked = local_only_imports()
    assert {"torch", "waitress", "mcp", "rich"} <= blocked
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment["PYTHONPATH"] = f"{ROOT / 'layers' / 'core'}:{ROOT}"
    proc = subprocess.run([sys.executable, "-c", IMPORT_PRIMED, ",".join(sorted(blocked))],
                          env=environment, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "engram.retrieval.timeframes" in names and "engram.api.dialects" in names
