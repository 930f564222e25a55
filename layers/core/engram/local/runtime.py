"""The embedded profile: SQLite, files, an exact in-process index, the local embedding
model and the rule-based extractor, wired into the same services the Lambdas use."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from engram.adapters.file_object_store import FileObjectStore
from engram.adapters.idempotency import FixedTimeLeft, PowertoolsAcceptOnce
from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.local_uploads import (
    LocalUploadReceiver,
    LocalUploadSigner,
    load_or_create_secret,
)
from engram.adapters.minilm_embedder import MiniLMEmbedder
from engram.adapters.onnx_embedder import OnnxMiniLMEmbedder, export_minilm_onnx
from engram.adapters.sqlite_store import SqliteIdempotencyLayer, SqliteStore
from engram.adapters.tesseract_ocr import TesseractOcr
from engram.adapters.url_fetcher import SafeFetcher
from engram.config import Settings
from engram.container import Services
from engram.local.workflow import InProcessWorkflow
from engram.models.domain import TaskRef
from engram.pipeline.content_jobs import forget_job
from engram.pipeline.content_reader import ContentReader
from engram.pipeline.steps import PipelineDeps, memory_writers
from engram.ports import Embedder, ImageDescriber, LanguageModel, Transcriber
from engram.services.attachments import AttachmentIntake
from engram.services.ingest import IngestService
from engram.services.keys import ApiKeyService
from engram.services.memories import MemoryService
from engram.services.search import SearchService
from engram.services.tasks import TaskService
from engram.services.uploads import UploadService
from engram.services.url_policy import SsrfPolicy

log = logging.getLogger(__name__)
KEY_FILE = "api_key"
# How long an add may be in the middle of being accepted before its idempotency claim is
# taken for dead (a sync add runs the whole pipeline, an LLM's included).
ACCEPT_DEADLINE_MS = 15 * 60 * 1000
DEFAULT_TENANT = "default"


@dataclass
class LocalRuntime:
    settings: Settings
    store: SqliteStore
    index: LocalMemoryIndex
    workflow: InProcessWorkflow
    services: Services
    new_api_key: str | None  # set when this start created the first key
    uploads: LocalUploadReceiver  # POST /uploads, the local stand-in for S3's POST

    def resume_unfinished(self) -> int:
        """Tasks a previous run accepted but did not finish are run again from parse."""
        tasks = self.store.unfinished()
        for task in tasks:
            self.workflow.start(TaskRef(tenant_id=task.tenant_id, task_id=task.task_id,
                                        user_id=task.user_id))
        return len(tasks)

    def close(self) -> None:
        self.workflow.shutdown()
        self.index.close()
        self.store.close()


def local_llm(settings: Settings) -> LanguageModel | None:
    """The chat model for extraction and conflict resolution (ENGRAM_LLM_MODEL), or None."""
    llm = settings.llm
    if not llm.enabled:
        return None
    from engram.adapters.openai_llm import OpenAIChatModel, llm_client

    client = llm_client(llm.base_url or None, llm.api_key.get_secret_value(),
                        timeout=llm.timeout_seconds, max_retries=llm.max_retries)
    return OpenAIChatModel(client, llm.model, json_mode=llm.json_mode)


def build_local_runtime(settings: Settings, embedder: Embedder | None = None) -> LocalRuntime:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(data_dir / "engram.db")
    objects = FileObjectStore(data_dir / "objects")
    index = LocalMemoryIndex(data_dir / "index.db")
    if embedder is None:
        embedder = local_embedder(settings)
        embedder.warm_up()  # load the model now, not on the first request
    limits = settings.limits
    content = ContentReader(
        ocr=TesseractOcr(), limits=limits, transcriber=local_transcriber(),
        fetcher=SafeFetcher(SsrfPolicy(settings.fetch_allow_hosts),
                            max_bytes=limits.max_media_bytes),
        describer=local_describer(settings))
    extractor, resolver = memory_writers(local_llm(settings))
    deps = PipelineDeps(objects=objects, tasks=store, memories=store, index=index,
                        embedder=embedder, extractor=extractor, resolver=resolver,
                        content=content)
    workflow = InProcessWorkflow(deps, settings.pipeline_workers)
    keys = ApiKeyService(store)
    secret = load_or_create_secret(data_dir)
    uploads = UploadService(signer=LocalUploadSigner(secret, settings.upload_url),
                            objects=objects, limits=limits)
    claims = SqliteIdempotencyLayer(store)
    claims.forget_in_progress()  # left by a process that stopped mid-accept
    once = PowertoolsAcceptOnce(lambda: claims)
    once.register_lambda_context(FixedTimeLeft(ACCEPT_DEADLINE_MS))
    ingest = IngestService(
        objects=objects, tasks=store, messages=store, memories=store, index=index,
        embedder=embedder, workflow=workflow, run_now=workflow.run, limits=limits,
        attachments=AttachmentIntake(uploads, limits, tuple(settings.fetch_allow_hosts)),
        once=once)
    search = SearchService(memories=store, index=index, embedder=embedder)

    def checkpoint() -> None:
        """After an erasure: no page from before it stays in either database's WAL."""
        store.checkpoint()
        index.checkpoint()

    memories = MemoryService(memories=store, messages=store, index=index, embedder=embedder,
                             objects=objects, tasks=store,
                             forget_content_job=partial(forget_job, objects),
                             hold_user=workflow.hold, after_erase=checkpoint)
    tasks = TaskService(store, workflow)
    services = Services(
        ingest=ingest, search=search, memories=memories, tasks=tasks, keys=keys,
        uploads=uploads,
    )
    new_key = ensure_api_keys(settings, keys, store.count(), data_dir)
    return LocalRuntime(settings=settings, store=store, index=index, workflow=workflow,
                        services=services, new_api_key=new_key,
                        uploads=LocalUploadReceiver(secret, objects, limits.max_media_bytes))


def local_transcriber() -> Transcriber | None:
    """PocketSphinx when installed (offline, its model ships in the wheel); otherwise audio
    items end with "capability unavailable" and the rest of the message is processed."""
    from engram.adapters.pocketsphinx_speech import (
        PocketSphinxTranscriber,
        offline_transcriber_available,
    )

    return PocketSphinxTranscriber() if offline_transcriber_available() else None


def local_describer(settings: Settings) -> ImageDescriber | None:
    """The vision model that describes images, when ENGRAM_VISION_MODEL names one."""
    if not settings.vision_model:
        return None
    from engram.adapters.openai_vision import OpenAIVisionDescriber, vision_client

    client = vision_client(settings.vision_base_url, settings.vision_api_key.get_secret_value(),
                           timeout=settings.vision_timeout_seconds)
    return OpenAIVisionDescriber(client, settings.vision_model)


def local_embedder(settings: Settings) -> OnnxMiniLMEmbedder | MiniLMEmbedder:
    if settings.embedder == "torch":
        return MiniLMEmbedder()
    int8 = settings.embedder == "onnx-int8"
    model = export_minilm_onnx(settings.model_dir, quantize=int8)  # a no-op once exported
    # All usable cores, one forward pass on each (see OnnxMiniLMEmbedder).
    return OnnxMiniLMEmbedder(model)


def ensure_api_keys(settings: Settings, keys: ApiKeyService, existing: int,
                    data_dir: Path) -> str | None:
    """Keys from ENGRAM_API_KEYS are registered; with none configured and none stored,
    the first start creates one and keeps it (mode 0600) in the data directory."""
    for key, tenant in settings.api_keys.items():
        keys.register(key, tenant, label="ENGRAM_API_KEYS")
    if settings.api_keys or existing:
        return None
    key = keys.create(DEFAULT_TENANT, label="first start")
    path = data_dir / KEY_FILE
    path.write_text(key + "\n")
    os.chmod(path, 0o600)
    return key


def stored_api_key(data_dir: Path) -> str | None:
    path = data_dir / KEY_FILE
    return path.read_text().strip() if path.is_file() else None
