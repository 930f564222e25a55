"""The OpenSearch adapter checks against a real cluster: opt-in, skipped unless
ENGRAM_OPENSEARCH_URL is set.

    ENGRAM_OPENSEARCH_URL=http://localhost:9200 pytest -m opensearch
    ENGRAM_OPENSEARCH_URL=https://…aoss.amazonaws.com ENGRAM_OPENSEARCH_SERVICE=aoss \
        AWS_REGION=eu-west-1 pytest -m opensearch      # SigV4 with the ambient credentials

A plain URL may carry basic auth (https://user:pass@host:9200); ENGRAM_OPENSEARCH_VERIFY=0
accepts a self-signed certificate; ENGRAM_OPENSEARCH_CUSTOM_IDS=0 exercises the
generated-id mode of Serverless classic collections. Each test works in an index of its
own, deleted at the end. Writes are polled for until searchable, since
Serverless has no refresh API and shows writes only after its refresh interval.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError
from tests.integration.test_opensearch_index import (
    Backend,
    scenario_filters_narrow_inside_the_search,
    scenario_hits_carry_both_scores_and_stay_inside_tenant_and_user,
    scenario_remove_and_upsert_again,
)

from engram.adapters.opensearch_index import opensearch_client

URL = os.environ.get("ENGRAM_OPENSEARCH_URL")
SERVICE = os.environ.get("ENGRAM_OPENSEARCH_SERVICE")  # "es" or "aoss": sign with SigV4
CUSTOM_IDS = os.environ.get("ENGRAM_OPENSEARCH_CUSTOM_IDS") != "0"
CATCH_UP_SECONDS = 90  # Serverless refreshes every 10-60 s

pytestmark = [
    pytest.mark.opensearch,
    pytest.mark.skipif(not URL, reason="set ENGRAM_OPENSEARCH_URL to run against a real "
                                       "OpenSearch (opt-in)"),
]


@pytest.fixture(scope="module")
def client() -> OpenSearch:
    if SERVICE:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return opensearch_client(URL, region, SERVICE)
    return OpenSearch(hosts=[URL], verify_certs=os.environ.get("ENGRAM_OPENSEARCH_VERIFY") != "0")


@pytest.fixture
def backend(client):
    name = f"engram-test-{uuid.uuid4().hex[:12]}"

    def eventually(check) -> None:
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while True:
            try:
                client.indices.refresh(index=name)
            except TransportError:
                pass  # Serverless: no refresh API, wait for its own interval
            try:
                check()
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    yield Backend(client, name, eventually, index_options={"use_custom_ids": CUSTOM_IDS})
    client.indices.delete(index=name, ignore=[404])


def test_hits_carry_both_scores_and_stay_inside_tenant_and_user(backend):
    scenario_hits_carry_both_scores_and_stay_inside_tenant_and_user(backend)


def test_filters_narrow_inside_the_search(backend):
    scenario_filters_narrow_inside_the_search(backend)


def test_remove_and_upsert_again(backend):
    scenario_remove_and_upsert_again(backend)
