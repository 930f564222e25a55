"""Fake AWS credentials and moto-backed tables for adapter tests. Import the fixtures
into a test module to use them: `from tests.fakes.aws import aws_credentials`."""

from __future__ import annotations

from typing import Any

import pytest

from engram.adapters.dynamodb_tables import table_definitions

REGION = "us-east-1"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that can never reach a real account, and no profile to fall back on."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def create_tables(dynamodb: Any, prefix: str = "engram-test") -> dict[str, Any]:
    """Every table of `table_definitions()`, created as the SAM template declares them
    (TTL included); returns Table resources by logical name."""
    tables = {}
    for name, definition in table_definitions().items():
        spec = dict(definition)
        ttl = spec.pop("TimeToLiveSpecification", None)
        table = dynamodb.create_table(TableName=f"{prefix}-{name}", **spec)
        table.wait_until_exists()
        if ttl:
            table.meta.client.update_time_to_live(TableName=table.name,
                                                  TimeToLiveSpecification=ttl)
        tables[name] = table
    return tables
