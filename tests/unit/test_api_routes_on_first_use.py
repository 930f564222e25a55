"""The EverOS and mem0 routes are included by the first request under their paths (or the
first OpenAPI document), not by create_app (engram/api/app.py): what a client sees must
not depend on which request came first."""

from __future__ import annotations

import json
import re

from engram.api.app import EVEROS_PREFIX, EVEROS_V2_PREFIX, MEM0_PATHS, create_app
from engram.local.server import LambdaContext, proxy_event

LATER = (*MEM0_PATHS, EVEROS_PREFIX, EVEROS_V2_PREFIX)


def routes(app) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in app._static_routes + app._dynamic_routes]


def resolve(app, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    event = proxy_event(method, path, {"Content-Type": "application/json"},
                        None if body is None else json.dumps(body), "tenant-a", "127.0.0.1")
    response = app.resolve(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_memos_request_includes_no_other_dialect_and_their_first_request_does(local_runtime):
    app = create_app(local_runtime.services)
    memos = routes(app)
    assert not [path for _, path in memos if path.startswith(LATER)]
    status, body = resolve(app, "POST", "/v1/get/status", {"task_id": "nope"})
    assert status == 404 and body["code"] == 404
    assert routes(app) == memos
    status, body = resolve(app, "GET", "/v1/ping/")  # mem0's client checks its key here
    assert status == 200, body
    assert set(memos) < set(routes(app))


def test_the_routes_included_later_are_under_their_paths_and_no_earlier_route_serves_them(
        local_runtime):
    app = create_app(local_runtime.services)
    earlier = app._static_routes + app._dynamic_routes
    app.include_now()
    later = [r for r in app._static_routes + app._dynamic_routes if r not in earlier]
    assert {r.path.split("/")[1] for r in later} >= {"v1", "v2", "v3", "api"}
    for route in later:
        assert route.path.startswith(LATER), route.path
        sample = re.sub(r"<[^>]+>", "x1", route.path)
        assert route.rule.match(sample), route.path
        assert not [r.path for r in earlier if r.method == route.method and r.rule.match(sample)]


def test_a_wrong_method_on_a_later_path_is_a_405_naming_its_methods(local_runtime):
    status, body = resolve(create_app(local_runtime.services), "PATCH", "/v1/ping/")
    assert status == 405 and "allowed: GET" in body["detail"]


def test_the_openapi_document_is_the_same_whichever_request_came_first(local_runtime):
    documents = []
    for first in (None, ("GET", "/v1/ping/"), ("GET", "/api/v1/settings")):
        app = create_app(local_runtime.services)
        if first:
            resolve(app, *first)
        status, document = resolve(app, "GET", "/v1/openapi.json")
        assert status == 200
        documents.append(json.dumps(document))
    assert documents[0] == documents[1] == documents[2]
    assert '"/api/v2/' in documents[0] and '"/v3/memories' in documents[0]
