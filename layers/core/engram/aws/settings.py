"""Settings of the AWS profile, read once per cold start from the Lambda environment
(template.yaml sets every ENGRAM_* variable below) and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from engram.config import Limits, LlmSettings, comma_list


class OpenSearchSettings(BaseModel):
    endpoint: str = ""  # https://… of the Serverless collection or the managed domain
    service: Literal["aoss", "es"] = "aoss"  # the SigV4 service name
    index: str = "engram-memories"
    # Serverless (classic) vector collections refuse custom document ids; domains take
    # them. None: decided by the service.
    custom_ids: bool | None = None
    # "innerproduct" for domains older than OpenSearch 2.19 (no Faiss cosinesimil there).
    space_type: Literal["cosinesimil", "innerproduct"] = "cosinesimil"

    @property
    def use_custom_ids(self) -> bool:
        return self.service == "es" if self.custom_ids is None else self.custom_ids


class EmbeddingSettings(BaseModel):
    provider: Literal["bedrock", "openai"] = "bedrock"
    model_id: str = "amazon.titan-embed-text-v2:0"
    # Fixed at index creation: changing model or dimension means a new index.
    dimension: int = Field(default=1024, gt=0, le=16_000)
    base_url: str = ""  # OpenAI-compatible endpoint (provider "openai")


class VisionSettings(BaseModel):
    """A vision-capable model on an OpenAI-compatible endpoint that describes images
    (Textract reads their text either way); its key is the provider secret's."""

    model_id: str = ""  # "": images are read by OCR alone
    base_url: str = ""  # "": OpenAI's API
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    @property
    def enabled(self) -> bool:
        return bool(self.model_id)


class AwsSettings(BaseModel):
    region: str
    tasks_table: str
    api_keys_table: str
    records_table: str
    idempotency_table: str
    bucket: str
    # Only the functions that start executions (API, ingest queue, upload received) get
    # it: giving it to the step functions would make the template circular.
    state_machine_arn: str = ""
    opensearch: OpenSearchSettings = Field(default_factory=OpenSearchSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    # Secrets Manager secret holding the API key of the OpenAI-compatible endpoint(s).
    provider_secret_arn: str = ""
    # How long a business key (bucket+key+sequencer, queued job) is remembered.
    idempotency_seconds: int = Field(default=24 * 3600, gt=0)
    limits: Limits = Field(default_factory=Limits)
    # Hosts URL fetches may reach although private (comma-separated host or host:port).
    fetch_allow_hosts: list[str] = Field(default_factory=list)
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

    @property
    def async_ocr(self) -> bool:
        return bool(self.ocr_topic_arn and self.ocr_role_arn)

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _parse_hosts(cls, value: object) -> object:
        return comma_list(value)

    @model_validator(mode="after")
    def _provider_needs(self) -> AwsSettings:
        if self.embedding.provider == "openai" and not self.embedding.base_url:
            raise ValueError("ENGRAM_EMBEDDING_BASE_URL is required with provider 'openai'")
        if self.vision.base_url and not self.vision.model_id:
            raise ValueError("ENGRAM_VISION_BASE_URL is set but ENGRAM_VISION_MODEL is not")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AwsSettings:
        env = os.environ if environ is None else environ

        def pick(**names: str) -> dict[str, str]:
            return {field: env[name] for field, name in names.items() if env.get(name)}

        return cls(
            **pick(region="AWS_REGION", tasks_table="ENGRAM_TASKS_TABLE",
                   api_keys_table="ENGRAM_API_KEYS_TABLE",
                   records_table="ENGRAM_RECORDS_TABLE",
                   idempotency_table="ENGRAM_IDEMPOTENCY_TABLE", bucket="ENGRAM_BUCKET",
                   state_machine_arn="ENGRAM_STATE_MACHINE_ARN",
                   provider_secret_arn="ENGRAM_PROVIDER_SECRET_ARN",
                   idempotency_seconds="ENGRAM_IDEMPOTENCY_SECONDS",
                   fetch_allow_hosts="ENGRAM_FETCH_ALLOW_HOSTS",
                   ocr_topic_arn="ENGRAM_OCR_TOPIC_ARN", ocr_role_arn="ENGRAM_OCR_ROLE_ARN",
                   transcription="ENGRAM_TRANSCRIPTION",
                   transcribe_language="ENGRAM_TRANSCRIBE_LANGUAGE",
                   job_prefix="ENGRAM_JOB_PREFIX"),
            opensearch=OpenSearchSettings(**pick(
                endpoint="ENGRAM_OPENSEARCH_ENDPOINT", service="ENGRAM_OPENSEARCH_SERVICE",
                index="ENGRAM_OPENSEARCH_INDEX", custom_ids="ENGRAM_OPENSEARCH_CUSTOM_IDS",
                space_type="ENGRAM_OPENSEARCH_SPACE_TYPE")),
            embedding=EmbeddingSettings(**pick(
                provider="ENGRAM_EMBEDDING_PROVIDER", model_id="ENGRAM_EMBEDDING_MODEL",
                dimension="ENGRAM_EMBEDDING_DIMENSION", base_url="ENGRAM_EMBEDDING_BASE_URL")),
            # The key is the provider secret's (Secrets Manager), never an env variable.
            llm=LlmSettings(**pick(model="ENGRAM_LLM_MODEL", base_url="ENGRAM_LLM_BASE_URL",
                                   timeout_seconds="ENGRAM_LLM_TIMEOUT_SECONDS",
                                   max_retries="ENGRAM_LLM_MAX_RETRIES",
                                   json_mode="ENGRAM_LLM_JSON_MODE")),
            vision=VisionSettings(**pick(model_id="ENGRAM_VISION_MODEL",
                                         base_url="ENGRAM_VISION_BASE_URL",
                                         timeout_seconds="ENGRAM_VISION_TIMEOUT_SECONDS")),
        )
