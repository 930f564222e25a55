"""One settings model for both profiles: the names template.yaml and the README use, the
nested spelling, and the validation rules."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from engram.config import ENVIRONMENT_NAMES, LlmSettings, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("ENGRAM_") or n == "AWS_REGION"]:
        monkeypatch.delenv(name)


def test_the_documented_names_set_the_grouped_fields(monkeypatch):
    for name, value in {"ENGRAM_LLM_MODEL": "gpt-4o-mini", "ENGRAM_HTTP_THREADS": "3",
                        "ENGRAM_VISION_TIMEOUT_SECONDS": "5", "AWS_REGION": "eu-west-1",
                        "ENGRAM_OPENSEARCH_INDEX": "memories-v2",
                        "ENGRAM_EMBEDDING_MODEL": "amazon.titan-embed-text-v1",
                        "ENGRAM_DATA_DIR": "/tmp/engram"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.llm.model == "gpt-4o-mini" and settings.http.threads == 3
    assert settings.vision.timeout_seconds == 5 and settings.aws.region == "eu-west-1"
    assert settings.aws.opensearch.index == "memories-v2"
    assert settings.aws.embedding.model_id == "amazon.titan-embed-text-v1"
    assert str(settings.data_dir) == "/tmp/engram"


def test_the_nested_spelling_works_and_wins(monkeypatch):
    monkeypatch.setenv("ENGRAM_LLM_MODEL", "from-the-table")
    monkeypatch.setenv("ENGRAM_LLM__MODEL", "nested")
    monkeypatch.setenv("ENGRAM_LIMITS__MAX_PAGES", "20")
    settings = Settings()
    assert settings.llm.model == "nested" and settings.limits.max_pages == 20


def test_arguments_win_and_empty_variables_count_as_unset(monkeypatch):
    monkeypatch.setenv("ENGRAM_PORT", "9000")
    monkeypatch.setenv("ENGRAM_OPENSEARCH_CUSTOM_IDS", "")  # a template parameter left empty
    settings = Settings(port=8123)
    assert settings.port == 8123 and settings.aws.opensearch.custom_ids is None


def test_lists_and_keys_come_comma_separated(monkeypatch):
    monkeypatch.setenv("ENGRAM_FETCH_ALLOW_HOSTS", "files.internal, 10.0.0.5:8080,,")
    monkeypatch.setenv("ENGRAM_API_KEYS", "k1:tenant-a, k2:tenant-b")
    settings = Settings()
    assert settings.fetch_allow_hosts == ["files.internal", "10.0.0.5:8080"]
    assert settings.api_keys == {"k1": "tenant-a", "k2": "tenant-b"}


@pytest.mark.parametrize(("env", "message"), [
    ({"ENGRAM_API_KEYS": "no-tenant"}, "ENGRAM_API_KEYS entries must look like key:tenant"),
    ({"ENGRAM_LLM_BASE_URL": "http://x"}, "ENGRAM_LLM_BASE_URL is set but ENGRAM_LLM_MODEL"),
    ({"ENGRAM_VISION_BASE_URL": "http://x"}, "ENGRAM_VISION_BASE_URL is set but"),
    ({"ENGRAM_EMBEDDING_PROVIDER": "openai"}, "ENGRAM_EMBEDDING_BASE_URL is required"),
    ({"ENGRAM_EMBEDDING_PROVIDER": "onnx", "ENGRAM_EMBEDDING_DIMENSION": "1024"},
     "ENGRAM_EMBEDDING_DIMENSION must be 384 with provider 'onnx'"),
    ({"ENGRAM_HTTP_THREADS": "0"}, "http.threads"),
    ({"ENGRAM_LLM_MAX_RETRIES": "11"}, "llm.max_retries"),
    ({"ENGRAM_JOB_PREFIX": "no spaces"}, "aws.job_prefix"),
    ({"ENGRAM_TRANSCRIPTION": "maybe"}, "aws.transcription"),
])
def test_invalid_settings_are_refused_naming_what(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings()


def test_the_onnx_embedder_is_minilm_in_384_dimensions_from_the_layer(monkeypatch):
    monkeypatch.setenv("ENGRAM_EMBEDDING_PROVIDER", "onnx")
    embedding = Settings().aws.embedding
    assert embedding.dimension == 384 and str(embedding.model_dir) == "/opt/minilm-onnx"
    monkeypatch.setenv("ENGRAM_EMBEDDING_DIMENSION", "384")  # as template.yaml sets it
    monkeypatch.setenv("ENGRAM_EMBEDDING_MODEL_DIR", "/var/task/model")
    embedding = Settings().aws.embedding
    assert embedding.dimension == 384 and str(embedding.model_dir) == "/var/task/model"


def test_keys_never_show_in_the_settings(monkeypatch):
    monkeypatch.setenv("ENGRAM_LLM_API_KEY", "sk-secret-llm")
    monkeypatch.setenv("ENGRAM_VISION_API_KEY", "sk-secret-vision")
    settings = Settings()
    assert "sk-secret" not in repr(settings)
    assert settings.llm.api_key.get_secret_value() == "sk-secret-llm"


def test_the_aws_functions_name_the_resources_they_miss(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("ENGRAM_BUCKET", "b")
    assert Settings().aws.missing() == ["ENGRAM_TASKS_TABLE", "ENGRAM_API_KEYS_TABLE",
                                        "ENGRAM_RECORDS_TABLE", "ENGRAM_IDEMPOTENCY_TABLE"]


def test_every_mapped_name_sets_a_field():
    for name, path in ENVIRONMENT_NAMES.items():
        model: type = Settings
        for part in path:
            assert part in model.model_fields, f"{name} → {path}"
            model = model.model_fields[part].annotation


def test_a_refused_setting_never_echoes_a_key(monkeypatch):
    """The LLM's key and the API keys must not reach a log through a validation error."""
    with pytest.raises(ValidationError) as refused:
        LlmSettings(base_url="http://llm.internal", api_key="sk-do-not-print-me")
    assert "sk-do-not-print-me" not in str(refused.value)
    monkeypatch.setenv("ENGRAM_API_KEYS", "eng_secretkey123:tenant,broken")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "eng_secretkey123" not in str(refused.value)
    assert "ENGRAM_API_KEYS" in str(refused.value)
