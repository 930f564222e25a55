"""MemoryIndex on OpenSearch k-NN: a managed domain (SigV4 service `es`) or a Serverless
VECTORSEARCH collection (`aoss`).

One index holds every tenant. Each search is a k-NN query with the tenant, user, type
and request filter *inside* `knn.vector.filter` (efficient filtering: the filter
narrows the graph search, so one user among millions still gets k results), and a BM25
`match` on `text` under the same filter. Both lists are the top max(4k, 50), as in the
local index; a second _msearch then scores each list's ids on the other signal, so every
hit carries a cosine and a BM25 score, like LocalMemoryIndex's hits.

A memory shared beyond its owner (public, or written into knowledge bases) lists those
shared scopes beside its owner in `user_id` (a keyword array, models/knowledge.py
`read_scopes`): a search of a scope is the same term filter as a search of a user, and
the mapping needs no new field.

Documents are keyed `<tenant>:<memory id>`. Serverless classic collections refuse custom
ids: with `use_custom_ids=False` documents get generated ids and are found again through
their `memory_id` keyword to be replaced or removed (search, then bulk delete; no
_delete_by_query there). Searches there see writes only after the refresh interval
(10-60 s), so a delete that closely follows an index can miss its target: searches
return each memory once, and callers must drop hits the store no longer holds activated.

The index is written without refresh: Serverless has no refresh API, and search freshness
within a second is not needed (the store is the source of truth).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, urlparse

import boto3
import numpy as np
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth, Urllib3HttpConnection, helpers
from opensearchpy.exceptions import ConnectionError as TransportConnectionError
from opensearchpy.exceptions import RequestError, TransportError

from engram.errors import PermanentError, RetryableError, ServiceUnavailable
from engram.models.domain import Memory, MemoryStatus, MemoryType
from engram.models.filters import Condition, FilterError, FilterNode
from engram.models.knowledge import is_shared_scope, read_scopes
from engram.ports import IndexHit, IndexQuery
from engram.retrieval.fusion import candidate_count

VECTOR_FIELD = "vector"
TEXT_FIELD = "text"
TEXT_ANALYZER = "memory_text"
SPACE_TYPES = ("cosinesimil", "innerproduct")
# Filter fields that are document fields of the same name; info.<key> goes to INFO_FIELD.
FILTER_FIELDS = ("agent_id", "app_id", "memory_type", "conversation_id", "tags",
                 "create_time", "update_time")
INFO_FIELD = "info_pairs"
BULK_CHUNK_DOCS = 200
BULK_CHUNK_BYTES = 8 * 1024 * 1024  # Serverless wants bulk requests of about 10 MiB at most
BULK_RETRIES = 3  # of documents refused with 429, backing off 1, 2, 4 s
BULK_BACKOFF_SECONDS = 1
LOOKUP_CHUNK = 1000  # memory ids per search when documents have generated ids
LOOKUP_SIZE = 10_000  # index.max_result_window
# A NextGen collection scaled to zero answers again after 10-30 s. Until then a request
# is held or refused with one of these: they are waited for (up to the wake budget),
# then reported as IndexWaking.
WAKING_STATUS = frozenset({429, 502, 503, 504})
REQUEST_TIMEOUT_SECONDS = 10.0  # one attempt, never past what is left of the wake budget
WAKE_FIRST_DELAY_SECONDS = 0.5  # then doubled, at most WAKE_MAX_DELAY_SECONDS
WAKE_MAX_DELAY_SECONDS = 4.0
WAKE_RETRY_AFTER_SECONDS = 10  # what is left of a 30 s wake after the API's wait
API_TIMEOUT_SECONDS = 29  # API Gateway's integration timeout: one request's whole time
T = TypeVar("T")


class IndexWaking(ServiceUnavailable):
    """The memory index did not answer in time: a Serverless collection scaled to zero
    is getting its capacity back, or the cluster is overloaded. The API answers 503 with
    Retry-After; a pipeline step is retried by the state machine (RetryableError)."""


def index_body(dimension: int, space_type: str = "cosinesimil") -> dict[str, Any]:
    """Settings and mappings for a new index.

    `info` is stored as keyword `["key","value"]` pairs rather than an object with a field
    per key: keys are chosen by every tenant's clients, and a field per key in one shared
    index would grow the mapping towards its 1,000-field limit, after which every write
    fails. The text analyzer mirrors the local tokenizer: full-width folding, lowercase,
    CJK bigrams, English stopwords, light stemming."""
    keyword = {"type": "keyword"}
    return {
        "settings": {
            "index": {"knn": True},
            "analysis": {"analyzer": {TEXT_ANALYZER: {
                "type": "custom", "tokenizer": "standard",
                "filter": ["cjk_width", "lowercase", "cjk_bigram", "stop", "kstem"],
            }}},
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                "memory_id": keyword, "tenant_id": keyword, "user_id": keyword,
                "memory_type": keyword, "agent_id": keyword, "app_id": keyword,
                "conversation_id": keyword, "tags": keyword, INFO_FIELD: keyword,
                "create_time": {"type": "long"}, "update_time": {"type": "long"},
                TEXT_FIELD: {"type": "text", "analyzer": TEXT_ANALYZER},
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {"name": "hnsw", "engine": "faiss", "space_type": space_type,
                               "parameters": {"m": 16, "ef_construction": 128}},
                },
            },
        },
    }


def info_pair(key: str, value: str) -> str:
    """One info entry as an unambiguous keyword (JSON keeps "a=b"/"c" apart from "a"/"b=c")."""
    return json.dumps([key, value], ensure_ascii=False, separators=(",", ":"))


def compile_filter_dsl(node: FilterNode) -> dict[str, Any]:
    """A FilterNode as an OpenSearch bool query with the same meaning as
    FilterNode.matches: all of `all_of` and, when present, at least one of `any_of`.
    Non-scoring (filter context), for use inside a knn or bool filter."""
    clause: dict[str, Any] = {}
    if node.all_of:
        clause["filter"] = [_compile(item) for item in node.all_of]
    if node.any_of:
        clause["should"] = [_compile(item) for item in node.any_of]
        clause["minimum_should_match"] = 1
    return {"bool": clause}


def _compile(item: Condition | FilterNode) -> dict[str, Any]:
    if isinstance(item, FilterNode):
        return compile_filter_dsl(item)
    field, op, value = item.field, item.op, item.value
    if field.startswith("info."):
        key = field[5:]
        if op == "eq":
            return {"term": {INFO_FIELD: info_pair(key, value)}}
        if op == "in":
            return {"terms": {INFO_FIELD: [info_pair(key, v) for v in value]}}
        raise FilterError(f"filter field '{field}' supports equality and 'in' only")
    if field not in FILTER_FIELDS:
        raise FilterError(f"unknown filter field '{field}'")
    if op == "contains":
        if field != "tags":
            raise FilterError(f"filter field '{field}' does not support 'contains'")
        return {"term": {"tags": value}}
    if op == "eq":
        return {"term": {field: value}}
    if op == "in":
        return {"terms": {field: list(value)}}
    return {"range": {field: {op: value}}}


def cosine_from_score(score: float, space_type: str) -> float:
    """OpenSearch's k-NN score back to the cosine (vectors are unit length). cosinesimil:
    score = (1 + cos) / 2. Faiss innerproduct: score = 1 + ip when ip ≥ 0, else 1 / (1 - ip)."""
    if space_type == "cosinesimil":
        cosine = 2.0 * score - 1.0
    else:
        cosine = score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score
    return min(1.0, max(-1.0, cosine))


def document_id(tenant_id: str, memory_id: str) -> str:
    """`<tenant>:<memory id>`, the tenant percent-encoded so that the first ':' splits."""
    return f"{quote(tenant_id, safe='')}:{memory_id}"


class OpenSearchMemoryIndex:
    """Implements MemoryIndex. Only activated memories are indexed: upserting a memory
    in any other status removes it.

    `space_type` "innerproduct" is for domains older than OpenSearch 2.19, where Faiss has
    no cosinesimil; vectors are unit length, so the ranking is the same."""

    def __init__(self, client: OpenSearch, index_name: str, dimension: int, *,
                 use_custom_ids: bool = True, space_type: str = "cosinesimil",
                 wake_wait_seconds: float = 0.0):
        """`wake_wait_seconds`: how long one call waits for a waking or overloaded index
        (429, 502-504, no answer) before raising IndexWaking; 0 raises at once."""
        if space_type not in SPACE_TYPES:
            raise ValueError(f"space_type must be one of {SPACE_TYPES}, not {space_type!r}")
        self._client = client
        self._index = index_name
        self._dimension = dimension
        self._custom_ids = use_custom_ids
        self._space_type = space_type
        self._wake_wait = max(0.0, wake_wait_seconds)
        self._call = threading.local()  # the deadline of the call under way in this thread
        # When this process last began to wait for a waking index: every call in the
        # following 29 s (an API request makes several) shares that wait's deadline, so a
        # request never waits twice.
        self._wait_began = float("-inf")

    def ensure_index(self) -> None:
        """Create the index if it is missing; refuse one built for other vectors (the
        dimension is fixed at creation: a new embedding model needs a new index)."""
        self._patiently(self._ensure_index)

    def _ensure_index(self) -> None:
        with _classified():
            if self._client.indices.exists(index=self._index, **self._timeout()):
                self._check_mapping()
                return
            try:
                self._client.indices.create(
                    index=self._index, body=index_body(self._dimension, self._space_type),
                    **self._timeout())
            except RequestError as exc:
                if exc.error != "resource_already_exists_exception":  # lost a creation race
                    raise

    def upsert(self, memories: Sequence[Memory], vectors: np.ndarray) -> None:
        # Repeatable as a whole: with our ids the same documents are rewritten; with
        # generated ids the stale documents are looked up and removed again first.
        self._patiently(lambda: self._upsert(memories, vectors))

    def _upsert(self, memories: Sequence[Memory], vectors: np.ndarray) -> None:
        if not memories:
            return
        vectors = self._unit_rows(vectors, len(memories))
        # An id repeated within one batch: the last occurrence wins, as in the local index.
        latest = {(m.tenant_id, m.id): i for i, m in enumerate(memories)}
        batch = [(memories[i], vectors[i]) for i in latest.values()]
        active = [(m, v) for m, v in batch if m.status == MemoryStatus.activated]
        if self._custom_ids:
            actions = [self._index_action(m, v, document_id(m.tenant_id, m.id))
                       for m, v in active]
            actions += [self._delete_action(document_id(m.tenant_id, m.id))
                        for m, _ in batch if m.status != MemoryStatus.activated]
        else:
            by_tenant: dict[str, list[str]] = {}
            for memory, _ in batch:
                by_tenant.setdefault(memory.tenant_id, []).append(memory.id)
            stale = [doc for tenant, ids in by_tenant.items()
                     for doc in self._stored_documents(tenant, ids)]
            actions = [self._delete_action(doc) for doc in stale]
            actions += [self._index_action(m, v, None) for m, v in active]
        self._bulk(actions)

    def remove(self, tenant_id: str, ids: Sequence[str]) -> None:
        self._patiently(lambda: self._remove(tenant_id, ids))

    def _remove(self, tenant_id: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        if self._custom_ids:
            documents = [document_id(tenant_id, memory_id) for memory_id in ids]
        else:
            documents = self._stored_documents(tenant_id, ids)
        self._bulk([self._delete_action(doc) for doc in documents])

    def remove_user(self, tenant_id: str, user_id: str, ids: Sequence[str] = ()) -> int:
        """The documents of `ids` (by id where ids are ours: found even before a refresh
        makes a fresh write searchable), then whatever a search still finds for the user,
        until a search finds nothing new. With generated ids a document written within
        the last refresh interval cannot be found yet, so it can survive."""
        return self._patiently(lambda: self._remove_user(tenant_id, user_id, ids))

    def _remove_user(self, tenant_id: str, user_id: str, ids: Sequence[str]) -> int:
        documents: list[str] = []
        if ids:
            documents = ([document_id(tenant_id, memory_id) for memory_id in ids]
                         if self._custom_ids else self._stored_documents(tenant_id, ids))
        removed = self._bulk([self._delete_action(doc) for doc in documents])
        gone = set(documents)
        body = {"size": LOOKUP_SIZE, "_source": False, "query": {"bool": {"filter": [
            {"term": {"tenant_id": tenant_id}}, {"term": {"user_id": user_id}}]}}}
        while True:
            with _classified():
                hits = self._client.search(index=self._index, body=body,
                                           **self._timeout())["hits"]["hits"]
            fresh = [hit["_id"] for hit in hits if hit["_id"] not in gone]
            if not fresh:
                return removed
            removed += self._bulk([self._delete_action(doc) for doc in fresh])
            gone.update(fresh)

    def search(
        self,
        tenant_id: str,
        user_id: str,
        vector: np.ndarray,
        text: str,
        k: int,
        types: Sequence[MemoryType],
        where: FilterNode | None = None,
    ) -> list[IndexHit]:
        """Candidates from the top max(4k, 50) by cosine and the top max(4k, 50) by BM25,
        each with both scores, best cosine first."""
        return self._patiently(
            lambda: self._search(tenant_id, user_id, vector, text, k, types, where))

    def _search(self, tenant_id: str, user_id: str, vector: np.ndarray, text: str, k: int,
                types: Sequence[MemoryType], where: FilterNode | None) -> list[IndexHit]:
        wanted = sorted({MemoryType(t).value for t in types})
        if k <= 0 or not wanted:
            return []
        query = self._unit_rows(np.asarray(vector).reshape(1, -1), 1)[0].tolist()
        limit = candidate_count(k)
        scope = [{"term": {"tenant_id": tenant_id}}, {"term": {"user_id": user_id}},
                 {"terms": {"memory_type": wanted}}]
        if where is not None:
            scope.append(compile_filter_dsl(where))
        lexical_too = bool(text.strip())

        first = [self._dense_search(query, limit, scope)]
        if lexical_too:
            first.append(self._lexical_search(text, limit, scope))
        found = self._msearch(first)
        dense = self._dense_scores(found[0])
        vectors = _vectors(found[0])
        lexical = _best_scores(found[1]) if lexical_too else {}

        # Score each list's ids on the other signal: a keyword match that ranked low on
        # cosine still needs its cosine for fusion, and the reverse.
        lacking_dense = [i for i in lexical if i not in dense]
        lacking_lexical = [i for i in dense if i not in lexical] if lexical_too else []
        second = {}
        if lacking_dense:
            second["dense"] = self._dense_search(
                query, len(lacking_dense), [*scope, {"terms": {"memory_id": lacking_dense}}])
        if lacking_lexical:
            second["lexical"] = self._lexical_search(
                text, len(lacking_lexical), [*scope, {"terms": {"memory_id": lacking_lexical}}])
        answers = dict(zip(second, self._msearch(list(second.values())), strict=True)) \
            if second else {}
        if "dense" in answers:
            dense.update(self._dense_scores(answers["dense"]))
            vectors.update(_vectors(answers["dense"]))
        if "lexical" in answers:
            lexical.update(_best_scores(answers["lexical"]))

        # A lexical hit whose cosine did not come back has no vector (a memory found by its
        # words alone) or was removed between the two searches (search reads every hit
        # back from the store, which leaves a removed one out): cosine 0, a zero vector.
        for i in lexical:
            if i not in dense:
                dense[i], vectors[i] = 0.0, np.zeros(self._dimension, dtype=np.float32)
        hits = [IndexHit(id=i, dense=d, lexical=lexical.get(i, 0.0), vector=vectors.get(i))
                for i, d in dense.items()]
        hits.sort(key=lambda hit: (-hit.dense, hit.id))
        return hits

    def search_groups(
        self,
        tenant_id: str,
        user_id: str,
        vector: np.ndarray,
        text: str,
        queries: Sequence[IndexQuery],
        where: FilterNode | None = None,
    ) -> list[list[IndexHit]]:
        # One search per group: the memory type is part of each k-NN filter, so the
        # cluster cannot share the scoring the way the in-memory index does.
        return self._patiently(lambda: [
            self._search(tenant_id, user_id, vector, text, q.k, q.types, where)
            for q in queries])

    def nearest(self, tenant_id: str, user_id: str, vectors: np.ndarray, k: int,
                types: Sequence[MemoryType]) -> list[list[IndexHit]]:
        """The k closest memories by cosine for each row of `vectors`, in one _msearch."""
        return self._patiently(lambda: self._nearest(tenant_id, user_id, vectors, k, types))

    def _nearest(self, tenant_id: str, user_id: str, vectors: np.ndarray, k: int,
                 types: Sequence[MemoryType]) -> list[list[IndexHit]]:
        if k <= 0 or len(vectors) == 0 or not types:
            return [[] for _ in range(len(vectors))]
        scope = [{"term": {"tenant_id": tenant_id}}, {"term": {"user_id": user_id}},
                 {"terms": {"memory_type": sorted({MemoryType(t).value for t in types})}}]
        rows = self._unit_rows(np.asarray(vectors), len(vectors))
        found = self._msearch([self._dense_search(row.tolist(), k, scope) for row in rows])
        return [sorted((IndexHit(id=i, dense=d, lexical=0.0)
                        for i, d in self._dense_scores(response).items()),
                       key=lambda hit: (-hit.dense, hit.id)) for response in found]

    def matching_ids(self, tenant_id: str, where: FilterNode, limit: int,
                     scope: str | None = None) -> list[str]:
        """Documents of the tenant that `where` admits: without `scope`, not the ones a
        shared scope owns (their first user_id, the owner, is a scope); with it, those
        readable in it."""
        return self._patiently(lambda: self._matching_ids(tenant_id, where, limit, scope))

    def _matching_ids(self, tenant_id: str, where: FilterNode, limit: int,
                      scope: str | None) -> list[str]:
        terms: list[dict[str, Any]] = [{"term": {"tenant_id": tenant_id}}]
        if scope is not None:
            terms.append({"term": {"user_id": scope}})
        body = {"size": min(limit, LOOKUP_SIZE), "_source": ["memory_id", "user_id"],
                "query": {"bool": {"filter": [*terms, compile_filter_dsl(where)]}}}
        with _classified():
            hits = self._client.search(index=self._index, body=body,
                                       **self._timeout())["hits"]["hits"]
        found = []
        for hit in hits:
            owners = hit["_source"].get("user_id")
            owner = owners[0] if isinstance(owners, list) else owners
            if scope is not None or (isinstance(owner, str) and not is_shared_scope(owner)):
                found.append(hit["_source"]["memory_id"])
        return list(dict.fromkeys(found))

    # --- requests -------------------------------------------------------------------
    def _dense_search(self, query: list[float], size: int, scope: list[dict]) -> dict[str, Any]:
        # The filter sits inside the knn clause (efficient filtering), never in a
        # post_filter, which would drop hits after the top k had been chosen.
        # The vector comes back too: search diversifies results by their cosines.
        knn = {"vector": query, "k": size, "filter": {"bool": {"filter": scope}}}
        return {"size": size, "_source": ["memory_id", VECTOR_FIELD],
                "query": {"knn": {VECTOR_FIELD: knn}}}

    @staticmethod
    def _lexical_search(text: str, size: int, scope: list[dict]) -> dict[str, Any]:
        return {"size": size, "_source": ["memory_id"], "query": {"bool": {
            "must": [{"match": {TEXT_FIELD: text}}], "filter": scope}}}

    def _msearch(self, searches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = []
        for search in searches:
            body += [{}, search]
        with _classified():
            responses = self._client.msearch(body=body, index=self._index,
                                             **self._timeout())["responses"]
        for response in responses:
            if "error" in response:
                status = response.get("status", 500)
                message = f"OpenSearch search failed ({status}): {response['error']}"
                if status in WAKING_STATUS:
                    raise IndexWaking(message, WAKE_RETRY_AFTER_SECONDS)
                raise RetryableError(message) if _retryable(status) else PermanentError(message)
        return responses

    def _dense_scores(self, response: dict[str, Any]) -> dict[str, float]:
        return {memory_id: cosine_from_score(score, self._space_type)
                for memory_id, score in _best_scores(response).items()}

    def _stored_documents(self, tenant_id: str, ids: Sequence[str]) -> list[str]:
        """Document ids of these memories, for an index whose ids are generated."""
        documents: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), LOOKUP_CHUNK):
            body = {"size": LOOKUP_SIZE, "_source": False, "query": {"bool": {"filter": [
                {"term": {"tenant_id": tenant_id}}, {"terms": {"memory_id": chunk}}]}}}
            with _classified():
                response = self._client.search(index=self._index, body=body,
                                               **self._timeout())
            documents += [hit["_id"] for hit in response["hits"]["hits"]]
        return documents

    def _index_action(self, memory: Memory, vector: np.ndarray,
                      doc_id: str | None) -> dict[str, Any]:
        action = {"_op_type": "index", "_index": self._index,
                  "_source": memory_document(memory, vector)}
        if doc_id is not None:
            action["_id"] = doc_id
        return action

    def _delete_action(self, doc_id: str) -> dict[str, Any]:
        return {"_op_type": "delete", "_index": self._index, "_id": doc_id}

    def _bulk(self, actions: list[dict[str, Any]]) -> int:
        """The actions that took effect (a delete of a missing document does not)."""
        if not actions:
            return 0
        with _classified():
            done, errors = helpers.bulk(
                self._client, actions, chunk_size=BULK_CHUNK_DOCS,
                max_chunk_bytes=BULK_CHUNK_BYTES, max_retries=BULK_RETRIES,
                initial_backoff=BULK_BACKOFF_SECONDS,
                raise_on_error=False, **self._timeout())
        failures = [item for error in errors for op, item in error.items()
                    if not (op == "delete" and item.get("status") == 404)]  # already gone
        if failures:
            message = (f"OpenSearch refused {len(failures)} of {len(actions)} writes; first: "
                       f"{failures[0].get('status')} {failures[0].get('error')}")
            if all(f.get("status") in WAKING_STATUS for f in failures):
                raise IndexWaking(message, WAKE_RETRY_AFTER_SECONDS)
            if all(_retryable(f.get("status", 500)) for f in failures):
                raise RetryableError(message)
            raise PermanentError(message)
        return done

    def _check_mapping(self) -> None:
        mappings = self._client.indices.get_mapping(index=self._index, **self._timeout())
        properties = next(iter(mappings.values()))["mappings"].get("properties", {})
        field = properties.get(VECTOR_FIELD, {})
        dimension = field.get("dimension")
        space_type = field.get("space_type") or field.get("method", {}).get("space_type")
        if (dimension, space_type) != (self._dimension, self._space_type):
            raise ValueError(
                f"index {self._index} holds {dimension}-dimension {space_type} vectors; this "
                f"deployment writes {self._dimension}-dimension {self._space_type}: a new "
                f"embedding model needs a new index")

    # --- a waking index ---------------------------------------------------------------
    def _patiently(self, call: Callable[[], T]) -> T:
        """`call()`, repeated with backoff while the index is waking (IndexWaking), until
        the wake budget is spent; then IndexWaking says what is happening. A call made
        inside another shares the outer call's budget, and a call made within 29 s of
        the start of an earlier wait shares that wait's deadline (past it: one attempt)."""
        if getattr(self._call, "deadline", None) is not None:
            return call()
        started = time.monotonic()
        sharing = started - self._wait_began < API_TIMEOUT_SECONDS
        deadline = (self._wait_began if sharing else started) + self._wake_wait
        self._call.deadline = deadline
        delay = WAKE_FIRST_DELAY_SECONDS
        try:
            while True:
                try:
                    return call()
                except IndexWaking as exc:
                    if not sharing:
                        self._wait_began, sharing = started, True
                    left = deadline - time.monotonic()
                    if left < WAKE_FIRST_DELAY_SECONDS / 5:
                        waited = time.monotonic() - started
                        raise IndexWaking(
                            f"the memory index is not answering yet (waited {waited:.0f} s): "
                            "an OpenSearch Serverless collection that scaled to zero takes "
                            "10-30 s to get its capacity back; retry in "
                            f"{WAKE_RETRY_AFTER_SECONDS} s ({exc.message})",
                            WAKE_RETRY_AFTER_SECONDS) from exc
                    time.sleep(min(delay, left))  # the last attempt at the deadline
                    delay = min(delay * 2, WAKE_MAX_DELAY_SECONDS)
        finally:
            self._call.deadline = None

    def _timeout(self) -> dict[str, float]:
        """One request's timeout: never past the wake budget (so the API answers before
        API Gateway's 29 s), at least a second."""
        deadline = getattr(self._call, "deadline", None)
        if deadline is None or self._wake_wait == 0:
            return {"request_timeout": REQUEST_TIMEOUT_SECONDS}
        left = deadline - time.monotonic()
        return {"request_timeout": max(1.0, min(REQUEST_TIMEOUT_SECONDS, left))}

    def _unit_rows(self, vectors: np.ndarray, expected_rows: int) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (expected_rows, self._dimension):
            raise ValueError(f"expected {expected_rows} vectors of {self._dimension} "
                             f"dimensions, got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        # A zero row is a memory found by its words alone (what the assistant said): kept
        # zero here, and its document carries no vector (k-NN refuses a zero vector).
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)


def memory_document(memory: Memory, vector: np.ndarray) -> dict[str, Any]:
    """What the index stores for a memory (its vector unit length already)."""
    doc: dict[str, Any] = {
        "memory_id": memory.id,
        "tenant_id": memory.tenant_id,
        # the owner first, then the shared scopes it is readable in
        "user_id": scopes if len(scopes := read_scopes(memory)) > 1 else memory.user_id,
        "memory_type": memory.memory_type.value,
        "tags": list(memory.tags),
        INFO_FIELD: [info_pair(k, v) for k, v in sorted(memory.info.items())],
        "create_time": memory.create_time,
        "update_time": memory.update_time,
        TEXT_FIELD: memory.index_text,
    }
    if vector.any():
        doc[VECTOR_FIELD] = vector.tolist()
    for name in ("agent_id", "app_id", "conversation_id"):
        if getattr(memory, name) is not None:
            doc[name] = getattr(memory, name)
    return doc


def _vectors(response: dict[str, Any]) -> dict[str, np.ndarray]:
    """memory_id → its unit vector, from hits that carry one."""
    vectors = {}
    for hit in response["hits"]["hits"]:
        vector = hit["_source"].get(VECTOR_FIELD)
        if vector is not None:
            vector = np.asarray(vector, dtype=np.float32)
            vectors[hit["_source"]["memory_id"]] = vector / (np.linalg.norm(vector) or 1.0)
    return vectors


def _best_scores(response: dict[str, Any]) -> dict[str, float]:
    """memory_id → score; with generated ids a memory may briefly have two documents."""
    scores: dict[str, float] = {}
    for hit in response["hits"]["hits"]:
        memory_id = hit["_source"]["memory_id"]
        scores[memory_id] = max(scores.get(memory_id, float("-inf")), float(hit["_score"]))
    return scores


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _retryable(status: Any) -> bool:
    return status == 429 or (isinstance(status, int) and status >= 500)


@contextmanager
def _classified() -> Iterator[None]:
    """What a waking or overloaded index answers (no answer in time, 429, 502-504)
    becomes IndexWaking, other 5xx RetryableError (both retried by the state machine); a
    4xx is a bug in the request and goes up as it is."""
    try:
        yield
    except TransportConnectionError as exc:  # includes timeouts
        raise IndexWaking(f"OpenSearch did not answer: {exc}",
                          WAKE_RETRY_AFTER_SECONDS) from exc
    except TransportError as exc:
        if exc.status_code in WAKING_STATUS:
            raise IndexWaking(f"OpenSearch busy or waking ({exc.status_code}): {exc.error}",
                              WAKE_RETRY_AFTER_SECONDS) from exc
        if _retryable(exc.status_code):
            raise RetryableError(f"OpenSearch busy or failing ({exc.status_code}): "
                                 f"{exc.error}") from exc
        raise


def opensearch_client(endpoint: str, region: str, service: str,
                      session: boto3.session.Session | None = None) -> OpenSearch:
    """A SigV4-signing client: service "es" for a managed domain, "aoss" for Serverless.
    `endpoint` is the domain or collection endpoint, with or without https://. Requests
    are signed with `session`'s credentials (the AWS profile's own session: a second one
    costs a Lambda cold start ~15 ms), else a new session's."""
    if service not in ("es", "aoss"):
        raise ValueError(f"service must be 'es' or 'aoss', not {service!r}")
    url = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    plain = url.scheme == "http"  # a local stand-in only (bench/coldstart.py); AWS is https
    credentials = (session or boto3.Session()).get_credentials()
    if credentials is None:
        raise ValueError("no AWS credentials to sign OpenSearch requests with")
    return OpenSearch(
        hosts=[{"host": url.hostname, "port": url.port or (80 if plain else 443)}],
        http_auth=Urllib3AWSV4SignerAuth(credentials, region, service),
        use_ssl=not plain,
        verify_certs=not plain,
        connection_class=Urllib3HttpConnection,
        # No retries in the transport: the index adapter retries a waking or busy
        # collection itself, within a budget that keeps the API under 29 s.
        timeout=REQUEST_TIMEOUT_SECONDS,
        max_retries=0,
        retry_on_timeout=False,
    )
