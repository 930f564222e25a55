"""The AWS profile in one process, for the handler, state machine and end-to-end tests:
moto for S3, SQS, DynamoDB and Step Functions, the fake OpenSearch on 127.0.0.1, the
hashing embedder instead of Bedrock, and the real handlers of functions/<name>/app.py.

`moto_stack(execute=True)` also runs the state machine in moto's ASL interpreter, with
its Lambda tasks dispatched to our handlers (feasibility §1d: moto's simple Lambda
backend only echoes its input, so `invoke` is patched; this touches a moto internal,
which is why moto is pinned to 5.2.5). The Express workflow's hand-over task
(`states:startExecution`) needs one more patch: see `_start_execution_parameters`."""

from __future__ import annotations

import importlib.util
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (  # noqa: E501
    StateTaskServiceSfn,
)
from opensearchpy import OpenSearch
from tests.fakes.aws import REGION, create_tables
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.opensearch_server import FakeOpenSearch

from engram.adapters.opensearch_index import REQUEST_TIMEOUT_SECONDS
from engram.aws import runtime as aws_runtime_module
from engram.aws.runtime import AwsClients, AwsRuntime, build_aws_runtime
from engram.config import (
    AwsSettings,
    EmbeddingSettings,
    LlmSettings,
    OpenSearchSettings,
    Settings,
    VisionSettings,
)
from engram.models.domain import Task, TaskRef

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
ASL = ROOT / "statemachine" / "ingest.asl.json"
TEXT_ASL = ROOT / "statemachine" / "ingest-text.asl.json"  # Express, text-only adds
ACCOUNT = "123456789012"
BUCKET = "engram-ingestbucket-example"  # the bucket the events/ files name
API_KEY = "eng_example-key-for-tenant-a-0123456789"  # the key events/ sends for tenant-a
TENANT = "tenant-a"
STEP_FUNCTIONS = ("parse", "extract", "dedupe", "index", "mark_failed", "start_content_job",
                  "collect_content")
OCR_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/engram-test-textract-publishes"
JOB_PREFIX = "engram-test"
FUNCTION_PREFIX = "engram-test-"
VISION_SECRET = "sk-vision-from-secrets-manager"
SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "engram",
    "POWERTOOLS_METRICS_NAMESPACE": "EngramTest",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_DEV": "0",
    "AWS_LAMBDA_FUNCTION_NAME": "engram-test",
}


def load_event(function: str, scenario: str) -> dict[str, Any]:
    return json.loads((EVENTS / function / f"{scenario}.json").read_text())


_handlers: dict[str, ModuleType] = {}


def handler_module(function: str) -> ModuleType:
    """functions/<function>/app.py, imported under a name of its own (every handler
    module is called `app`, as Lambda loads it)."""
    if function not in _handlers:
        path = ROOT / "functions" / function / "app.py"
        spec = importlib.util.spec_from_file_location(f"engram_functions.{function}.app", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _handlers[function] = module
    return _handlers[function]


class HeldWorkflow:
    """Accept a task without starting it, so a test can prepare, then start it itself."""

    def __init__(self) -> None:
        self.refs: list[TaskRef] = []

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        self.refs.append(ref)


@dataclass
class LambdaContext:
    """What Powertools reads from the Lambda context."""

    function_name: str = "engram-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:engram-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/engram-test"
    log_stream_name: str = "2026/11/21/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def invoke(function: str, event: dict[str, Any]) -> Any:
    """Call a function's real `lambda_handler`, as the Lambda runtime would."""
    return handler_module(function).lambda_handler(event, LambdaContext(function_name=function))


def state_machine_definition(substitutions: dict[str, str], asl: Path = ASL) -> str:
    """The ASL with its ${…} substituted, as CloudFormation does (text in, text out); an
    unknown name is an error, never left in place."""
    text = asl.read_text()
    missing = sorted(set(SUBSTITUTION.findall(text)) - set(substitutions))
    if missing:
        raise KeyError(f"no substitution for {missing}")
    definition = SUBSTITUTION.sub(lambda m: str(substitutions[m.group(1)]), text)
    json.loads(definition)  # the result must be JSON
    return definition


def local_substitutions(retry_interval_seconds: int = 1,
                        job_timeout_seconds: int = 20) -> dict[str, str]:
    """What the template substitutes, for this test stack (fast retries, short waits for
    content jobs)."""
    arns = {f"{''.join(p.title() for p in name.split('_'))}FunctionArn":
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_PREFIX}{name}"
            for name in STEP_FUNCTIONS}
    return {**arns, "RetryIntervalSeconds": str(retry_interval_seconds),
            "OcrJobTimeoutSeconds": str(job_timeout_seconds),
            "TranscriptionJobTimeoutSeconds": str(job_timeout_seconds)}


@dataclass
class MotoStack:
    settings: Settings
    clients: AwsClients
    runtime: AwsRuntime
    tables: dict[str, Any]
    opensearch: FakeOpenSearch
    ocr_queue_url: str = ""  # subscribed to the OCR topic, as the template's OCR queue
    # moto_stack(events=True): a queue behind a rule taking every Engram event on the bus
    events_queue_url: str = ""
    # Called with the function name before each state machine task runs (tests arm
    # failures here); see `dispatch`.
    before_task: Callable[[str], None] = lambda name: None
    invocations: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)  # invocations that have finished

    @property
    def s3(self) -> Any:
        return self.clients.s3

    @property
    def sfn(self) -> Any:
        return self.clients.stepfunctions

    def ocr_notices(self, expected: int = 1, timeout: float = 20) -> dict[str, Any]:
        """Textract's completion notices (SNS → the OCR queue) as the ocr_done function's
        SQS event; waits until `expected` have arrived (an execution starts jobs in the
        background)."""
        sqs = boto3.client("sqs", region_name=REGION)
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            messages += sqs.receive_message(QueueUrl=self.ocr_queue_url,
                                            MaxNumberOfMessages=10).get("Messages", [])
            if len(messages) < expected:
                time.sleep(0.05)
        if len(messages) < expected:
            raise TimeoutError(f"{len(messages)} of {expected} OCR notices after {timeout} s")
        return {"Records": [sqs_record(m["Body"], self.ocr_queue_url, m["MessageId"])
                            for m in messages]}

    def task(self, task_id: str) -> Task | None:
        return self.runtime.pipeline.tasks.get(TENANT, task_id)

    def tasks_of(self, user_id: str) -> list[Task]:
        """Every task row of a user (a test-only scan)."""
        items = self.tables["tasks"].scan()["Items"]
        tasks = [Task.model_validate_json(i["body"]) for i in items if "body" in i]
        return [t for t in tasks if t.user_id == user_id]

    def machines(self) -> list[str]:
        """The Standard workflow's ARN, then the Express one's (text-only adds)."""
        aws = self.settings.aws
        return [arn for arn in (aws.state_machine_arn, aws.text_state_machine_arn) if arn]

    def executions(self, machine: str | None = None) -> list[dict[str, Any]]:
        """Executions of one state machine, or of both (Standard first)."""
        return [execution for arn in ([machine] if machine else self.machines())
                for execution in self.sfn.list_executions(stateMachineArn=arn)["executions"]]

    def execution_arn(self, name: str) -> str:
        """The execution of this name, on whichever state machine ran it (Standard when
        both did: a hand-over keeps the name)."""
        for arn in self.machines():
            for execution in self.sfn.list_executions(stateMachineArn=arn)["executions"]:
                if execution["name"] == name:
                    return execution["executionArn"]
        raise KeyError(f"no execution named {name}")

    def wait_for_execution(self, name: str, timeout: float = 30,
                           machine: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                arn = (machine.replace(":stateMachine:", ":execution:") + f":{name}"
                       if machine else self.execution_arn(name))
            except KeyError:  # not started yet (a hand-over starts it from the other one)
                time.sleep(0.05)
                continue
            described = self.sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        raise TimeoutError(f"execution {name} still running after {timeout} s")

    def history(self, name: str, machine: str | None = None) -> list[dict[str, Any]]:
        arn = (machine.replace(":stateMachine:", ":execution:") + f":{name}"
               if machine else self.execution_arn(name))
        return self.sfn.get_execution_history(executionArn=arn)["events"]


def _create_idempotency_table(dynamodb: Any, name: str) -> Any:
    table = dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    table.meta.client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"AttributeName": "expiration", "Enabled": True})
    return table


def sqs_record(body: str, queue_url: str, message_id: str | None = None) -> dict[str, Any]:
    """An SQS record as Lambda's event source mapping delivers it."""
    name = queue_url.rsplit("/", 1)[-1]
    return {"messageId": message_id or str(uuid.uuid4()), "receiptHandle": "AQEB-test",
            "body": body, "attributes": {
                "ApproximateReceiveCount": "1", "SentTimestamp": "1795263331000",
                "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795263331012"},
            "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", "awsRegion": REGION}


@contextmanager
def moto_stack(monkeypatch: pytest.MonkeyPatch, *, execute: bool = False,
               job_timeout_seconds: int = 20,
               wake_wait_seconds: float = 0,
               text_workflow: bool = True,
               vision: VisionSettings | None = None,
               llm: LlmSettings | None = None,
               events: bool = False) -> Iterator[MotoStack]:
    """Everything the template declares that the handlers touch, in moto, and the
    runtime the handlers use installed over it. `execute` runs state machine executions
    (with our handlers behind its Lambda tasks); otherwise they are only recorded.
    Textract's completion notices go to an SNS topic with an SQS queue subscribed, as
    the template wires them; Transcribe is enabled. `vision`: a vision model describes
    images, its key in a Secrets Manager secret (the provider secret) holding
    VISION_SECRET; `llm`: a chat model extracts and resolves, with the same secret.
    `text_workflow`: text-only adds take the Express state machine, as the template wires
    them; `wake_wait_seconds`: how long index calls wait for a waking collection.
    `events`: Engram's events go to an EventBridge bus, read back through a rule whose
    target is an SQS queue (`events_queue_url`; moto delivers to SQS targets)."""
    for name, value in POWERTOOLS_ENV.items():
        monkeypatch.setenv(name, value)
    config = {"stepfunctions": {"execute_state_machine": execute},
              "lambda": {"use_docker": False}}
    with mock_aws(config=config), FakeOpenSearch(
            required_filter_fields=("tenant_id", "user_id")) as search:
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        tables = create_tables(dynamodb, prefix="engram-test")
        tables["idempotency"] = _create_idempotency_table(dynamodb, "engram-test-idempotency")
        # as AwsClients.from_settings makes it: SigV4, also for pre-signed POST forms
        s3 = boto3.client("s3", region_name=REGION, config=Config(signature_version="s3v4"))
        s3.create_bucket(Bucket=BUCKET)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="engram-test-ingest", type="STANDARD",
            definition=state_machine_definition(local_substitutions(
                job_timeout_seconds=job_timeout_seconds)),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/engram-test-ingest")["stateMachineArn"]
        # moto runs an EXPRESS machine with the same interpreter as a STANDARD one: it
        # enforces neither the 5-minute cap nor at-least-once starts, and keeps the
        # history that AWS keeps only in CloudWatch Logs for Express.
        text_machine = sfn.create_state_machine(
            name="engram-test-ingest-text", type="EXPRESS",
            definition=state_machine_definition(
                {**local_substitutions(), "StandardStateMachineArn": machine}, TEXT_ASL),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/engram-test-ingest-text")["stateMachineArn"] \
            if text_workflow else ""
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="engram-test-ocr-done")["TopicArn"]
        ocr_queue = sqs.create_queue(QueueName="engram-test-ocr-done")["QueueUrl"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sqs.get_queue_attributes(
            QueueUrl=ocr_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
        bus, events_queue = "", ""
        if events:
            bridge = boto3.client("events", region_name=REGION)
            bus = "engram-test-events"
            bridge.create_event_bus(Name=bus)
            events_queue = sqs.create_queue(QueueName="engram-test-events-tap")["QueueUrl"]
            bridge.put_rule(Name="engram-test-all", EventBusName=bus,
                            EventPattern=json.dumps({"source": ["engram"]}))
            bridge.put_targets(Rule="engram-test-all", EventBusName=bus, Targets=[{
                "Id": "tap", "Arn": sqs.get_queue_attributes(
                    QueueUrl=events_queue, AttributeNames=["QueueArn"])[
                    "Attributes"]["QueueArn"]}])
        secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="engram-test/provider", SecretString=VISION_SECRET)["ARN"] \
            if vision or llm else ""
        settings = Settings(vision=vision or VisionSettings(), llm=llm or LlmSettings(),
                            aws=AwsSettings(
            provider_secret_arn=secret_arn,
            ocr_topic_arn=topic, ocr_role_arn=OCR_ROLE_ARN, transcription="enabled",
            job_prefix=JOB_PREFIX, event_bus_name=bus,
            region=REGION, tasks_table=tables["tasks"].name,
            api_keys_table=tables["api_keys"].name, records_table=tables["records"].name,
            idempotency_table=tables["idempotency"].name, bucket=BUCKET,
            state_machine_arn=machine, text_state_machine_arn=text_machine,
            opensearch=OpenSearchSettings(endpoint=f"http://127.0.0.1:{search.port}",
                                          service="es", index="engram-memories",
                                          wake_wait_seconds=wake_wait_seconds),
            embedding=EmbeddingSettings(model_id=HashingEmbedder.model_name,
                                        dimension=HashingEmbedder.dimension)))
        clients = AwsClients(
            s3=s3, dynamodb=dynamodb,
            dynamodb_client=boto3.client("dynamodb", region_name=REGION),
            stepfunctions=sfn, bedrock_runtime=None,
            # as opensearch_client makes it: no retries in the transport (the adapter
            # waits for a waking collection itself)
            opensearch=OpenSearch(hosts=[{"host": "127.0.0.1", "port": search.port}],
                                  timeout=REQUEST_TIMEOUT_SECONDS, max_retries=0,
                                  retry_on_timeout=False),
            textract=boto3.client("textract", region_name=REGION),
            transcribe=boto3.client("transcribe", region_name=REGION),
            events=boto3.client("events", region_name=REGION) if events else None)
        runtime = build_aws_runtime(settings, embedder=HashingEmbedder(), clients=clients)
        stack = MotoStack(settings=settings, clients=clients, runtime=runtime, tables=tables,
                          opensearch=search, ocr_queue_url=ocr_queue,
                          events_queue_url=events_queue)
        if execute:
            monkeypatch.setattr(LambdaSimpleBackend, "invoke", _dispatcher(stack))
            monkeypatch.setattr(StateTaskServiceSfn, "_normalise_parameters",
                                _start_execution_parameters(
                                    StateTaskServiceSfn._normalise_parameters))
        aws_runtime_module.install(runtime)
        try:
            yield stack
            for execution in stack.executions():  # none may outlive moto and the fakes
                if execute and execution["status"] == "RUNNING":
                    stack.wait_for_execution(execution["name"])
        finally:
            aws_runtime_module.install(None)


def _start_execution_parameters(normalise: Callable[..., None]) -> Callable[..., None]:
    """moto 5.2.5's `states:startExecution` task hands the ASL's parameter names
    (StateMachineArn, Name, Input) to boto3 as they are, which refuses them (KeyError
    'StateMachineArn'); AWS maps them to the API's (stateMachineArn, name, input). This
    does that mapping, after moto has turned Input into a JSON string."""

    def normalise_then_rename(self, parameters: dict, boto_service_name=None,
                              service_action_name=None) -> None:
        normalise(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None and self._get_boto_service_action() == "start_execution":
            for name in [n for n in parameters if n[:1].isupper()]:
                parameters[name[0].lower() + name[1:]] = parameters.pop(name)

    return normalise_then_rename


def _dispatcher(stack: MotoStack):
    """moto's Lambda `invoke`, answered by functions/<name>/app.py. An exception becomes
    what Lambda returns for an unhandled error: the X-Amz-Function-Error header and
    {"errorType", "errorMessage"}, which the state machine's Retry and Catch match."""

    def invoke_handler(self, function_name, qualifier, body, headers, response_headers):
        name = function_name.split(":function:")[-1].split(":")[0].removeprefix(FUNCTION_PREFIX)
        stack.invocations.append(name)
        try:
            stack.before_task(name)
            result = invoke(name, json.loads(body or b"{}"))
            return json.dumps(result).encode()
        except Exception as error:  # noqa: BLE001 - reported to the interpreter, as Lambda does
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__,
                               "errorMessage": str(error)}).encode()
        finally:
            stack.returned.append(name)

    return invoke_handler


@dataclass
class GatewayResponse:
    status: int
    body: dict[str, Any]


def call_api(method: str, route: str, body: dict[str, Any] | None = None,
             api_key: str | None = API_KEY, prefix: str = "/v1") -> GatewayResponse:
    """What API Gateway does with a request: the REQUEST authorizer first (its Deny
    becomes the ACCESS_DENIED gateway response, a 401 in the API's envelope), then the
    API function with the authorizer's context in requestContext.authorizer."""
    if api_key is None:  # no identity source: API Gateway answers without the authorizer
        return GatewayResponse(401, {"code": 401, "message": "missing Authorization header"})
    template = load_event("api", "add_message_async")
    headers = {**template["headers"], "Authorization": f"Token {api_key}"}
    request = load_event("authorizer", "valid_token")
    request.update(headers=headers, multiValueHeaders={k: [v] for k, v in headers.items()},
                   httpMethod=method, path=f"{prefix}/{route}")
    request["methodArn"] = (request["methodArn"].rsplit("/POST/", 1)[0]
                            + f"/{method}{prefix}/{route}")
    policy = invoke("authorizer", request)
    if policy["policyDocument"]["Statement"][0]["Effect"] != "Allow":
        return GatewayResponse(401, {"code": 401, "message": policy["context"]["reason"],
                                     "data": None})
    event = dict(template, path=f"{prefix}/{route}", httpMethod=method, headers=headers,
                 multiValueHeaders={k: [v] for k, v in headers.items()},
                 pathParameters={"proxy": route},
                 body=json.dumps(body) if body is not None else None)
    event["requestContext"] = dict(template["requestContext"], httpMethod=method,
                                   path=f"{prefix}/{route}", requestId=str(uuid.uuid4()),
                                   authorizer={"principalId": policy["principalId"],
                                               **policy["context"]})
    response = invoke("api", event)
    return GatewayResponse(response["statusCode"], json.loads(response["body"]))
