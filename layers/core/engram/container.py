"""The one place the service graph is wired. A profile (local/runtime.py, aws/runtime.py)
builds its adapters as a PortSet and a runner of tasks; `build_shared`, `build_pipeline`
and `build_services` make the same pipeline and services from either set:

    shared = build_shared(ports, settings)
    pipeline = build_pipeline(ports, settings, shared)
    services = build_services(ports, settings, shared, runner_over(pipeline))

The services do not need the pipeline itself, so a profile may build it on first use:
the pipeline's modules (parsing, extraction, dedupe) are imported by this module's
functions, not by this module, and an API request that runs no step (a status, a search,
an async add) loads none of them (tests/unit/test_coldstart.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from engram.config import Settings
from engram.models.domain import Task, TaskRef
from engram.ports import (
    AcceptOnce,
    ApiKeyStore,
    ChatModel,
    ConflictResolver,
    DirectoryStore,
    Embedder,
    EventBus,
    Extractor,
    ImageDescriber,
    KnowledgeStore,
    LanguageModel,
    MemoryIndex,
    MemoryStore,
    MessageStore,
    ObjectStore,
    Ocr,
    OcrJobs,
    ProfileStore,
    TaskCallbacks,
    TaskStore,
    Transcriber,
    TranscriptionJobs,
    UploadSigner,
    UrlFetcher,
    WebhookTransport,
)
from engram.services.attachments import AttachmentIntake
from engram.services.chat import ChatService
from engram.services.directory import DirectoryService
from engram.services.exports import ExportService
from engram.services.extract_preview import ExtractionPreview
from engram.services.ingest import IngestService
from engram.services.keys import ApiKeyService
from engram.services.knowledge import KnowledgeService
from engram.services.memories import MemoryService
from engram.services.profiles import ProfileService
from engram.services.rerank import RerankService
from engram.services.search import SearchService
from engram.services.tasks import TaskService
from engram.services.uploads import UploadService
from engram.services.url_policy import SsrfPolicy
from engram.services.webhooks import DeliverySettings, WebhookService

if TYPE_CHECKING:
    from engram.pipeline.content_jobs import ContentJobs
    from engram.pipeline.steps import PipelineDeps


def _nothing() -> None:
    return None


def _never(_: BaseException) -> bool:
    return False


@dataclass
class PortSet:
    """Every adapter a profile provides."""

    objects: ObjectStore
    tasks: TaskStore
    messages: MessageStore
    memories: MemoryStore
    api_keys: ApiKeyStore
    index: MemoryIndex
    embedder: Embedder
    upload_signer: UploadSigner
    fetcher: UrlFetcher
    ocr: Ocr
    accept_once: AcceptOnce  # adds accepted once per idempotency key
    directory: DirectoryStore  # EverOS groups, senders, settings, conversation owners
    profiles: ProfileStore  # profile templates and instances (MemOS profiles)
    llm: LanguageModel | None = None  # None: rule-based extraction and conflict resolution
    transcriber: Transcriber | None = None  # None: audio and video are not read here
    describer: ImageDescriber | None = None  # None: images are read by OCR alone
    # Where a workflow waits for asynchronous content jobs (AWS: Step Functions task
    # tokens), and those jobs: a scanned PDF → one OCR job, audio/video → one
    # transcription job each. None: every item is read in the parse step.
    callbacks: TaskCallbacks | None = None
    ocr_jobs: OcrJobs | None = None
    transcription_jobs: TranscriptionJobs | None = None
    # Why audio and video cannot be read where the workflow waits for jobs but has no
    # transcription ("": say nothing more, as locally without a transcriber).
    transcription_off: str = ""
    # Errors the workflow retries rather than report as an item's failure (AWS throttling).
    transient: Callable[[BaseException], bool] = _never
    after_erase: Callable[[], None] = _nothing  # locally: SQLite WAL checkpoints
    knowledge: KnowledgeStore | None = None  # MemOS knowledge bases (None: not served)
    # Signed webhook deliveries (None: webhooks cannot be registered) and the event bus
    # events also go to (AWS: EventBridge; None: webhooks only).
    webhook_transport: WebhookTransport | None = None
    event_bus: EventBus | None = None


class TaskRunner(Protocol):
    """Runs the pipeline of accepted tasks (in-process, or Step Functions)."""

    def start(self, ref: TaskRef, attempt: int = 1) -> None:
        """Run it later (`attempt` > 1: again, after it failed)."""
        ...

    def run(self, ref: TaskRef) -> Task:
        """Run it now, to the end (a sync add)."""
        ...

    def hold(self, tenant_id: str, user_id: str) -> AbstractContextManager[object]:
        """Held while a user is erased: no task of theirs runs meanwhile."""
        ...


@dataclass
class Services:
    """The services one API instance serves."""

    ingest: IngestService
    search: SearchService
    memories: MemoryService
    tasks: TaskService
    keys: ApiKeyService
    uploads: UploadService  # object/sign, and the object keys adds name
    directory: DirectoryService  # EverOS groups, senders, settings
    profiles: ProfileService  # MemOS profile templates and instances
    extraction: ExtractionPreview  # extract/memory: the pipeline's extractor, nothing stored
    rerank: RerankService
    chat: ChatService  # answers with the LLM when it can chat (else a 400 naming the setting)
    knowledge: KnowledgeService | None = None  # MemOS knowledge bases
    exports: ExportService | None = None  # export/memory and import/memory (set by build)
    webhooks: WebhookService | None = None  # webhook registrations and events out


@dataclass
class Shared:
    """Made once per process, before the pipeline (which may be built on first use): the
    extractor, which extract/memory previews with too, its conflict resolver, and the
    webhook deliveries the pipeline and the memory routes publish to (one pool)."""

    extractor: Extractor
    resolver: ConflictResolver | None
    webhooks: WebhookService | None


class RulesOnFirstUse:
    """The rule-based extractor, made on its first use: its word lists and patterns cost
    ~0.07 s to load, which a cold start that does not extract (an API search, an async
    add) should not pay."""

    def __init__(self) -> None:
        self._rules: Extractor | None = None

    def __getattr__(self, name: str) -> Any:
        if self._rules is None:
            from engram.extraction.rules.extractor import RuleBasedExtractor

            self._rules = RuleBasedExtractor()
        return getattr(self._rules, name)


def memory_writers(llm: LanguageModel | None) -> tuple[Extractor, ConflictResolver | None]:
    """The extractor and conflict resolver for a deployment: the LLM's when one is
    configured (each falls back to the rules for a batch it cannot answer validly), else
    the rule-based ones."""
    if llm is None:
        return RulesOnFirstUse(), None
    from engram.extraction.llm import LlmExtractor
    from engram.extraction.resolution import LlmConflictResolver
    from engram.extraction.rules.extractor import RuleBasedExtractor

    return LlmExtractor(llm, fallback=RuleBasedExtractor()), LlmConflictResolver(llm)


def build_shared(ports: PortSet, settings: Settings) -> Shared:
    extractor, resolver = memory_writers(ports.llm)
    return Shared(extractor=extractor, resolver=resolver,
                  webhooks=build_webhooks(ports, settings))


def build_pipeline(ports: PortSet, settings: Settings, shared: Shared) -> PipelineDeps:
    """What the parse, extract, dedupe and index steps run on."""
    from engram.pipeline.content_reader import AsyncEngines, ContentReader
    from engram.pipeline.steps import PipelineDeps

    jobs = None
    if ports.callbacks is not None:
        jobs = AsyncEngines(ocr=ports.ocr_jobs is not None,
                            transcription=ports.transcription_jobs is not None,
                            transcription_off=ports.transcription_off)
    content = ContentReader(ocr=ports.ocr, fetcher=ports.fetcher,
                            limits=settings.limits, transcriber=ports.transcriber,
                            jobs=jobs, describer=ports.describer)
    profiles = ProfileService(store=ports.profiles, memories=ports.memories, llm=ports.llm)
    return PipelineDeps(objects=ports.objects, tasks=ports.tasks, memories=ports.memories,
                        index=ports.index, embedder=ports.embedder,
                        extractor=shared.extractor, resolver=shared.resolver,
                        content=content, transient=ports.transient,
                        fill_profiles=profiles.fill_from_llm if ports.llm else None,
                        events=shared.webhooks)


def build_webhooks(ports: PortSet, settings: Settings) -> WebhookService | None:
    """Webhook registrations and the events the pipeline and the memory routes publish."""
    if ports.webhook_transport is None:
        return None
    hooks = settings.webhooks
    return WebhookService(
        store=ports.directory, policy=SsrfPolicy(settings.fetch_allow_hosts),
        transport=ports.webhook_transport, memories=ports.memories, bus=ports.event_bus,
        settings=DeliverySettings(attempts=hooks.attempts,
                                  backoff_seconds=hooks.backoff_seconds,
                                  timeout_seconds=hooks.timeout_seconds,
                                  workers=hooks.workers))


def forget_content_job(objects: ObjectStore, tenant_id: str, task_id: str, message_id: str,
                       index: int) -> list[str]:
    """pipeline/content_jobs.py's forget_job, imported by the erasure that needs it."""
    from engram.pipeline.content_jobs import forget_job

    return forget_job(objects, tenant_id, task_id, message_id, index)


def build_services(ports: PortSet, settings: Settings, shared: Shared,
                   runner: TaskRunner) -> Services:
    """The API's services, over the same adapters as the pipeline; `runner` runs the
    tasks they accept."""
    limits = settings.limits
    uploads = UploadService(signer=ports.upload_signer, objects=ports.objects, limits=limits)
    ingest = IngestService(
        objects=ports.objects, tasks=ports.tasks, messages=ports.messages,
        memories=ports.memories, index=ports.index, embedder=ports.embedder,
        workflow=runner, run_now=runner.run, limits=limits,
        attachments=AttachmentIntake(uploads, limits, tuple(settings.fetch_allow_hosts)),
        once=ports.accept_once)
    search = SearchService(memories=ports.memories, index=ports.index, embedder=ports.embedder)
    directory = DirectoryService(ports.directory)
    profiles = ProfileService(store=ports.profiles, memories=ports.memories, llm=ports.llm)
    exports = ExportService(memories=ports.memories, index=ports.index,
                            embedder=ports.embedder, jobs=ports.directory)

    def forget_owner(tenant_id: str, user_id: str) -> None:
        directory.forget_owner(tenant_id, user_id)
        exports.forget_user(tenant_id, user_id)  # mem0 export requests naming the user

    memories = MemoryService(
        memories=ports.memories, messages=ports.messages, index=ports.index,
        embedder=ports.embedder, objects=ports.objects, tasks=ports.tasks,
        hold_user=runner.hold, after_erase=ports.after_erase,
        forget_content_job=partial(forget_content_job, ports.objects),
        forget_owner=forget_owner, erase_profiles=profiles.erase_user)
    webhooks = shared.webhooks  # the pipeline's own: one delivery pool per process
    if webhooks is not None:
        memories.on_change = webhooks.memory_changed
    tasks = TaskService(ports.tasks, runner)
    knowledge = None
    if ports.knowledge is not None:
        # what the parse step reads with, without asynchronous jobs: a file is read while
        # its request waits
        knowledge = KnowledgeService(
            store=ports.knowledge, objects=ports.objects, memories=ports.memories,
            index=ports.index, embedder=ports.embedder,
            ocr=ports.ocr, fetcher=ports.fetcher, limits=limits,
            url_policy=SsrfPolicy(settings.fetch_allow_hosts), after_erase=ports.after_erase)
    chat_model = ports.llm if isinstance(ports.llm, ChatModel) else None
    return Services(
        ingest=ingest, search=search, memories=memories, tasks=tasks,
        keys=ApiKeyService(ports.api_keys), uploads=uploads,
        directory=directory, profiles=profiles,
        extraction=ExtractionPreview(shared.extractor),
        rerank=RerankService(ports.embedder), chat=ChatService(chat_model, ingest),
        knowledge=knowledge, exports=exports,
        webhooks=webhooks)


def build_content_jobs(ports: PortSet, settings: Settings) -> ContentJobs:
    """The content jobs a workflow waits for, and the answers to its waits (AWS)."""
    from engram.pipeline.content_jobs import ContentJobs

    if ports.callbacks is None:
        raise ValueError("this profile has no workflow that waits for content jobs")
    return ContentJobs(objects=ports.objects, callbacks=ports.callbacks, ocr=ports.ocr_jobs,
                       transcription=ports.transcription_jobs,
                       job_prefix=settings.aws.job_prefix)
