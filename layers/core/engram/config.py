"""Settings, read once from the environment (ENGRAM_*) and validated."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator


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


class LlmSettings(BaseModel):
    """ENGRAM_LLM_*: the chat model used for extraction and conflict resolution."""

    model: str = ""  # "": no LLM, rule-based extraction and conflict resolution
    base_url: str = ""  # "": OpenAI's API
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LlmSettings:
        names = {"model": "ENGRAM_LLM_MODEL", "base_url": "ENGRAM_LLM_BASE_URL",
                 "api_key": "ENGRAM_LLM_API_KEY", "timeout_seconds": "ENGRAM_LLM_TIMEOUT_SECONDS",
                 "max_retries": "ENGRAM_LLM_MAX_RETRIES", "json_mode": "ENGRAM_LLM_JSON_MODE"}
        return cls(**{field: environ[name] for field, name in names.items()
                      if environ.get(name)})


class Settings(BaseModel):
    data_dir: Path = Path(".engram")
    host: str = "127.0.0.1"
    port: int = 8000
    # "key:tenant,key2:tenant2": keys given here are used instead of the generated one.
    api_keys: dict[str, str] = Field(default_factory=dict)
    pipeline_workers: int = 2
    # `engram serve`'s HTTP server: requests handled at once (more wait their turn), and
    # seconds without a byte moving before a connection (a stalled body, an idle
    # keep-alive) is closed.
    http_threads: int = Field(default=8, ge=1, le=256)
    http_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    # all-MiniLM-L6-v2 run three ways: int8 ONNX (default: 2.5× the throughput of torch,
    # same LoCoMo recall), fp32 ONNX (the torch vectors exactly), or sentence-transformers.
    embedder: Literal["onnx-int8", "onnx", "torch"] = "onnx-int8"
    # Where the ONNX export lives; made from the packaged weights on first use.
    model_dir: Path = Path(sys.prefix) / "share" / "engram" / "minilm-onnx"
    limits: Limits = Field(default_factory=Limits)
    # Hosts (name or address, optionally :port) that server-side URL fetches may reach even
    # though they resolve to a private, loopback or link-local address. Off by default.
    fetch_allow_hosts: list[str] = Field(default_factory=list)
    # The URL clients reach this server at, for the upload forms `object/sign` returns
    # (default http://<host>:<port>; set it when serving behind a proxy or on 0.0.0.0).
    public_url: str | None = None
    # A vision-capable model on an OpenAI-compatible endpoint describes images (OCR reads
    # their text either way). Off unless a model is named; no base URL: OpenAI's API.
    vision_model: str = ""
    vision_base_url: str = ""
    vision_api_key: SecretStr = SecretStr("")
    vision_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # An LLM on an OpenAI-compatible endpoint extracts memories and resolves conflicts
    # when a model is named; otherwise the rule-based path does both. No base URL: OpenAI.
    llm: LlmSettings = Field(default_factory=LlmSettings)

    @model_validator(mode="after")
    def _vision_needs_a_model(self) -> Settings:
        if self.vision_base_url and not self.vision_model:
            raise ValueError("ENGRAM_VISION_BASE_URL is set but ENGRAM_VISION_MODEL is not")
        return self

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
    def from_env(cls, **overrides: object) -> Settings:
        env = {
            "data_dir": os.environ.get("ENGRAM_DATA_DIR"),
            "host": os.environ.get("ENGRAM_HOST"),
            "port": os.environ.get("ENGRAM_PORT"),
            "api_keys": os.environ.get("ENGRAM_API_KEYS"),
            "pipeline_workers": os.environ.get("ENGRAM_PIPELINE_WORKERS"),
            "http_threads": os.environ.get("ENGRAM_HTTP_THREADS"),
            "http_timeout_seconds": os.environ.get("ENGRAM_HTTP_TIMEOUT_SECONDS"),
            "embedder": os.environ.get("ENGRAM_EMBEDDER"),
            "model_dir": os.environ.get("ENGRAM_MODEL_DIR"),
            "fetch_allow_hosts": os.environ.get("ENGRAM_FETCH_ALLOW_HOSTS"),
            "public_url": os.environ.get("ENGRAM_PUBLIC_URL"),
            "vision_model": os.environ.get("ENGRAM_VISION_MODEL"),
            "vision_base_url": os.environ.get("ENGRAM_VISION_BASE_URL"),
            "vision_api_key": os.environ.get("ENGRAM_VISION_API_KEY"),
            "vision_timeout_seconds": os.environ.get("ENGRAM_VISION_TIMEOUT_SECONDS"),
        }
        values = {k: v for k, v in env.items() if v not in (None, "")}
        values["llm"] = LlmSettings.from_env()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def upload_url(self) -> str:
        """Where the local upload endpoint is reached (the `url` of a signed form)."""
        if self.public_url:
            return self.public_url.rstrip("/") + "/uploads"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/uploads"


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
