"""schemathesis (in .venv-fuzz, scripts/setup_fuzz_venv.sh) against a real `engram serve`,
from the server's own /v1/openapi.json (MemOS and EverOS routes), with the API key: a short
bounded run of valid and invalid requests. No response may be a 5xx, and every status must
be one the document declares for that operation. `make bench-fuzz` runs a long version."""

from __future__ import annotations

import pytest
import requests
from bench.fuzz import declared_statuses, report, run
from tests.conftest import EngramServer

pytestmark = pytest.mark.slow

EXAMPLES = 15  # per operation: ~330 requests, ~30 s on 2 cores
SEED = 12  # fixed, so a failure reproduces (bench/fuzz.py picks a new one each run)


def test_schema_generated_requests_get_no_5xx_and_only_declared_statuses(
        fresh_server: EngramServer) -> None:
    fresh_server.start()
    document = requests.get(f"{fresh_server.base_url}/openapi.json", timeout=30).json()
    operations = declared_statuses(document)
    assert any(label.startswith("POST /api/v1/") for label in operations)  # EverOS too

    result = run(fresh_server.root_url, fresh_server.api_key, examples=EXAMPLES, seed=SEED)
    log = fresh_server.log_path.read_text(errors="replace")[-3000:]
    detail = f"{report(result)}\n--- schemathesis ---\n{result.output[-4000:]}\n" \
             f"--- engram serve log ---\n{log}"

    assert result.requests >= 200, detail  # the run really sent requests
    assert set(result.by_operation) == set(operations), detail  # to every operation
    assert result.server_errors == 0, detail
    assert not result.undeclared, detail
    assert not result.failures, detail  # not_a_server_error, status_code_conformance
    assert not result.errors, detail
    assert result.seconds < 60, detail
    # valid requests got through and invalid ones were refused
    assert result.by_status[200] > 50 and result.by_status[422] > 20, detail
