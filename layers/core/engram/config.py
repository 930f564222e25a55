"""Settings of both profiles (`engram serve` and the Lambdas), read once from the
environment and validated.

`Settings` reads ENGRAM_<FIELD> for its own fields and ENGRAM_<GROUP>__<FIELD> for its
groups (ENGRAM_LLM__MODEL, ENGRAM_AWS__OPENSEARCH__INDEX). The names template.yaml and
the README use (ENGRAM_LLM_MODEL, ENGRAM_TASKS_TABLE, AWS_REGION, …) are mapped onto those
fields in one table, ENVIRONMENT_NAMES. An empty variable counts as unset (the template
passes "" for a parameter left empty).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class Limits(BaseModel):
    """Request limits (MemOS cloud's published ones where it has them)."""

    max_body_bytes: int = 10 * 1024 * 1024  # API Gateway's payload limit
    max_messages: int = 500
    max_message_chars: int = 100_000
    max_query_chars: int = 4_000
    max_memory_limit: int = 25
    max_page_size: int = 50
    # Multimodal content (the MemOS and EverOS multimodal docs): per-file sizes by kind,
    # pages per document, files per request, non-text items per EverOS message.
    max_image_bytes: int = 10 * 1024 * 1024
    max_document_bytes: int = 100 * 1024 * 1024
    max_media_bytes: int = 500 * 1024 * 1024  # audio and video
    max_pages: int = 200
    max_files_per_request: int = 20
    max_items_per_message: int = 10
    # EverOS routes (/api/v1/...): file content goes to the object store, not the body.
    max_everos_body_bytes: int = 300 * 1024
    upload_expiry_seconds: int = 15 * 60  # how long a signed upload form stays valid


# Settings hold API keys (ENGRAM_API_KEYS, the LLM's and the vision model's): a validation
# error names the field and the rule, never the value given.
SECRET_INPUT = ConfigDict(hide_input_in_errors=True)


class LlmSettings(BaseModel):
    """ENGRAM_LLM_*: the chat model used for extraction and conflict resolution, on an
    OpenAI-compatible endpoint; unset, the rule-based path does both."""

    model_config = SECRET_INPUT  # a refused value is not echoed: it may hold the key

    model: str = ""  # "": no LLM, rule-based extraction and conflict resolution
    base_url: str = ""  # "": OpenAI's API
    # Locally; on AWS the key is the provider secret's (Secrets Manager), never a variable.
    api_key: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=60.0, gt=0, le=900)  # per attempt
    max_retries: int = Field(default=3, ge=0, le=10)  # on 429/5xx/timeouts, with backoff
    # "json_object" for servers that do not take a JSON schema as response_format
    json_mode: Literal["json_schema", "json_object"] = "json_schema"

    @property
    def enabled(self) -> bool:
        return bool(self.model)

    @model_validator(mode="after")
    def _needs_a_model(self) -> LlmSettings:
        if self.base_url and not self.model:
            raise ValueError("ENGRAM_LLM_BASE_URL is set but ENGRAM_LLM_MODEL is not")
        return self


class VisionSettings(BaseModel):
    """ENGRAM_VISION_*: a vision-capable model on an OpenAI-compatible endpoint that
    describes images (OCR reads their text either way). Off unless a model is named."""

    model_config = SECRET_INPUT

    model: str = ""  # "": images are read by OCR alone
    base_url: str = ""  # "": OpenAI's API
    api_key: SecretStr = SecretStr("")  # locally; on AWS the provider secret's
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    @property
    def enabled(self) -> bool:
        return bool(self.model)

    @model_validator(mode="after")
    def _needs_a_model(self) -> VisionSettings:
        if self.base_url and not self.model:
            raise ValueError("ENGRAM_VISION_BASE_URL is set but ENGRAM_VISION_MODEL is not")
        return self


class HttpSettings(BaseModel):
    """`engram serve`'s HTTP server: requests handled at once (more wait their turn), and
    seconds without a byte moving before a connection (a stalled body, an idle
    keep-alive) is closed."""

    threads: int = Field(default=8, ge=1, le=256)
    timeout_seconds: int = Field(default=30, ge=1, le=3600)


class OpenSearchSettings(BaseModel):
    endpoint: str = ""  # https://… of the Serverless collection or the managed domain
    service: Literal["aoss", "es"] = "aoss"  # the SigV4 service name
    index: str = "engram-memories"
    # Serverless (classic) vector collections refuse custom document ids; domains take
    # them. None: decided by the service.
    custom_ids: bool | None = None
    # "innerproduct" for domains older than OpenSearch 2.19 (no Faiss cosinesimil there).
    space_type: Literal["cosinesimil", "innerproduct"] = "cosinesimil"
    # A Serverless NextGen collection scaled to zero takes 10-30 s to answer again: a
    # request waits this long (below API Gateway's 29 s), then the API answers 503 with
    # Retry-After and a pipeline step leaves the wait to the state machine.
    wake_wait_seconds: float = Field(default=20, ge=0, le=25)

    @property
    def use_custom_ids(self) -> bool:
        return self.service == "es" if self.custom_ids is None else self.custom_ids


ONNX_DIMENSION = 384  # all-MiniLM-L6-v2


class EmbeddingSettings(BaseModel):
    """The AWS profile's embedding model. "onnx" is `engram serve`'s: the int8
    all-MiniLM-L6-v2 export, shipped in the core layer (/opt/minilm-onnx)."""

    provider: Literal["onnx", "bedrock", "openai"] = "bedrock"
    model_id: str = "amazon.titan-embed-text-v2:0"  # bedrock and openai
    # Fixed at index creation: changing model or dimension means a new index.
    dimension: int = Field(default=1024, gt=0, le=16_000)
    base_url: str = ""  # OpenAI-compatible endpoint (provider "openai")
    model_dir: Path = Path("/opt/minilm-onnx")  # provider "onnx": model-int8.onnx here

    @model_validator(mode="after")
    def _openai_needs_an_endpoint(self) -> EmbeddingSettings:
        if self.provider == "openai" and not self.base_url:
            raise ValueError("ENGRAM_EMBEDDING_BASE_URL is required with provider 'openai'")
        if self.provider == "onnx":
            if "dimension" not in self.model_fields_set:
                self.dimension = ONNX_DIMENSION
            elif self.dimension != ONNX_DIMENSION:
                raise ValueError(f"ENGRAM_EMBEDDING_DIMENSION must be {ONNX_DIMENSION} with "
                                 f"provider 'onnx' (all-MiniLM-L6-v2), not {self.dimension}")
        return self


class WebhookSettings(BaseModel):
    """How webhook deliveries are retried (services/webhooks.py)."""

    attempts: int = Field(default=6, ge=1, le=20)  # then the delivery is recorded as failed
    backoff_seconds: float = Field(default=5.0, ge=0, le=300)  # doubled after each attempt
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    workers: int = Field(default=4, ge=1, le=64)


class AwsSettings(BaseModel):
    """The AWS profile's resources (template.yaml sets every one in each function's
    environment); `missing()` names those a Lambda cannot start without."""

    region: str = ""
    tasks_table: str = ""
    api_keys_table: str = ""
    records_table: str = ""
    idempotency_table: str = ""
    bucket: str = ""
    # Only the functions that start executions (API, ingest queue, upload received) get
    # it: giving it to the step functions would make the template circular.
    state_machine_arn: str = ""
    # The Express workflow for text-only adds (no files to wait for); "": every add runs
    # on the Standard one above.
    text_state_machine_arn: str = ""
    opensearch: OpenSearchSettings = Field(default_factory=OpenSearchSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    # Secrets Manager secret holding the API key of the OpenAI-compatible endpoint(s).
    provider_secret_arn: str = ""
    # How long a business key (bucket+key+sequencer, queued job) is remembered.
    idempotency_seconds: int = Field(default=24 * 3600, gt=0)
    # Scanned PDFs: one asynchronous Textract job each, announced on this SNS topic
    # (published by Textract assuming the role). Unset: scanned pages are OCRed page by
    # page with the synchronous call, inside the parse step.
    ocr_topic_arn: str = ""
    ocr_role_arn: str = ""
    # Audio and video: Amazon Transcribe jobs, or "capability unavailable" when disabled.
    transcription: Literal["enabled", "disabled"] = "disabled"
    transcribe_language: str = ""  # e.g. en-US; "": Transcribe identifies the language
    # Prefix of Transcribe job names (unique per account and Region: the stack's name);
    # the EventBridge rule matches it.
    job_prefix: str = Field(default="engram", pattern=r"^[0-9A-Za-z._-]{1,60}$")
    # The EventBridge bus Engram's events go to (template.yaml EventBus); "": none.
    event_bus_name: str = ""

    @property
    def async_ocr(self) -> bool:
        return bool(self.ocr_topic_arn and self.ocr_role_arn)

    def missing(self) -> list[str]:
        """The variables of the resources every function needs that are not set."""
        needed = ("region", "tasks_table", "api_keys_table", "records_table",
                  "idempotency_table", "bucket")
        return [variable_of("aws", field) for field in needed if not getattr(self, field)]


class Settings(BaseSettings):
    """Everything either profile reads from its environment; each reads what it uses."""

    model_config = SettingsConfigDict(env_prefix="ENGRAM_", env_nested_delimiter="__",
                                      env_ignore_empty=True, hide_input_in_errors=True)

    data_dir: Path = Path(".engram")
    host: str = "127.0.0.1"
    port: int = 8000
    # "key:tenant,key2:tenant2": keys given here are used instead of the generated one.
    api_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    pipeline_workers: int = 2
    http: HttpSettings = Field(default_factory=HttpSettings)
    # all-MiniLM-L6-v2 run three ways: int8 ONNX (default: 2.5× the throughput of torch,
    # same LoCoMo recall), fp32 ONNX (the torch vectors exactly), or sentence-transformers.
    embedder: Literal["onnx-int8", "onnx", "torch"] = "onnx-int8"
    # Where the ONNX export lives; made from the packaged weights on first use.
    model_dir: Path = Path(sys.prefix) / "share" / "engram" / "minilm-onnx"
    limits: Limits = Field(default_factory=Limits)
    # Hosts (name or address, optionally :port) that server-side URL fetches may reach even
    # though they resolve to a private, loopback or link-local address. Off by default.
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The URL clients reach this server at, for the upload forms `object/sign` returns
    # (default http://<host>:<port>; set it when serving behind a proxy or on 0.0.0.0).
    public_url: str | None = None
    # The MCP tools' user when a call names none (`/mcp` on `engram serve`; a client's
    # X-Engram-User-Id header comes first). `engram mcp` reads ENGRAM_MCP_USER_ID too.
    mcp_user_id: str = Field(default="default", min_length=1, max_length=256)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)  # the Lambdas' resources

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_api_keys(value)
        return value

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then the nested spelling, then the table; no .env file.
        return init_settings, env_settings, EnvironmentNames(settings_cls)

    @property
    def upload_url(self) -> str:
        """Where the local upload endpoint is reached (the `url` of a signed form)."""
        if self.public_url:
            return self.public_url.rstrip("/") + "/uploads"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/uploads"


# The variables template.yaml, samconfig.toml and the README name, and the field each
# sets where that is not the nested spelling (ENGRAM_LLM_MODEL, not ENGRAM_LLM__MODEL).
ENVIRONMENT_NAMES: dict[str, tuple[str, ...]] = {
    "ENGRAM_HTTP_THREADS": ("http", "threads"),
    "ENGRAM_HTTP_TIMEOUT_SECONDS": ("http", "timeout_seconds"),
    "ENGRAM_LLM_MODEL": ("llm", "model"),
    "ENGRAM_LLM_BASE_URL": ("llm", "base_url"),
    "ENGRAM_LLM_API_KEY": ("llm", "api_key"),
    "ENGRAM_LLM_TIMEOUT_SECONDS": ("llm", "timeout_seconds"),
    "ENGRAM_LLM_MAX_RETRIES": ("llm", "max_retries"),
    "ENGRAM_LLM_JSON_MODE": ("llm", "json_mode"),
    "ENGRAM_VISION_MODEL": ("vision", "model"),
    "ENGRAM_VISION_BASE_URL": ("vision", "base_url"),
    "ENGRAM_VISION_API_KEY": ("vision", "api_key"),
    "ENGRAM_VISION_TIMEOUT_SECONDS": ("vision", "timeout_seconds"),
    "AWS_REGION": ("aws", "region"),  # set by Lambda itself
    "ENGRAM_TASKS_TABLE": ("aws", "tasks_table"),
    "ENGRAM_API_KEYS_TABLE": ("aws", "api_keys_table"),
    "ENGRAM_RECORDS_TABLE": ("aws", "records_table"),
    "ENGRAM_IDEMPOTENCY_TABLE": ("aws", "idempotency_table"),
    "ENGRAM_BUCKET": ("aws", "bucket"),
    "ENGRAM_EVENT_BUS_NAME": ("aws", "event_bus_name"),
    "ENGRAM_STATE_MACHINE_ARN": ("aws", "state_machine_arn"),
    "ENGRAM_TEXT_STATE_MACHINE_ARN": ("aws", "text_state_machine_arn"),
    "ENGRAM_PROVIDER_SECRET_ARN": ("aws", "provider_secret_arn"),
    "ENGRAM_IDEMPOTENCY_SECONDS": ("aws", "idempotency_seconds"),
    "ENGRAM_OCR_TOPIC_ARN": ("aws", "ocr_topic_arn"),
    "ENGRAM_OCR_ROLE_ARN": ("aws", "ocr_role_arn"),
    "ENGRAM_TRANSCRIPTION": ("aws", "transcription"),
    "ENGRAM_TRANSCRIBE_LANGUAGE": ("aws", "transcribe_language"),
    "ENGRAM_JOB_PREFIX": ("aws", "job_prefix"),
    "ENGRAM_OPENSEARCH_ENDPOINT": ("aws", "opensearch", "endpoint"),
    "ENGRAM_OPENSEARCH_SERVICE": ("aws", "opensearch", "service"),
    "ENGRAM_OPENSEARCH_INDEX": ("aws", "opensearch", "index"),
    "ENGRAM_OPENSEARCH_CUSTOM_IDS": ("aws", "opensearch", "custom_ids"),
    "ENGRAM_OPENSEARCH_SPACE_TYPE": ("aws", "opensearch", "space_type"),
    "ENGRAM_OPENSEARCH_WAKE_WAIT_SECONDS": ("aws", "opensearch", "wake_wait_seconds"),
    "ENGRAM_EMBEDDING_PROVIDER": ("aws", "embedding", "provider"),
    "ENGRAM_EMBEDDING_MODEL": ("aws", "embedding", "model_id"),
    "ENGRAM_EMBEDDING_DIMENSION": ("aws", "embedding", "dimension"),
    "ENGRAM_EMBEDDING_BASE_URL": ("aws", "embedding", "base_url"),
    "ENGRAM_EMBEDDING_MODEL_DIR": ("aws", "embedding", "model_dir"),
}


def variable_of(*path: str) -> str:
    """The variable that sets a field, for messages: variable_of("aws", "bucket")."""
    named = [name for name, fields in ENVIRONMENT_NAMES.items() if fields == path]
    return named[0] if named else "ENGRAM_" + "__".join(path).upper()


class EnvironmentNames(PydanticBaseSettingsSource):
    """The variables of ENVIRONMENT_NAMES, as the (nested) fields they set."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the table

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, (*groups, field) in ENVIRONMENT_NAMES.items():
            value = os.environ.get(name)
            if not value:
                continue
            target = values
            for group in groups:
                target = target.setdefault(group, {})
            target[field] = value
        return values


def parse_api_keys(raw: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, tenant = entry.partition(":")
        if not sep or not key.strip() or not tenant.strip():
            raise ValueError("ENGRAM_API_KEYS entries must look like key:tenant")
        keys[key.strip()] = tenant.strip()
    return keys


def comma_list(value: object) -> object:
    """'a, b,,c' → ['a', 'b', 'c'] (a setting given as one environment variable)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value
