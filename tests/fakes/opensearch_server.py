"""A small OpenSearch on 127.0.0.1 for the OpenSearch adapter's tests, driven over HTTP
by the unmodified opensearch-py client (no real OpenSearch can run here: feasibility §10).

It speaks the subset the adapter uses: HEAD / PUT / DELETE an index, GET its mapping,
`_bulk`, `_search` and `_msearch`. Request bodies are checked as OpenSearch checks
them, with the same error shapes: an index needs `index.knn` for a knn_vector field, a
document must fit a strict mapping and carry a vector of the mapped dimension, a knn
query needs `k` and a vector of that dimension, unknown query types and keys are a 400.

Three checks are policy, stricter than OpenSearch, to keep the adapter honest:
a knn query must be the whole query (not inside a bool) and no `post_filter` may be
used, so scoping can only happen inside `knn.<field>.filter`; a query may only name
mapped fields (a typo would otherwise match nothing, silently); and with
`required_filter_fields` every scored search (knn or match) must filter on those fields
with `term`, in a position that applies to every hit.

Scoring: exact k-NN with OpenSearch's score formulas (cosinesimil (1 + cos) / 2, faiss
innerproduct, l2), and BM25 (k1 1.2, b 0.75) over the whole index with Engram's
tokenizer standing in for the analyzer. Writes are visible at once.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from engram.retrieval.lexical import tokenize

FIELD_TYPES = {"keyword", "text", "long", "integer", "date", "boolean", "float", "object",
               "knn_vector"}
BUILTIN_ANALYZERS = {"standard", "simple", "whitespace", "keyword", "english", "cjk", "stop"}
KNN_KEYS = {"vector", "k", "filter", "method_parameters", "rescore", "boost", "_name"}
SEARCH_KEYS = {"size", "from", "query", "_source", "post_filter", "track_total_hits"}
SPACE_TYPES = {"cosinesimil", "innerproduct", "l2"}
ENGINES = {"faiss", "lucene", "nmslib"}
BM25_K1 = 1.2
BM25_B = 0.75


class OpenSearchError(Exception):
    def __init__(self, status: int, kind: str, reason: str):
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason

    def body(self) -> dict[str, Any]:
        cause = {"type": self.kind, "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    body: Any  # parsed JSON; a list of parsed lines for NDJSON; None when empty


@dataclass
class FakeIndex:
    name: str
    settings: dict[str, Any]
    mappings: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # _id → _source
    tokens: dict[str, list[str]] = field(default_factory=dict)  # _id → text terms

    @property
    def properties(self) -> dict[str, Any]:
        return self.mappings.get("properties", {})


class FakeOpenSearch:
    def __init__(self, *, accept_custom_ids: bool = True,
                 required_filter_fields: tuple[str, ...] = ()):
        """accept_custom_ids=False refuses `_id` on index operations, as Serverless
        classic collections do."""
        self.accept_custom_ids = accept_custom_ids
        self.required_filter_fields = required_filter_fields
        self.indices: dict[str, FakeIndex] = {}
        self.requests: list[RecordedRequest] = []
        self._failures: list[int] = []
        self._waking_until = 0.0
        self._waking_status: int | None = None
        self._waking_hold = 0.0
        self._waking_answered = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle ------------------------------------------------------------------
    def start(self) -> FakeOpenSearch:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenSearch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with this status (429 = rejected execution)."""
        self._failures.extend([status] * times)

    def scale_to_zero(self, wake_seconds: float, *, status: int = 503,
                      hold_seconds: float = 0.0) -> None:
        """Behave as a Serverless collection whose capacity is coming back from zero, for
        `wake_seconds` from now: each request is held `hold_seconds` (the first request
        after idle waits while workers are provisioned), then answered `status` (503 or
        429) until capacity is back. status=None only holds requests."""
        self._waking_until = time.monotonic() + wake_seconds
        self._waking_status, self._waking_hold = status, hold_seconds

    def waking_answers(self) -> int:
        """How many requests were answered with the waking status."""
        return self._waking_answered

    def recorded(self, path_suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    # --- dispatch -------------------------------------------------------------------
    def handle(self, method: str, target: str, raw: bytes) -> tuple[int, Any]:
        url = urlsplit(target)
        parts = [p for p in url.path.split("/") if p]
        ndjson = bool(parts) and parts[-1] in ("_bulk", "_msearch")
        if time.monotonic() < self._waking_until:
            time.sleep(self._waking_hold)  # outside the lock: other requests are held too
            if self._waking_status is not None and time.monotonic() < self._waking_until:
                with self._lock:
                    self._waking_answered += 1
                status = self._waking_status
                kind = ("rejected_execution_exception" if status == 429
                        else "service_unavailable_exception")
                return status, OpenSearchError(
                    status, kind, "capacity is being provisioned for the collection").body()
        with self._lock:
            try:
                body = _parse_body(raw, ndjson)
            except ValueError as exc:
                return 400, OpenSearchError(400, "parse_exception", str(exc)).body()
            self.requests.append(RecordedRequest(method, url.path, dict(parse_qsl(url.query)),
                                                 body))
            if self._failures:
                status = self._failures.pop(0)
                kind = "rejected_execution_exception" if status == 429 else "internal_error"
                return status, OpenSearchError(status, kind, "injected failure").body()
            try:
                return self._route(method, parts, body)
            except OpenSearchError as exc:
                return exc.status, exc.body()

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
        if len(parts) == 1 and not parts[0].startswith("_"):
            name = parts[0]
            if method == "HEAD":
                return (200 if name in self.indices else 404), None
            if method == "PUT":
                return 200, self._create_index(name, body or {})
            if method == "DELETE":
                self._index(name)
                del self.indices[name]
                return 200, {"acknowledged": True}
        if parts[-1:] == ["_mapping"] and len(parts) == 2 and method == "GET":
            return 200, {parts[0]: {"mappings": self._index(parts[0]).mappings}}
        if parts[-1:] == ["_bulk"] and method in ("POST", "PUT"):
            return 200, self._bulk(parts[0] if len(parts) == 2 else None, body or [])
        if parts[-1:] == ["_search"] and len(parts) == 2 and method in ("GET", "POST"):
            return 200, self._search(self._index(parts[0]), body or {})
        if parts[-1:] == ["_msearch"] and method in ("GET", "POST"):
            return 200, self._msearch(parts[0] if len(parts) == 2 else None, body or [])
        raise OpenSearchError(400, "illegal_argument_exception",
                              f"no handler found for uri [/{'/'.join(parts)}] and method "
                              f"[{method}]")

    def _index(self, name: str) -> FakeIndex:
        if name not in self.indices:
            raise OpenSearchError(404, "index_not_found_exception", f"no such index [{name}]")
        return self.indices[name]

    # --- indices --------------------------------------------------------------------
    def _create_index(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name in self.indices:
            raise OpenSearchError(400, "resource_already_exists_exception",
                                  f"index [{name}] already exists")
        settings = body.get("settings", {})
        mappings = body.get("mappings", {})
        knn_enabled = settings.get("index", {}).get("knn") or settings.get("index.knn")
        analyzers = set(settings.get("analysis", {}).get("analyzer", {})) | BUILTIN_ANALYZERS
        if mappings.get("dynamic", True) not in (True, False, "true", "false", "strict"):
            raise OpenSearchError(400, "mapper_parsing_exception", "invalid [dynamic] value")
        for field_name, spec in mappings.get("properties", {}).items():
            kind = spec.get("type", "object")
            if kind not in FIELD_TYPES:
                raise OpenSearchError(400, "mapper_parsing_exception",
                                      f"No handler for type [{kind}] declared on field "
                                      f"[{field_name}]")
            if kind == "text" and spec.get("analyzer", "standard") not in analyzers:
                raise OpenSearchError(400, "mapper_parsing_exception",
                                      f"analyzer [{spec['analyzer']}] has not been configured")
            if kind == "knn_vector":
                _check_knn_mapping(field_name, spec, bool(knn_enabled))
        self.indices[name] = FakeIndex(name=name, settings=settings, mappings=mappings)
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    # --- writes ---------------------------------------------------------------------
    def _bulk(self, default_index: str | None, lines: list[Any]) -> dict[str, Any]:
        items, position = [], 0
        while position < len(lines):
            (op, meta), = lines[position].items()
            position += 1
            source = None
            if op in ("index", "create", "update"):
                source = lines[position]
                position += 1
            items.append({op: self._bulk_item(op, meta, source, default_index)})
        errors = any("error" in next(iter(item.values())) for item in items)
        return {"took": 1, "errors": errors, "items": items}

    def _bulk_item(self, op: str, meta: dict[str, Any], source: Any,
                   default_index: str | None) -> dict[str, Any]:
        name = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        result = {"_index": name, "_id": doc_id}
        try:
            index = self._index(name)
            if op == "delete":
                index.tokens.pop(doc_id, None)
                if index.docs.pop(doc_id, None) is None:
                    return {**result, "status": 404, "result": "not_found"}
                return {**result, "status": 200, "result": "deleted"}
            if op not in ("index", "create"):
                raise OpenSearchError(400, "illegal_argument_exception",
                                      f"bulk operation [{op}] is not supported by the fake")
            if doc_id is not None and not self.accept_custom_ids:
                raise OpenSearchError(400, "illegal_argument_exception",
                                      "Document ID is not supported in create/index operation "
                                      "request")
            _check_document(index, source)
            doc_id = doc_id or uuid.uuid4().hex[:20]
            existed = doc_id in index.docs
            if existed and op == "create":
                raise OpenSearchError(409, "version_conflict_engine_exception",
                                      f"[{doc_id}]: document already exists")
            index.docs[doc_id] = source
            index.tokens[doc_id] = _text_terms(index, source)
            return {**result, "_id": doc_id, "status": 200 if existed else 201,
                    "result": "updated" if existed else "created"}
        except OpenSearchError as exc:
            return {**result, "status": exc.status,
                    "error": {"type": exc.kind, "reason": exc.reason}}

    # --- reads ----------------------------------------------------------------------
    def _msearch(self, default_index: str | None, lines: list[Any]) -> dict[str, Any]:
        responses = []
        for header, body in zip(lines[::2], lines[1::2], strict=True):
            try:
                index = self._index(header.get("index", default_index))
                responses.append({**self._search(index, body), "status": 200})
            except OpenSearchError as exc:
                responses.append(exc.body())
        return {"took": 1, "responses": responses}

    def _search(self, index: FakeIndex, body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - SEARCH_KEYS
        if unknown:
            raise OpenSearchError(400, "parsing_exception",
                                  f"Unknown key for a START_OBJECT in [{sorted(unknown)[0]}].")
        query = body.get("query", {"match_all": {}})
        top_kind = _single(query, "query")[0]
        if "post_filter" in body:
            raise OpenSearchError(400, "policy_violation",
                                  "post_filter drops hits after scoring; scope inside the "
                                  "query (knn.<field>.filter or bool.filter)")
        _validate(index, query, top=True)
        self._check_required_filters(query)
        if top_kind == "knn":
            scored = self._knn(index, query["knn"])
        else:
            scored = [(doc_id, score) for doc_id in index.docs
                      if (score := _score(index, query, doc_id)) is not None]
        scored.sort(key=lambda pair: -pair[1])  # stable: ties keep indexing order
        start = body.get("from", 0)
        page = scored[start:start + body.get("size", 10)]
        hits = []
        for doc_id, score in page:
            hit = {"_index": index.name, "_id": doc_id, "_score": score}
            source = _source_filter(index.docs[doc_id], body.get("_source", True))
            if source is not None:
                hit["_source"] = source
            hits.append(hit)
        return {"took": 1, "timed_out": False,
                "hits": {"total": {"value": len(scored), "relation": "eq"},
                         "max_score": scored[0][1] if scored else None, "hits": hits}}

    def _knn(self, index: FakeIndex, knn: dict[str, Any]) -> list[tuple[str, float]]:
        (field_name, spec), = knn.items()
        mapping = index.properties[field_name]
        space = mapping.get("space_type") or mapping.get("method", {}).get("space_type", "l2")
        query = np.asarray(spec["vector"], dtype=np.float64)
        condition = spec.get("filter")
        scored = []
        for doc_id, doc in index.docs.items():
            if field_name not in doc:
                continue
            if condition is not None and _score(index, condition, doc_id) is None:
                continue
            scored.append((doc_id, _knn_score(space, query, np.asarray(doc[field_name]))))
        scored.sort(key=lambda pair: -pair[1])
        return scored[:spec["k"]]

    def _check_required_filters(self, query: dict[str, Any]) -> None:
        if not self.required_filter_fields:
            return
        kind, args = _single(query, "query")
        if kind == "knn":
            (_, spec), = args.items()
            scoped = _conjunctive_terms(spec.get("filter", {}))
        elif kind == "bool" and any("match" in clause for clause in args.get("must", [])):
            scoped = set().union(*(_conjunctive_terms(c) for c in args.get("filter", [])))
        else:
            return  # not a scored search (e.g. a lookup by memory_id)
        missing = [f for f in self.required_filter_fields if f not in scoped]
        if missing:
            raise OpenSearchError(400, "policy_violation",
                                  f"scored search without a term filter on {missing}")


# --- mapping and document checks ----------------------------------------------------
def _check_knn_mapping(name: str, spec: dict[str, Any], knn_enabled: bool) -> None:
    if not knn_enabled:
        raise OpenSearchError(400, "mapper_parsing_exception",
                              f"knn_vector field [{name}] needs index.knn: true")
    dimension = spec.get("dimension")
    if not isinstance(dimension, int) or not 1 <= dimension <= 16_000:
        raise OpenSearchError(400, "mapper_parsing_exception",
                              f"[dimension] of [{name}] must be an integer in 1..16000")
    method = spec.get("method", {})
    space = spec.get("space_type") or method.get("space_type", "l2")
    if method.get("name", "hnsw") != "hnsw" or method.get("engine", "faiss") not in ENGINES:
        raise OpenSearchError(400, "mapper_parsing_exception",
                              f"unsupported method for [{name}]: {method}")
    if space not in SPACE_TYPES:
        raise OpenSearchError(400, "mapper_parsing_exception",
                              f"unsupported space_type [{space}] for [{name}]")


def _check_document(index: FakeIndex, source: Any) -> None:
    if not isinstance(source, dict):
        raise OpenSearchError(400, "mapper_parsing_exception", "document must be an object")
    strict = index.mappings.get("dynamic") == "strict"
    for name, value in source.items():
        spec = index.properties.get(name)
        if spec is None:
            if strict:
                raise OpenSearchError(400, "strict_dynamic_mapping_exception",
                                      f"mapping set to strict, dynamic introduction of [{name}] "
                                      f"within [_doc] is not allowed")
            continue
        if value is None:
            continue
        kind = spec.get("type", "object")
        if kind == "knn_vector":
            if (not isinstance(value, list) or len(value) != spec["dimension"]
                    or not all(isinstance(x, (int, float)) for x in value)):
                raise OpenSearchError(400, "mapper_parsing_exception",
                                      f"Vector dimension mismatch for [{name}]. Expected: "
                                      f"{spec['dimension']}")
            space = spec.get("space_type") or spec.get("method", {}).get("space_type")
            if space == "cosinesimil" and not any(value):
                raise OpenSearchError(400, "mapper_parsing_exception",
                                      "zero vector is not supported for cosinesimil")
        elif kind in ("keyword", "text"):
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise OpenSearchError(400, "mapper_parsing_exception",
                                      f"failed to parse field [{name}] of type [{kind}]")
        elif kind in ("long", "integer", "date") and not isinstance(value, int):
            raise OpenSearchError(400, "mapper_parsing_exception",
                                  f"failed to parse field [{name}] of type [{kind}]")


def _text_terms(index: FakeIndex, source: dict[str, Any]) -> list[str]:
    texts = [source[name] for name, spec in index.properties.items()
             if spec.get("type") == "text" and isinstance(source.get(name), str)]
    return tokenize(" ".join(texts))


# --- query validation and evaluation ------------------------------------------------
def _single(query: Any, where: str) -> tuple[str, Any]:
    if not isinstance(query, dict) or len(query) != 1:
        raise OpenSearchError(400, "parsing_exception",
                              f"[{where}] must hold exactly one query, got {query!r}")
    return next(iter(query.items()))


def _validate(index: FakeIndex, query: Any, top: bool = False) -> None:
    kind, args = _single(query, "query")
    if kind == "knn":
        if not top:
            raise OpenSearchError(400, "policy_violation",
                                  "knn must be the whole query: inside a bool its hits are "
                                  "filtered after the top k are chosen")
        (field_name, spec), = args.items()
        mapping = index.properties.get(field_name, {})
        if mapping.get("type") != "knn_vector":
            raise OpenSearchError(400, "query_shard_exception",
                                  f"Field '{field_name}' is not knn_vector type.")
        unknown = set(spec) - KNN_KEYS
        if unknown:
            raise OpenSearchError(400, "parsing_exception",
                                  f"[knn] unknown token [{sorted(unknown)[0]}]")
        if not isinstance(spec.get("k"), int) or not 0 < spec["k"] <= 10_000:
            raise OpenSearchError(400, "illegal_argument_exception",
                                  "[knn] requires k > 0 and k <= 10000")
        vector = spec.get("vector")
        if not isinstance(vector, list) or len(vector) != mapping["dimension"]:
            raise OpenSearchError(400, "illegal_argument_exception",
                                  f"[knn] query vector has invalid dimension: "
                                  f"{len(vector) if isinstance(vector, list) else 0}. "
                                  f"Dimension should be: {mapping['dimension']}")
        if "filter" in spec:
            _validate(index, spec["filter"])
    elif kind == "bool":
        unknown = set(args) - {"must", "filter", "should", "must_not", "minimum_should_match"}
        if unknown:
            raise OpenSearchError(400, "parsing_exception",
                                  f"[bool] query does not support [{sorted(unknown)[0]}]")
        for occur in ("must", "filter", "should", "must_not"):
            clauses = args.get(occur, [])
            for clause in clauses if isinstance(clauses, list) else [clauses]:
                _validate(index, clause)
    elif kind in ("term", "terms", "range", "match"):
        (field_name, _), = args.items()
        if field_name not in index.properties:
            raise OpenSearchError(400, "policy_violation",
                                  f"[{kind}] on unmapped field [{field_name}]")
        if kind == "terms" and not isinstance(args[field_name], list):
            raise OpenSearchError(400, "parsing_exception", "[terms] needs an array of values")
    elif kind != "match_all":
        raise OpenSearchError(400, "parsing_exception", f"unknown query [{kind}]")


def _score(index: FakeIndex, query: dict[str, Any], doc_id: str) -> float | None:
    """The query's score for a document, or None when it does not match."""
    kind, args = next(iter(query.items()))
    doc = index.docs[doc_id]
    if kind == "match_all":
        return 1.0
    if kind == "bool":
        return _bool_score(index, args, doc_id)
    (field_name, operand), = args.items()
    values = doc.get(field_name)
    values = values if isinstance(values, list) else ([] if values is None else [values])
    if kind == "term":
        wanted = operand["value"] if isinstance(operand, dict) else operand
        return 1.0 if wanted in values else None
    if kind == "terms":
        return 1.0 if any(v in values for v in operand) else None
    if kind == "range":
        bounds = {"gt": lambda v, b: v > b, "gte": lambda v, b: v >= b,
                  "lt": lambda v, b: v < b, "lte": lambda v, b: v <= b}
        ok = values and all(bounds[op](values[0], bound) for op, bound in operand.items())
        return 1.0 if ok else None
    text = operand["query"] if isinstance(operand, dict) else operand  # match
    score = _bm25(index, tokenize(text), doc_id)
    return score if score > 0 else None


def _bool_score(index: FakeIndex, args: dict[str, Any], doc_id: str) -> float | None:
    def clauses(occur: str) -> list[dict[str, Any]]:
        found = args.get(occur, [])
        return found if isinstance(found, list) else [found]

    total = 0.0
    for clause in clauses("must"):
        score = _score(index, clause, doc_id)
        if score is None:
            return None
        total += score
    if any(_score(index, c, doc_id) is None for c in clauses("filter")):
        return None
    if any(_score(index, c, doc_id) is not None for c in clauses("must_not")):
        return None
    should = [s for c in clauses("should") if (s := _score(index, c, doc_id)) is not None]
    required = args.get("minimum_should_match",
                        0 if clauses("must") or clauses("filter") else 1 if clauses("should")
                        else 0)
    if len(should) < int(required):
        return None
    return total + sum(should)


def _bm25(index: FakeIndex, terms: list[str], doc_id: str) -> float:
    counts = Counter(index.tokens.get(doc_id, []))
    if not counts:
        return 0.0
    documents = len(index.tokens)
    average = sum(len(t) for t in index.tokens.values()) / documents
    length = sum(counts.values())
    score = 0.0
    for term in set(terms):
        if term not in counts:
            continue
        found = sum(1 for t in index.tokens.values() if term in t)
        idf = math.log(1 + (documents - found + 0.5) / (found + 0.5))
        freq = counts[term]
        score += idf * freq * (BM25_K1 + 1) / (
            freq + BM25_K1 * (1 - BM25_B + BM25_B * length / average))
    return score


def _knn_score(space: str, query: np.ndarray, vector: np.ndarray) -> float:
    if space == "cosinesimil":
        cosine = float(query @ vector / (np.linalg.norm(query) * np.linalg.norm(vector)))
        return (1 + cosine) / 2
    if space == "innerproduct":  # faiss: d = -ip
        product = float(query @ vector)
        return 1 + product if product >= 0 else 1 / (1 - product)
    return 1 / (1 + float(np.sum((query - vector) ** 2)))


def _conjunctive_terms(query: Any) -> set[str]:
    """Fields a query pins with `term` in a position every match must satisfy."""
    if not isinstance(query, dict) or len(query) != 1:
        return set()
    kind, args = next(iter(query.items()))
    if kind == "term":
        return set(args)
    if kind == "bool":
        found: set[str] = set()
        for occur in ("filter", "must"):
            clauses = args.get(occur, [])
            for clause in clauses if isinstance(clauses, list) else [clauses]:
                found |= _conjunctive_terms(clause)
        return found
    return set()


def _source_filter(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is False:
        return None
    if spec is True:
        return source
    includes = spec if isinstance(spec, list) else [spec] if isinstance(spec, str) \
        else spec.get("includes", list(source))
    return {k: v for k, v in source.items() if k in includes}


def _parse_body(raw: bytes, ndjson: bool) -> Any:
    if not raw.strip():
        return None
    if ndjson:
        return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    return json.loads(raw)


def _handler_for(fake: FakeOpenSearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
        disable_nagle_algorithm = True  # else each small response waits on a delayed ACK

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, body = fake.handle(self.command, self.path, raw)
            payload = b"" if body is None or self.command == "HEAD" else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up on a held request

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler
