"""The embedded profile: SQLite, files, an exact in-process index, the local embedding
model and the rule-based extractor, as the PortSet that container.py wires into the same
services the Lambdas use."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from engram.adapters.file_object_store import FileObjectStore
from engram.adapters.http_webhooks import HttpWebhookTransport
from engram.adapters.idempotency import FixedTimeLeft, PowertoolsAcceptOnce
from engram.adapters.local_index import LocalMemoryIndex
from engram.adapters.local_uploads import (
    LocalUploadReceiver,
    LocalUploadSigner,
    load_or_create_secret,
)
from engram.adapters.minilm_embedder import MiniLMEmbedder
from engram.adapters.onnx_embedder import OnnxMiniLMEmbedder, export_minilm_onnx
from engram.adapters.sqlite_directory import SqliteDirectory
from engram.adapters.sqlite_knowledge import SqliteKnowledgeStore
from engram.adapters.sqlite_profiles import SqliteProfileStore
from engram.adapters.sqlite_store import SqliteIdempotencyLayer, SqliteStore
from engram.adapters.tesseract_ocr import TesseractOcr
from engram.adapters.url_fetcher import SafeFetcher
from engram.config import Settings
from engram.container import PortSet, Services, build_pipeline, build_services, build_shared
from engram.local.workflow import InProcessWorkflow
from engram.models.domain import TaskRef
from engram.ports import Embedder, ImageDescriber, LanguageModel, Transcriber
from engram.services.keys import ApiKeyService
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
    secret = load_or_create_secret(data_dir)
    claims = SqliteIdempotencyLayer(store)
    claims.forget_in_progress()  # left by a process that stopped mid-accept
    once = PowertoolsAcceptOnce(lambda: claims)
    once.register_lambda_context(FixedTimeLeft(ACCEPT_DEADLINE_MS))

    def checkpoint() -> None:
        """After an erasure: no page from before it stays in either database's WAL."""
        store.checkpoint()
        index.checkpoint()

    ports = PortSet(
        objects=objects, tasks=store, messages=store, memories=store, api_keys=store,
        index=index, embedder=embedder,
        upload_signer=LocalUploadSigner(secret, settings.upload_url),
        fetcher=SafeFetcher(SsrfPolicy(settings.fetch_allow_hosts),
                            max_bytes=settings.limits.max_media_bytes),
        ocr=TesseractOcr(), accept_once=once, directory=SqliteDirectory(store),
        profiles=SqliteProfileStore(store),
        llm=local_llm(settings),
        transcriber=local_transcriber(), describer=local_describer(settings),
        after_erase=checkpoint, knowledge=SqliteKnowledgeStore(store),
        webhook_transport=HttpWebhookTransport(SsrfPolicy(settings.fetch_allow_hosts)))
    shared = build_shared(ports, settings)
    pipeline = build_pipeline(ports, settings, shared)
    workflow = InProcessWorkflow(pipeline, settings.pipeline_workers)
    services = build_services(ports, settings, shared, workflow)
    new_key = ensure_api_keys(settings, services.keys, store.count(), data_dir)
    return LocalRuntime(settings=settings, store=store, index=index, workflow=workflow,
                        services=services, new_api_key=new_key,
                        uploads=LocalUploadReceiver(secret, objects,
                                                    settings.limits.max_media_bytes))


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
    vision = settings.vision
    if not vision.enabled:
        return None
    from engram.adapters.openai_vision import OpenAIVisionDescriber, vision_client

    client = vision_client(vision.base_url, vision.api_key.get_secret_value(),
                           timeout=vision.timeout_seconds)
    return OpenAIVisionDescriber(client, vision.model)


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
