"""Contracts between template.yaml, statemachine/*.asl.json, events/, functions/,
samconfig.toml and the code: the template lints (cfn-lint, and `sam validate --lint` from
the SAM CLI in .venv-sam), every ${…} of the ASL is substituted, every events/ file
parses with the model its function reads, and the tables are declared as the adapters
define them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    SqsModel,
)
from aws_lambda_powertools.utilities.parser.models.apigw import ApiGatewayAuthorizerRequest
from cfnlint.api import lint_file
from cfnlint.decode import decode
from pydantic import BaseModel

from engram.adapters.dynamodb_tables import table_definitions
from engram.api.everos.models import MemoryAddRequest, ObjectSignRequest
from engram.api.memos.models import AddMessageRequest, SearchRequest, TaskStatusRequest
from engram.aws.events import (
    ContentJobTaskInput,
    ExecutionStatusChange,
    FailedStepInput,
    IngestQueueRecord,
    OcrCompletionRecord,
    TranscribeJobStateChange,
    UploadQueueRecord,
)
from engram.config import Settings
from engram.models.domain import TaskRef
from engram.models.pipeline import CollectContentInput

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "ingest.asl.json"
EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"
SAM_SETUP = ROOT / "scripts" / "setup_sam_venv.sh"
SAM_VENV = Path(os.environ.get("ENGRAM_SAM_VENV", ROOT / ".venv-sam"))
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
STEPS = ("Parse", "Extract", "Dedupe", "Index")
RETRIED_LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException",
                         "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, problems = decode(TEMPLATE)
    assert not problems, problems
    return decoded


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


# --- linting -------------------------------------------------------------------------------

def test_cfn_lint_finds_nothing():
    matches = lint_file(TEMPLATE)
    assert not matches, "\n".join(str(m) for m in matches)


@pytest.fixture(scope="module")
def sam() -> Path:
    """.venv-sam's `sam`, the venv made (or found up to date) first. A failed setup
    fails the test: never a skip."""
    proc = subprocess.run(["bash", str(SAM_SETUP)], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"scripts/setup_sam_venv.sh failed (exit {proc.returncode})\n"
                    f"{proc.stdout}\n{proc.stderr}", pytrace=False)
    return SAM_VENV / "bin" / "sam"


@pytest.mark.slow
def test_sam_validate_lint_passes(sam, tmp_path):
    # No credentials and no network are needed; a region is (for the translator).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1", HOME=str(tmp_path))
    proc = subprocess.run([str(sam), "validate", "--lint", "--template-file", str(TEMPLATE)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert "is a valid SAM Template" in proc.stdout + proc.stderr


# --- the state machine -----------------------------------------------------------------------

MACHINES = {"IngestStateMachine": ("statemachine/ingest.asl.json", "STANDARD"),
            "IngestTextStateMachine": ("statemachine/ingest-text.asl.json", "EXPRESS")}
TEXT_ASL = ROOT / "statemachine" / "ingest-text.asl.json"
EXPRESS_MAX_SECONDS = 300  # an Express execution is stopped after 5 minutes


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_asl_substitution_is_defined_and_every_definition_used(template, name):
    machines = resources_of(template, "AWS::Serverless::StateMachine")
    assert set(machines) == set(MACHINES)
    props = machines[name]["Properties"]
    uri, kind = MACHINES[name]
    # Files wait for callbacks (Standard only); text-only adds need none (Express).
    assert (props["DefinitionUri"], props["Type"]) == (uri, kind)
    used = set(SUBSTITUTION.findall((ROOT / uri).read_text()))
    defined = set(props["DefinitionSubstitutions"])
    assert used == defined, {"undefined": used - defined, "unused": defined - used}
    for sub, value in props["DefinitionSubstitutions"].items():
        if sub.endswith("FunctionArn"):
            target = value["Fn::GetAtt"][0]
            assert template["Resources"][target]["Type"] == "AWS::Serverless::Function"
            invoke = {p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in props["Policies"]
                      if "LambdaInvokePolicy" in p}
            assert target in invoke, f"the state machine may not invoke {target}"


def express_asl() -> dict[str, Any]:
    text = SUBSTITUTION.sub(lambda m: f"arn:aws:lambda:us-east-1:123456789012:function:"
                                      f"{m.group(1)}", TEXT_ASL.read_text())
    return json.loads(text)


def test_the_express_workflow_runs_the_same_steps_and_hands_trouble_to_the_standard_one(
        template):
    asl = express_asl()
    states = asl["States"]
    chain, name = [], asl["StartAt"]
    while name:
        chain.append(name)
        name = states[name].get("Next") or states[name].get("Default")
    assert chain == ["Parse", "NothingToWaitFor", *STEPS[1:]]
    assert not any(".waitForTaskToken" in s.get("Resource", "") or ".sync" in s.get(
        "Resource", "") for s in states.values())  # Express supports neither
    for step in STEPS:
        state = states[step]
        assert state["Parameters"]["Payload.$"] == "$" and state["OutputPath"] == "$.Payload"
        assert "Retry" not in state  # the Standard workflow retries, after the hand-over
        transient, rest = state["Catch"]
        assert {"RetryableError", "States.Timeout"} | RETRIED_LAMBDA_ERRORS <= set(
            transient["ErrorEquals"]) and transient["Next"] == "HandOver"
        assert rest == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                        "Next": "MarkFailed"}
    assert states["NothingToWaitFor"]["Choices"][0]["Next"] == "HandOver"
    hand_over = states["HandOver"]
    assert hand_over["Resource"] == "arn:aws:states:::states:startExecution"
    assert hand_over["Parameters"]["Name.$"] == "$.task_id"  # one Standard run per task
    assert set(hand_over["Parameters"]["Input"]) == {"tenant_id.$", "task_id.$", "user_id.$"}
    already, anything = hand_over["Catch"]  # handed over before: done, not failed
    assert already == {"ErrorEquals": ["StepFunctions.ExecutionAlreadyExistsException"],
                       "ResultPath": None, "Next": "HandedOver"}
    assert anything["ErrorEquals"] == ["States.ALL"] and anything["Next"] == "MarkFailed"
    assert states["HandedOver"]["Type"] == "Succeed"
    props = template["Resources"]["IngestTextStateMachine"]["Properties"]
    assert props["DefinitionSubstitutions"]["StandardStateMachineArn"] == {
        "Ref": "IngestStateMachine"}
    assert {"StepFunctionsExecutionPolicy": {"StateMachineName": {
        "Fn::GetAtt": ["IngestStateMachine", "Name"]}}} in props["Policies"]
    assert states["MarkFailed"]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"


def worst_case_seconds(state: dict[str, Any]) -> float:
    """A task state's longest run: every attempt to its timeout, every wait at its most."""
    attempts, waits = 1, 0.0
    for retry in state.get("Retry", []):
        interval = retry.get("IntervalSeconds", 1)
        for n in range(retry["MaxAttempts"]):
            waits += min(interval * retry.get("BackoffRate", 2.0) ** n,
                         retry.get("MaxDelaySeconds", float("inf")))
        attempts += retry["MaxAttempts"]
    return attempts * state["TimeoutSeconds"] + waits


def test_every_express_path_ends_before_the_five_minute_cap():
    """Past 5 minutes an Express execution just stops, no Catch runs and no event is sent:
    the task would stay running. So the longest path (every step to its timeout, then a
    hand-over that fails, then MarkFailed) must end in time."""
    states = express_asl()["States"]
    tasks = [name for name, state in states.items() if state["Type"] == "Task"]
    assert all(isinstance(states[n].get("TimeoutSeconds"), int) for n in tasks)
    longest = sum(worst_case_seconds(states[step]) for step in STEPS)
    longest += worst_case_seconds(states["HandOver"]) + worst_case_seconds(states["MarkFailed"])
    assert longest < EXPRESS_MAX_SECONDS, longest


def substituted_asl() -> dict[str, Any]:
    text = SUBSTITUTION.sub(lambda m: "2" if m.group(1) == "RetryIntervalSeconds"
                            else "600" if m.group(1).endswith("Seconds")
                            else f"arn:aws:lambda:us-east-1:123456789012:function:{m.group(1)}",
                            ASL.read_text())
    return json.loads(text)


def test_steps_pass_pointers_retry_transient_errors_and_catch_the_rest():
    asl = substituted_asl()
    states = asl["States"]
    chain, name = [], asl["StartAt"]
    while name:
        chain.append(name)
        name = states[name].get("Next") or states[name].get("Default")
    assert chain == ["Parse", "WaitsForContentJobs", *STEPS[1:]]
    for step in [*STEPS, "CollectContent"]:
        state = states[step]
        # The whole state input (the TaskRef) is the payload; the output is the payload.
        assert state["Parameters"]["Payload.$"] == "$" and state["OutputPath"] == "$.Payload"
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert {"RetryableError"} | RETRIED_LAMBDA_ERRORS <= retried, step
        assert "PermanentError" not in retried and "States.ALL" not in retried
        assert all(r.get("BackoffRate", 1) >= 2 or r["MaxAttempts"] <= 1
                   for r in state["Retry"])
        (catch,) = state["Catch"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                         "Next": "MarkFailed"}
    assert states["MarkFailed"]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"


def test_content_jobs_are_waited_for_by_callback_with_a_timeout_and_caught_per_item():
    states = substituted_asl()["States"]
    (branch,) = states["WaitsForContentJobs"]["Choices"]
    assert branch == {"Variable": "$.content_jobs[0]", "IsPresent": True,
                      "Next": "AwaitContentJobs"}
    assert states["WaitsForContentJobs"]["Default"] == "Extract"
    wait = states["AwaitContentJobs"]
    assert wait["Type"] == "Map" and wait["ItemsPath"] == "$.content_jobs"
    assert wait["ResultPath"] == "$.content_results" and wait["Next"] == "CollectContent"
    assert wait["ItemSelector"]["job.$"] == "$$.Map.Item.Value"
    inner = wait["ItemProcessor"]["States"]
    for name in ("AwaitOcr", "AwaitTranscript"):
        task = inner[name]
        assert task["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        payload = task["Parameters"]["Payload"]
        assert payload["task_token.$"] == "$$.Task.Token" and payload["job.$"] == "$.job"
        assert isinstance(task["TimeoutSeconds"], int) and task["TimeoutSeconds"] > 0
        retried = {e for r in task["Retry"] for e in r["ErrorEquals"]}
        assert "RetryableError" in retried and "States.Timeout" not in retried
        # A job that fails or never finishes fails its item only: caught as data.
        (catch,) = task["Catch"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                         "Next": "ItemNotRead"}
    assert inner["ItemNotRead"] == {**inner["ItemNotRead"], "Type": "Pass", "End": True}
    assert states["CollectContent"]["Next"] == "Extract"


def test_timeouts_of_the_waits_are_template_parameters(template):
    machine = template["Resources"]["IngestStateMachine"]
    subs = machine["Properties"]["DefinitionSubstitutions"]
    assert subs["OcrJobTimeoutSeconds"] == {"Ref": "OcrJobTimeoutSeconds"}
    assert subs["TranscriptionJobTimeoutSeconds"] == {"Ref": "TranscriptionJobTimeoutSeconds"}
    params = template["Parameters"]
    assert params["SpeechTranscription"]["AllowedValues"] == ["enabled", "disabled"]


def test_textract_notices_reach_the_ocr_function_through_sns_and_sqs(template):
    res = template["Resources"]
    assert res["OcrCompletionSubscription"]["Properties"] == {
        "TopicArn": {"Ref": "OcrCompletionTopic"}, "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": ["OcrCompletionQueue", "Arn"]}}
    trust = res["TextractPublishRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust[0]["Principal"] == {"Service": "textract.amazonaws.com"}
    (source,) = res["OcrDoneFunction"]["Properties"]["Events"].values()
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["OcrCompletionQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ENGRAM_OCR_TOPIC_ARN"] == {"Ref": "OcrCompletionTopic"}
    assert env["ENGRAM_OCR_ROLE_ARN"] == {"Fn::GetAtt": ["TextractPublishRole", "Arn"]}


def test_transcribe_state_changes_of_this_stack_reach_the_transcript_function(template):
    (rule,) = template["Resources"]["TranscriptDoneFunction"]["Properties"]["Events"].values()
    assert rule["Type"] == "EventBridgeRule"
    pattern = rule["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.transcribe"]
    assert pattern["detail-type"] == ["Transcribe Job State Change"]
    assert pattern["detail"]["TranscriptionJobStatus"] == ["COMPLETED", "FAILED"]
    assert pattern["detail"]["TranscriptionJobName"] == [
        {"prefix": {"Fn::Sub": "${AWS::StackName}-"}}]
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ENGRAM_JOB_PREFIX"] == {"Ref": "AWS::StackName"}


def test_snapstart_is_a_parameter_for_the_api_and_authorizer_versions(template):
    parameter = template["Parameters"]["SnapStart"]
    assert parameter["Default"] == "None"  # no cache charge unless asked for
    assert parameter["AllowedValues"] == ["None", "PublishedVersions"]
    for name in ("ApiFunction", "AuthorizerFunction"):
        properties = template["Resources"][name]["Properties"]
        assert properties["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
        assert properties["AutoPublishAlias"] == "live"  # SnapStart applies to versions
    # API Gateway calls the authorizer's alias too, not $LATEST (never snapshotted)
    authorizers = template["Resources"]["EngramApi"]["Properties"]["Auth"]["Authorizers"]
    assert authorizers["ApiKeyAuthorizer"]["FunctionArn"] == {"Ref": "AuthorizerFunction.Alias"}


def test_serverless_security_policies_are_json_naming_the_collection(template):
    policies = {**resources_of(template, "AWS::OpenSearchServerless::SecurityPolicy"),
                **resources_of(template, "AWS::OpenSearchServerless::AccessPolicy")}
    assert len(policies) == 3  # encryption, network, data access
    for name, resource in policies.items():
        text = resource["Properties"]["Policy"]["Fn::Sub"]
        policy = json.loads(SUBSTITUTION.sub("x", text))
        assert "collection/${OpenSearchCollectionName}" in text, name
        assert policy, name


def test_serverless_mode_makes_a_nextgen_collection_group_that_can_scale_to_zero(template):
    res, params = template["Resources"], template["Parameters"]
    group = res["MemoryCollectionGroup"]
    assert group["Type"] == "AWS::OpenSearchServerless::CollectionGroup"
    assert group["Condition"] == "UseServerless"
    props = group["Properties"]
    assert props["Generation"] == "NEXTGEN"  # CLASSIC collections cannot scale to zero
    limits = {k: v["Ref"] for k, v in props["CapacityLimits"].items()}
    assert limits == {"MinIndexingCapacityInOcu": "OpenSearchMinIndexingOcu",
                      "MinSearchCapacityInOcu": "OpenSearchMinSearchOcu",
                      "MaxIndexingCapacityInOcu": "OpenSearchMaxIndexingOcu",
                      "MaxSearchCapacityInOcu": "OpenSearchMaxSearchOcu"}
    assert params["OpenSearchMinIndexingOcu"]["Default"] == 0
    assert params["OpenSearchMinSearchOcu"]["Default"] == 0
    collection = res["MemoryCollection"]["Properties"]
    assert collection["CollectionGroupName"] == props["Name"]
    assert "MemoryCollectionGroup" in res["MemoryCollection"]["DependsOn"]
    # The group's name is the collection's plus 4 characters: within the group's 32.
    longest = int(re.search(r"\{2,(\d+)\}", params["OpenSearchCollectionName"]
                            ["AllowedPattern"]).group(1)) + 1
    assert longest + len(props["Name"]["Fn::Sub"]) - len("${OpenSearchCollectionName}") <= 32
    # The wait for a waking collection stays under API Gateway's 29 s.
    assert params["OpenSearchWakeWaitSeconds"]["MaxValue"] < 29
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ENGRAM_OPENSEARCH_WAKE_WAIT_SECONDS"] == {"Ref": "OpenSearchWakeWaitSeconds"}


def test_dev_scales_to_zero_and_prod_keeps_capacity_warm():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())

    def overrides(env: str) -> dict[str, str]:
        text = config[env]["deploy"]["parameters"]["parameter_overrides"]
        return dict(re.findall(r'(\w+)="([^"]*)"', text))

    dev, prod = overrides("dev"), overrides("prod")
    assert dev["OpenSearchMinIndexingOcu"] == dev["OpenSearchMinSearchOcu"] == "0"
    assert float(prod["OpenSearchMinSearchOcu"]) > 0 and float(
        prod["OpenSearchMinIndexingOcu"]) > 0


def test_bucket_sends_inbox_events_to_the_upload_queue(template):
    from engram.aws.intake import INBOX_PREFIX

    bucket = template["Resources"]["IngestBucket"]["Properties"]
    (route,) = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert route["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert route["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": INBOX_PREFIX}]
    consumer = template["Resources"]["UploadReceivedFunction"]["Properties"]["Events"]
    (source,) = consumer.values()
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# --- tables ------------------------------------------------------------------------------------

TABLE_RESOURCES = {"tasks": "TasksTable", "api_keys": "ApiKeysTable", "records": "RecordsTable"}


@pytest.mark.parametrize("table, resource", TABLE_RESOURCES.items())
def test_tables_are_declared_as_the_adapters_define_them(template, table, resource):
    declared = template["Resources"][resource]["Properties"]
    for name, value in table_definitions()[table].items():
        assert declared.get(name) == value, f"{resource}.{name}"


def test_idempotency_table_has_powertools_layout(template):
    declared = template["Resources"]["IdempotencyTable"]["Properties"]
    assert declared["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert declared["TimeToLiveSpecification"] == {"AttributeName": "expiration",
                                                   "Enabled": True}


# --- functions, settings, layer --------------------------------------------------------------

def function_dirs() -> list[str]:
    return sorted(p.name for p in FUNCTIONS.iterdir() if (p / "app.py").is_file())


def test_every_function_folder_is_deployed_and_has_events(template):
    deployed = {r["Properties"]["CodeUri"].strip("/").removeprefix("functions/"):
                r["Properties"]["Handler"]
                for r in resources_of(template, "AWS::Serverless::Function").values()}
    assert sorted(deployed) == function_dirs()
    assert set(deployed.values()) == {"app.lambda_handler"}
    for name in function_dirs():
        assert list((EVENTS / name).glob("*.json")), f"events/{name}/ has no scenario"
        lines = (FUNCTIONS / name / "app.py").read_text().splitlines()
        assert len(lines) <= 45, f"functions/{name}/app.py is no longer a thin handler"
        assert "boto3" not in "\n".join(lines), f"functions/{name}/app.py calls AWS itself"


def test_every_variable_the_template_sets_is_read_by_the_settings(template, monkeypatch):
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for function in resources_of(template, "AWS::Serverless::Function").values():
        variables.update(function["Properties"].get("Environment", {}).get("Variables", {}))
    engram = {name for name in variables if name.startswith("ENGRAM_")}
    for name in [name for name in os.environ if name.startswith("ENGRAM_")]:
        monkeypatch.delenv(name)
    unset = Settings()

    def is_read(name: str) -> bool:
        """Setting it changes the settings, or is refused by their validation."""
        with monkeypatch.context() as env:
            env.setenv(name, "probe-value")
            try:
                return Settings() != unset
            except ValueError:
                return True

    unread = {name for name in engram if not is_read(name)}
    assert not unread, f"set but never read: {unread}"
    required = {f"ENGRAM_{n}" for n in ("TASKS_TABLE", "API_KEYS_TABLE", "RECORDS_TABLE",
                                        "IDEMPOTENCY_TABLE", "BUCKET")}
    assert required <= engram


def test_layer_is_built_from_layers_core_for_the_functions_runtime(template):
    (layer,) = resources_of(template, "AWS::Serverless::LayerVersion").values()
    runtime = template["Globals"]["Function"]["Runtime"]
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/core"
    # layers/core/Makefile: pip for the runtime's Python, the model, bytecode
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert runtime in layer["Properties"]["CompatibleRuntimes"]
    makefile = (ROOT / "layers" / "core" / "Makefile").read_text()
    assert "build-CoreLayer:" in makefile
    assert f"--python-version {runtime.removeprefix('python')}" in makefile
    packages = set()
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        requirements = (ROOT / "layers" / "core" / name).read_text().lower()
        packages |= {re.split(r"[\[=<>~ ]", line)[0] for line in requirements.splitlines()
                     if line.strip() and not line.startswith("#")}
    assert {"aws-lambda-powertools", "pydantic", "numpy", "opensearch-py", "requests",
            "openai", "onnxruntime", "tokenizers"} <= packages
    assert not packages & {"torch", "sentence-transformers", "boto3", "moto"}


def test_the_onnx_embedder_reads_the_layers_model_in_384_dimensions(template):
    provider = template["Parameters"]["EmbeddingProvider"]
    assert provider["Default"] == "onnx" and {"onnx", "bedrock", "openai"} == set(
        provider["AllowedValues"])
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["ENGRAM_EMBEDDING_MODEL_DIR"] == "/opt/minilm-onnx"  # the layer's minilm-onnx/
    assert env["ENGRAM_EMBEDDING_DIMENSION"] == {
        "Fn::If": ["UseOnnxEmbeddings", 384, {"Ref": "EmbeddingDimension"}]}
    assert template["Conditions"]["UseOnnxEmbeddings"] == {
        "Fn::Equals": [{"Ref": "EmbeddingProvider"}, "onnx"]}
    # both profiles pin the same onnxruntime: the same vectors
    pinned = "onnxruntime==1.31.1"
    assert pinned in (ROOT / "pyproject.toml").read_text()
    assert pinned in (ROOT / "layers" / "core" / "requirements-nodeps.txt").read_text()


def test_samconfig_has_three_environments_of_known_parameters(template):
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert {"default", "dev", "prod"} <= set(config)
    known = set(template["Parameters"])
    for env in ("default", "dev", "prod"):
        overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
        names = set(re.findall(r'(\w+)="', overrides))
        assert names and names <= known, f"{env}: unknown {names - known}"
        assert "ProviderApiKeySecretArn" not in names  # no secrets, not even their ARNs


# --- events ----------------------------------------------------------------------------------

class ApiEventWithTenant(APIGatewayProxyEventModel):
    """A REST proxy event as the API function receives it behind the authorizer."""

    def tenant(self) -> str | None:
        return (self.model_extra or {}).get("tenant") or None


class UploadQueueEvent(SqsModel):
    Records: list[UploadQueueRecord]  # type: ignore[assignment]


API_BODIES: dict[str, type[BaseModel]] = {"/v1/add/message": AddMessageRequest,
                                          "/v1/search/memory": SearchRequest,
                                          "/v1/get/status": TaskStatusRequest,
                                          "/api/v1/object/sign": ObjectSignRequest,
                                          "/api/v1/memories": MemoryAddRequest}
# Scenarios that are invalid on purpose, and which part is.
INVALID = {("api", "add_message_invalid"): "body",
           ("ingest_queue", "batch_with_invalid_job"): "record 1"}


def event_files() -> list[tuple[str, str]]:
    return sorted((p.parent.name, p.stem) for p in EVENTS.glob("*/*.json"))


@pytest.mark.parametrize("function, scenario", event_files())
def test_every_event_parses_with_its_model(function, scenario):
    event = json.loads((EVENTS / function / f"{scenario}.json").read_text())
    invalid = INVALID.get((function, scenario))
    if function == "api":
        parsed = APIGatewayProxyEventModel.model_validate(event)
        authorizer = event["requestContext"]["authorizer"]
        if scenario != "no_authorizer_context":
            assert authorizer["tenant_id"] and authorizer["principalId"] == authorizer["tenant_id"]
        if parsed.body is not None:
            model = API_BODIES[parsed.path]
            if invalid:
                with pytest.raises(ValueError):
                    model.model_validate_json(parsed.body)
            else:
                model.model_validate_json(parsed.body)
    elif function == "authorizer":
        ApiGatewayAuthorizerRequest.model_validate(event)
    elif function == "upload_received":
        UploadQueueEvent.model_validate(event)
    elif function == "ingest_queue":
        SqsModel.model_validate(event)
        for i, record in enumerate(event["Records"]):
            if invalid == f"record {i}":
                with pytest.raises(ValueError):
                    IngestQueueRecord.model_validate(record)
            else:
                IngestQueueRecord.model_validate(record)
    elif function == "mark_failed":
        FailedStepInput.model_validate(event)
    elif function == "start_content_job":
        ContentJobTaskInput.model_validate(event)
    elif function == "ocr_done":
        SqsModel.model_validate(event)
        for record in event["Records"]:
            OcrCompletionRecord.model_validate(record)
    elif function == "transcript_done":
        TranscribeJobStateChange.model_validate(event)
    elif function == "collect_content":
        CollectContentInput.model_validate(event)
    elif function == "execution_ended":
        assert ExecutionStatusChange.model_validate(event).detail.input is not None
    else:
        assert function in ("parse", "extract", "dedupe", "index"), function
        TaskRef.model_validate(event)


def test_every_function_has_a_model_for_its_events():
    assert {f for f, _ in event_files()} == set(function_dirs())
