"""Settings, read once from the environment (ENGRAM_*) and validated."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class Limits(BaseModel):
    """Request limits (MemOS cloud's published ones where it has them)."""

    max_body_bytes: int = 10 * 1024 * 1024  # API Gateway's payload limit
    max_messages: int = 500
    max_message_chars: int = 100_000
    max_query_chars: int = 4_000
    max_memory_limit: int = 25
    max_page_size: int = 50


class Settings(BaseModel):
    data_dir: Path = Path(".engram")
    host: str = "127.0.0.1"
    port: int = 8000
    # "key:tenant,key2:tenant2": keys given here are used instead of the generated one.
    api_keys: dict[str, str] = Field(default_factory=dict)
    pipeline_workers: int = 2
    # all-MiniLM-L6-v2 run three ways: int8 ONNX (default: 2.5× the throughput of torch,
    # same LoCoMo recall), fp32 ONNX (the torch vectors exactly), or sentence-transformers.
    embedder: Literal["onnx-int8", "onnx", "torch"] = "onnx-int8"
    # Where the ONNX export lives; made from the packaged weights on first use.
    model_dir: Path = Path(sys.prefix) / "share" / "engram" / "minilm-onnx"
    limits: Limits = Field(default_factory=Limits)

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
            "embedder": os.environ.get("ENGRAM_EMBEDDER"),
            "model_dir": os.environ.get("ENGRAM_MODEL_DIR"),
        }
        values = {k: v for k, v in env.items() if v not in (None, "")}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def parse_api_keys(raw: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, tenant = entry.partition(":")
        if not sep or not key.strip() or not tenant.strip():
            raise ValueError("ENGRAM_API_KEYS entries must look like key:tenant")
        keys[key.strip()] = tenant.strip()
    return keys
