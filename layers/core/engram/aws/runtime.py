"""The AWS profile's factory: the AWS adapters, as the PortSet that container.py wires
into the same services `engram serve` runs, built once per cold start.

Clients are made on first use, so an invocation pays only for what it calls: the
authorizer never creates an S3, Step Functions or OpenSearch client, and a step that
does not search never checks the OpenSearch index.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.config import Settings
from engram.errors import EngramError

if TYPE_CHECKING:
    # Imported where used: the authorizer, which needs one table, imports none of the
    # services, pipeline or numpy this module builds for the other functions.
    import numpy as np
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from engram.adapters.idempotency import PowertoolsAcceptOnce
    from engram.adapters.sfn_workflow import StepFunctionsWorkflow
    from engram.aws.intake import IdempotentIntake
    from engram.container import PortSet, Services
    from engram.models.domain import Memory, MemoryType, Task, TaskRef
    from engram.models.filters import FilterNode
    from engram.pipeline.content_jobs import ContentJobs
    from engram.pipeline.steps import PipelineDeps
    from engram.ports import (
        Embedder,
        ImageDescriber,
        IndexHit,
        IndexQuery,
        LanguageModel,
        TaskStore,
    )
    from engram.services.keys import ApiKeyService


class ConfigurationError(EngramError):
    """The function's environment asks for something this build cannot do."""


class LazyClient:
    """Stands in for a client and creates it on first attribute access."""

    def __init__(self, create: Callable[[], Any]):
        self._create = create
        self._client: Any = None
        self._lock = threading.Lock()  # the Bedrock embedder calls from a thread pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.create(), name)

    def create(self) -> Any:
        """The client, made now if not yet (no request is sent)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._create()
        return self._client


@dataclass
class AwsClients:
    """The outside systems' clients. `from_settings` makes each lazily; a test passes
    its own (moto's boto3 clients, an OpenSearch client aimed at a local fake)."""

    s3: Any
    dynamodb: Any  # the boto3 DynamoDB *resource* (the stores take Table objects)
    dynamodb_client: Any  # the low-level client, for Powertools idempotency
    stepfunctions: Any
    bedrock_runtime: Any
    opensearch: Any
    textract: Any = None  # OCR of images and scanned PDF pages
    transcribe: Any = None  # audio and video
    events: Any = None  # EventBridge (Engram's events on the stack's bus)

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsClients:
        import boto3
        from botocore.config import Config

        aws = settings.aws
        session = boto3.session.Session(region_name=aws.region)
        # Fail fast and let the caller's retry policy (the ASL, SQS) take over.
        config = Config(connect_timeout=5, read_timeout=30,
                        retries={"mode": "standard", "max_attempts": 3})

        def client(service: str, extra: Config | None = None) -> LazyClient:
            merged = config.merge(extra) if extra else config
            return LazyClient(lambda: session.client(service, config=merged))

        def search_client() -> Any:
            from engram.adapters.opensearch_index import opensearch_client

            if not aws.opensearch.endpoint:
                raise ConfigurationError("ENGRAM_OPENSEARCH_ENDPOINT is not set")
            return opensearch_client(aws.opensearch.endpoint, aws.region, aws.opensearch.service,
                                     session)

        return cls(
            # SigV4 also for the pre-signed upload forms (SigV2 is refused by newer regions)
            s3=client("s3", Config(signature_version="s3v4")),
            dynamodb=LazyClient(lambda: session.resource("dynamodb", config=config)),
            dynamodb_client=client("dynamodb"),
            stepfunctions=client("stepfunctions"),
            bedrock_runtime=client("bedrock-runtime"),
            opensearch=LazyClient(search_client),
            textract=client("textract"),
            transcribe=client("transcribe"),
            events=client("events"),
        )


def create_clients(clients: AwsClients) -> None:
    """Every client `from_settings` left for first use, made now (snapstart.py)."""
    for value in vars(clients).values():
        if isinstance(value, LazyClient):
            value.create()


class IndexOnFirstUse:
    """The OpenSearch index, created (if missing) before its first use in this process
    rather than at cold start: parse, extract and mark-failed never touch it."""

    def __init__(self, create: Callable[[], Any]):
        self._create = create
        self._index: Any = None

    def _ready(self) -> Any:
        if self._index is None:
            index = self._create()
            index.ensure_index()
            self._index = index
        return self._index

    def upsert(self, memories: Sequence[Memory], vectors: np.ndarray) -> None:
        self._ready().upsert(memories, vectors)

    def remove(self, tenant_id: str, ids: Sequence[str]) -> None:
        self._ready().remove(tenant_id, ids)

    def remove_user(self, tenant_id: str, user_id: str, ids: Sequence[str] = ()) -> int:
        return self._ready().remove_user(tenant_id, user_id, ids)

    def search(self, tenant_id: str, user_id: str, vector: np.ndarray, text: str, k: int,
               types: Sequence[MemoryType], where: FilterNode | None = None) -> list[IndexHit]:
        return self._ready().search(tenant_id, user_id, vector, text, k, types, where)

    def search_groups(self, tenant_id: str, user_id: str, vector: np.ndarray, text: str,
                      queries: Sequence[IndexQuery], where: FilterNode | None = None
                      ) -> list[list[IndexHit]]:
        return self._ready().search_groups(tenant_id, user_id, vector, text, queries, where)

    def nearest(self, tenant_id: str, user_id: str, vectors: np.ndarray, k: int,
                types: Sequence[MemoryType]) -> list[list[IndexHit]]:
        return self._ready().nearest(tenant_id, user_id, vectors, k, types)


def default_embedder(settings: Settings, clients: AwsClients) -> Embedder:
    embedding = settings.aws.embedding
    if embedding.provider == "onnx":
        return onnx_embedder(embedding.model_dir)
    if embedding.provider == "bedrock":
        from engram.adapters.bedrock_embedder import BedrockEmbedder

        return BedrockEmbedder(clients.bedrock_runtime, embedding.model_id, embedding.dimension)
    from openai import OpenAI

    from engram.adapters.openai_embedder import OpenAIEmbedder

    provider_secret_arn(settings)  # a missing one is refused at cold start, ...
    # ... but the secret is read by the first embedding (not before a SnapStart snapshot)
    client = LazyClient(lambda: OpenAI(base_url=embedding.base_url,
                                       api_key=provider_api_key(settings),
                                       timeout=30, max_retries=2))
    return OpenAIEmbedder(client, embedding.model_id, embedding.dimension)


def onnx_embedder(model_dir: Path) -> Embedder:
    """`engram serve`'s embedder (OnnxMiniLMEmbedder over the int8 export), on the files
    the core layer ships; the model is loaded by the first embed, not at import."""
    from engram.adapters.onnx_embedder import INT8_FILE, OnnxMiniLMEmbedder

    return OnnxMiniLMEmbedder(model_dir / INT8_FILE)


def default_describer(settings: Settings) -> ImageDescriber | None:
    """The vision model that describes images, when ENGRAM_VISION_MODEL names one. Its
    client (and the secret it needs) is made on the first image, not at cold start; with
    no provider secret the endpoint is called without a key (a private one)."""
    vision = settings.vision
    if not vision.enabled:
        return None
    from engram.adapters.openai_vision import OpenAIVisionDescriber, vision_client

    def client() -> Any:
        key = provider_api_key(settings) if settings.aws.provider_secret_arn else ""
        return vision_client(vision.base_url, key, timeout=vision.timeout_seconds)

    return OpenAIVisionDescriber(LazyClient(client), vision.model)


def default_llm(settings: Settings) -> LanguageModel | None:
    """The chat model for extraction and conflict resolution, when ENGRAM_LLM_MODEL names
    one; its client (and the provider secret) is made on the first call."""
    llm = settings.llm
    if not llm.enabled:
        return None
    from engram.adapters.openai_llm import OpenAIChatModel, llm_client

    def client() -> Any:
        key = provider_api_key(settings) if settings.aws.provider_secret_arn else ""
        return llm_client(llm.base_url or None, key, timeout=llm.timeout_seconds,
                          max_retries=llm.max_retries)

    return OpenAIChatModel(LazyClient(client), llm.model, json_mode=llm.json_mode)


def provider_secret_arn(settings: Settings) -> str:
    arn = settings.aws.provider_secret_arn
    if not arn:
        raise ConfigurationError("ENGRAM_PROVIDER_SECRET_ARN is required with provider 'openai'")
    return arn


def provider_api_key(settings: Settings) -> str:
    """The OpenAI-compatible endpoint's key, from Secrets Manager (cached by Powertools for
    five minutes); never from an environment variable, never logged."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    return get_secret(provider_secret_arn(settings))


@dataclass
class StateMachineRunner:
    """Tasks run in the state machine; a sync add (async_mode false) runs the same steps
    inline in the API call, as `engram serve` does, but without asynchronous content jobs:
    there is no state machine to wait for them. Nothing to hold during an erasure: each
    step checks its task instead."""

    state_machine: StepFunctionsWorkflow
    tasks: TaskStore
    pipeline: Callable[[], PipelineDeps]  # the runtime's, built by the first sync add
    # Express, for text-only adds; None: every task runs on `state_machine` (Standard).
    text_state_machine: StepFunctionsWorkflow | None = None

    @cached_property
    def _inline(self) -> PipelineDeps:
        pipeline = self.pipeline()
        content = pipeline.content
        jobs = content.jobs if content else None
        return pipeline if jobs is None else replace(
            pipeline, content=replace(content, jobs=replace(
                jobs, ocr=False, transcription=False)))

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        """A first run of a text-only add takes the Express workflow (billed per request,
        not per state transition); an add with files (Textract/Transcribe callbacks,
        which Express cannot wait for) and the retry of a failed task take the Standard
        one. A task that cannot be read takes the Standard one too."""
        if self.text_state_machine is not None and attempt == 1:
            task = self.tasks.get(ref.tenant_id, ref.task_id)
            if task is not None and not task.items:
                self.text_state_machine.start(ref, attempt)
                return
        self.state_machine.start(ref, attempt)

    def run(self, ref: TaskRef) -> Task:
        from engram.pipeline.steps import run_pipeline

        return run_pipeline(self._inline, ref)

    def hold(self, tenant_id: str, user_id: str) -> AbstractContextManager[object]:
        return nullcontext()


def aws_ports(settings: Settings, clients: AwsClients, embedder: Embedder,
              accept_once: PowertoolsAcceptOnce) -> PortSet:
    """The AWS adapters, over clients made on first use."""
    from engram.adapters.dynamodb_directory import DynamoDirectory
    from engram.adapters.dynamodb_knowledge import DynamoKnowledgeStore
    from engram.adapters.dynamodb_profiles import DynamoProfileStore
    from engram.adapters.dynamodb_tables import (
        DynamoApiKeyStore,
        DynamoRecordStore,
        DynamoTaskStore,
    )
    from engram.adapters.eventbridge_bus import EventBridgeBus
    from engram.adapters.http_webhooks import HttpWebhookTransport
    from engram.adapters.s3_object_store import S3ObjectStore
    from engram.adapters.s3_upload_signer import S3UploadSigner
    from engram.adapters.sfn_workflow import StepFunctionsCallbacks
    from engram.adapters.textract_ocr import TextractOcr, TextractPdfJobs
    from engram.adapters.transcribe_media import TranscribeJobs
    from engram.adapters.url_fetcher import SafeFetcher
    from engram.container import PortSet
    from engram.services.url_policy import SsrfPolicy

    aws = settings.aws
    records_table = clients.dynamodb.Table(aws.records_table)
    records = DynamoRecordStore(records_table)
    search = aws.opensearch
    # Images go through Textract's synchronous DetectDocumentText. A PDF with pages
    # without a text layer becomes one asynchronous Textract job and audio/video a
    # Transcribe job, which the state machine waits for (pipeline/content_jobs.py);
    # without the OCR topic scanned pages are OCRed synchronously, page by page, and
    # with transcription disabled audio/video end "capability unavailable".
    ocr_jobs = TextractPdfJobs(clients.textract, bucket=aws.bucket,
                               sns_topic_arn=aws.ocr_topic_arn,
                               role_arn=aws.ocr_role_arn) if aws.async_ocr else None
    transcription_jobs = (TranscribeJobs(clients.transcribe, bucket=aws.bucket,
                                         language_code=aws.transcribe_language)
                          if aws.transcription == "enabled" else None)

    def memory_index() -> Any:  # opensearch-py is imported by the first search or upsert
        from engram.adapters.opensearch_index import OpenSearchMemoryIndex

        return OpenSearchMemoryIndex(clients.opensearch, search.index, embedder.dimension,
                                     use_custom_ids=search.use_custom_ids,
                                     space_type=search.space_type,
                                     wake_wait_seconds=search.wake_wait_seconds)

    return PortSet(
        objects=S3ObjectStore(clients.s3, aws.bucket),
        tasks=DynamoTaskStore(clients.dynamodb.Table(aws.tasks_table)),
        messages=records, memories=records,
        api_keys=DynamoApiKeyStore(clients.dynamodb.Table(aws.api_keys_table)),
        index=IndexOnFirstUse(memory_index),
        embedder=embedder,
        upload_signer=S3UploadSigner(clients.s3, aws.bucket),
        fetcher=SafeFetcher(SsrfPolicy(settings.fetch_allow_hosts),
                            max_bytes=settings.limits.max_media_bytes),
        ocr=TextractOcr(clients.textract), accept_once=accept_once,
        directory=DynamoDirectory(clients.dynamodb.Table(aws.records_table)),
        profiles=DynamoProfileStore(clients.dynamodb.Table(aws.records_table)),
        llm=default_llm(settings),
        describer=default_describer(settings),
        callbacks=StepFunctionsCallbacks(clients.stepfunctions),
        ocr_jobs=ocr_jobs, transcription_jobs=transcription_jobs,
        transcription_off="Amazon Transcribe is disabled for this deployment "
                          "(template parameter SpeechTranscription)",
        transient=is_transient, knowledge=DynamoKnowledgeStore(records_table),
        webhook_transport=HttpWebhookTransport(SsrfPolicy(settings.fetch_allow_hosts)),
        event_bus=EventBridgeBus(clients.events, aws.event_bus_name)
        if aws.event_bus_name and clients.events is not None else None)


def is_transient(error: BaseException) -> bool:
    """engram.aws.steps.is_transient, imported on the first error rather than at cold
    start (the step module brings the state machine's event models)."""
    from engram.aws.steps import is_transient as classify

    return classify(error)


@dataclass
class AwsRuntime:
    """What one cold start serves: the API's services and the pipeline's dependencies
    (the same objects underneath), plus the intake the queue consumers use."""

    settings: Settings
    clients: AwsClients
    ports: PortSet
    services: Services
    # the steps' dependencies, built on first use: an API request that runs no step (a
    # status, a search, an async add) imports none of the pipeline's modules
    make_pipeline: Callable[[], PipelineDeps]
    accept_once: PowertoolsAcceptOnce  # adds accepted once per idempotency key

    @property
    def pipeline(self) -> PipelineDeps:
        return self.make_pipeline()

    @cached_property
    def content_jobs(self) -> ContentJobs:
        """Textract and Transcribe jobs and the answers to the workflow's waits for them."""
        from engram.container import build_content_jobs

        return build_content_jobs(self.ports, self.settings)

    @cached_property
    def api(self) -> APIGatewayRestResolver:
        from engram.api.app import create_app  # only the API function pays for the routes

        return create_app(self.services)

    @cached_property
    def intake(self) -> IdempotentIntake:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        from engram.aws.intake import IdempotentIntake, Intake  # the queue consumers only

        def store() -> DynamoDBPersistenceLayer:
            return DynamoDBPersistenceLayer(table_name=self.settings.aws.idempotency_table,
                                            boto3_client=self.clients.dynamodb_client)

        plain = Intake(ingest=self.services.ingest, objects=self.ports.objects,
                       tasks=self.ports.tasks, bucket=self.settings.aws.bucket)
        return IdempotentIntake(plain, inbox_store=store(), queue_store=store(),
                                expires_after_seconds=self.settings.aws.idempotency_seconds,
                                accept_once=self.accept_once)


def build_api_key_service(settings: Settings, clients: AwsClients | None = None) -> ApiKeyService:
    """All the authorizer needs: one DynamoDB table."""
    from engram.adapters.dynamodb_tables import DynamoApiKeyStore
    from engram.services.keys import ApiKeyService

    clients = clients or AwsClients.from_settings(settings)
    return ApiKeyService(DynamoApiKeyStore(clients.dynamodb.Table(settings.aws.api_keys_table)))


def build_aws_runtime(settings: Settings, *, embedder: Embedder | None = None,
                      clients: AwsClients | None = None) -> AwsRuntime:
    from engram.adapters.idempotency import PowertoolsAcceptOnce
    from engram.adapters.sfn_workflow import StepFunctionsWorkflow
    from engram.container import build_pipeline, build_services, build_shared

    clients = clients or AwsClients.from_settings(settings)
    aws = settings.aws

    def idempotency_store() -> Any:  # Powertools' idempotency package: on the first add
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(table_name=aws.idempotency_table,
                                        boto3_client=clients.dynamodb_client)

    # The records share the intake's idempotency table: Powertools prefixes each key
    # with the function that made it.
    accept_once = PowertoolsAcceptOnce(idempotency_store,
                                       expires_after_seconds=aws.idempotency_seconds)
    ports = aws_ports(settings, clients, embedder or default_embedder(settings, clients),
                      accept_once)
    shared = build_shared(ports, settings)

    @cache
    def pipeline() -> PipelineDeps:
        return build_pipeline(ports, settings, shared)

    # async_mode (the default) starts the state machine; async_mode false runs the
    # same four steps inline in the API call.
    runner = StateMachineRunner(
        StepFunctionsWorkflow(clients.stepfunctions, aws.state_machine_arn), ports.tasks,
        pipeline, text_state_machine=StepFunctionsWorkflow(clients.stepfunctions,
                                                           aws.text_state_machine_arn)
        if aws.text_state_machine_arn else None)
    services = build_services(ports, settings, shared, runner)
    return AwsRuntime(settings=settings, clients=clients, ports=ports, services=services,
                      make_pipeline=pipeline, accept_once=accept_once)


def settings_from_environment() -> Settings:
    """This function's settings; the resources every function names must be set."""
    settings = Settings()
    missing = settings.aws.missing()
    if missing:
        raise ConfigurationError(f"not set in this function's environment: {', '.join(missing)}")
    return settings


_lock = threading.Lock()
_runtime: AwsRuntime | None = None
_keys: ApiKeyService | None = None


def aws_runtime() -> AwsRuntime:
    """This cold start's runtime, built from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_aws_runtime(settings_from_environment())
        return _runtime


def api_key_service() -> ApiKeyService:
    global _keys
    with _lock:
        if _keys is None:
            _keys = build_api_key_service(settings_from_environment())
        return _keys


def install(runtime: AwsRuntime | None) -> None:
    """Use this runtime instead of building one from the environment (tests: moto
    clients, a fake OpenSearch, a hashing embedder). None forgets it."""
    global _runtime, _keys
    with _lock:
        _runtime, _keys = runtime, runtime.services.keys if runtime else None
