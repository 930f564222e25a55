"""MemoryIndex for the embedded profile: exact dense search and BM25, both in memory,
persisted in a SQLite file of its own.

Every (tenant_id, user_id) is a separate partition with its own matrix, inverted index
and length statistics, so another user's rows are never scored at all. A memory shared
beyond its owner (public, or written into knowledge bases) sits in the partition of each
shared scope too (models/knowledge.py `read_scopes`): searching a scope is searching that
partition, and removing the memory takes it out of every one. Exact search is
a single matrix-vector product (3-7 ms for 100k × 384 on two cores), which is
cheaper than maintaining an ANN graph at this size and never loses recall under filters.

SQLite is the copy that survives a restart; on open everything is loaded back into
memory. It keeps plain rows (no FTS tables, whose segments would keep a deleted row's
terms), deleted with `secure_delete`, and `checkpoint()` truncates the WAL after an
erasure, so no erased text stays in the file or its WAL. One connection and one lock
serialise writes and searches alike: numpy already uses every core for one search, so
running searches side by side would not be faster.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engram.models.domain import Memory, MemoryStatus, MemoryType
from engram.models.filters import TIME_FIELDS, Condition, FilterNode, facet_values
from engram.models.knowledge import is_shared_scope, read_scopes
from engram.ports import IndexHit, IndexQuery
from engram.retrieval.fusion import candidate_count
from engram.retrieval.lexical import bm25_idf, bm25_term_scores, memory_terms, tokenize

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    tenant_id TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL,
    vector BLOB NOT NULL, tokens TEXT NOT NULL, memory TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
"""

SCRUBBED_VERSION = 1  # user_version from which the file has been written with secure_delete
COMMON_TERM_SHARE = 0.8
COMMON_TERM_MIN_ROWS = 1000  # below this, reading every posting is cheap anyway
# When fewer than this share of a partition's rows pass the type filter, copying them out
# and scoring only those beats scoring every row (measured at 100k:
# copying costs about 0.2 ms per 1 % of rows, a full product 3-7 ms).
GATHER_BELOW = 0.1
INITIAL_CAPACITY = 16
NEAREST_BATCH = 64  # query rows per matrix product in nearest(): 64 × 100k scores = 25 MB

TYPE_CODES = {memory_type: code for code, memory_type in enumerate(MemoryType)}

PartitionKey = tuple[str, str]  # (tenant_id, user_id)
EntryKey = tuple[str, str]  # (tenant_id, memory id)


class LocalMemoryIndex:
    """Implements MemoryIndex. Only activated memories are indexed: upserting a memory
    in any other status removes it."""

    def __init__(self, path: Path | None = None):
        self._lock = threading.RLock()
        self._db = _connect(path)
        self._partitions: dict[PartitionKey, _Partition] = {}
        self._partition_of: dict[EntryKey, set[PartitionKey]] = {}
        self._dimension: int | None = None
        self._load()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def upsert(self, memories: Sequence[Memory], vectors: np.ndarray) -> None:
        if not memories:
            return
        vectors = _unit_rows(vectors, len(memories))
        # An id repeated within one batch: the last occurrence wins, in SQLite and in memory.
        latest = {(memory.tenant_id, memory.id): i for i, memory in enumerate(memories)}
        batch = [(memories[i], vectors[i]) for i in latest.values()]
        snapshots = [
            (*_snapshot(memory), vector)
            for memory, vector in batch
            if memory.status == MemoryStatus.activated
        ]
        active = [(memory, body, vector,
                   memory_terms(memory.memory_key, memory.memory_value, memory.context))
                  for memory, body, vector in snapshots]
        retired = [
            (memory.tenant_id, memory.id)
            for memory, _ in batch
            if memory.status != MemoryStatus.activated
        ]
        with self._lock:
            self._check_dimension(vectors.shape[1])
            self._write(
                (
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                    [_entry_row(memory, body, vector, tokens)
                     for memory, body, vector, tokens in active],
                ),
                ("DELETE FROM entries WHERE tenant_id = ? AND id = ?", retired),
            )
            for key in retired:
                self._drop(key)
            for memory, _, vector, tokens in active:
                self._place(memory, vector, tokens)

    def remove(self, tenant_id: str, ids: Sequence[str]) -> None:
        keys = [(tenant_id, memory_id) for memory_id in ids]
        with self._lock:
            self._write(("DELETE FROM entries WHERE tenant_id = ? AND id = ?", keys))
            for key in keys:
                self._drop(key)

    def remove_user(self, tenant_id: str, user_id: str, ids: Sequence[str] = ()) -> int:
        """The user's partition holds every row of theirs (`ids` adds nothing here); each
        goes from the shared scopes' partitions too."""
        with self._lock:
            partition = self._partitions.get((tenant_id, user_id))
            keys = [(tenant_id, memory_id) for memory_id in (partition.ids if partition else [])]
            self._write(("DELETE FROM entries WHERE tenant_id = ? AND id = ?", keys))
            for key in keys:
                self._drop(key)
            return len(keys)

    def checkpoint(self) -> None:
        """Copy the WAL into the file and truncate it to zero bytes."""
        with self._lock:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise RuntimeError("the index's WAL checkpoint after an erasure did not complete")

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
        """Candidates from the top max(4k, 50) by dense score and the top max(4k, 50) by
        BM25, each with both scores, best dense first."""
        return self.search_groups(tenant_id, user_id, vector, text, [IndexQuery(types, k)],
                                  where)[0]

    def search_groups(
        self,
        tenant_id: str,
        user_id: str,
        vector: np.ndarray,
        text: str,
        queries: Sequence[IndexQuery],
        where: FilterNode | None = None,
    ) -> list[list[IndexHit]]:
        """`search` for each query, sharing one dense product, one BM25 pass and one
        filter mask between them."""
        query = _unit_rows(np.asarray(vector, dtype=np.float32).reshape(1, -1), 1)[0]
        terms = tokenize(text)
        groups = [(frozenset(MemoryType(t) for t in q.types),
                   candidate_count(q.k) if q.k > 0 else 0)
                  for q in queries]
        with self._lock:
            partition = self._partitions.get((tenant_id, user_id))
            if partition is None or not any(w and limit for w, limit in groups):
                return [[] for _ in queries]
            self._check_dimension(query.shape[0])
            return partition.search(query, terms, groups, where)

    def nearest(
        self,
        tenant_id: str,
        user_id: str,
        vectors: np.ndarray,
        k: int,
        types: Sequence[MemoryType],
    ) -> list[list[IndexHit]]:
        """The k closest rows by cosine for each query row, from one matrix product."""
        queries = _unit_rows(vectors, len(vectors))
        wanted = frozenset(MemoryType(t) for t in types)
        with self._lock:
            partition = self._partitions.get((tenant_id, user_id))
            if partition is None or k <= 0 or not wanted or len(queries) == 0:
                return [[] for _ in range(len(queries))]
            self._check_dimension(queries.shape[1])
            return partition.nearest(queries, k, wanted)

    def matching_ids(self, tenant_id: str, where: FilterNode, limit: int,
                     scope: str | None = None) -> list[str]:
        """From the partitions of the tenant's users (a memory is in its owner's once), or
        from the one of `scope`."""
        found: list[str] = []
        with self._lock:
            for (tenant, owner), partition in self._partitions.items():
                if tenant != tenant_id or (
                        owner != scope if scope is not None else is_shared_scope(owner)):
                    continue
                rows = np.flatnonzero(partition._filter_mask(where))
                found += [partition.ids[r] for r in rows.tolist()]
                if len(found) >= limit:
                    return found[:limit]
        return found

    # --- state ----------------------------------------------------------------------
    def _load(self) -> None:
        rows = self._db.execute("SELECT vector, tokens, memory FROM entries ORDER BY rowid")
        for blob, tokens, body in rows:
            vector = np.frombuffer(blob, dtype=np.float32)
            self._check_dimension(vector.shape[0])
            self._place(Memory.model_validate_json(body), vector, json.loads(tokens))

    def _place(self, memory: Memory, vector: np.ndarray, tokens: list[str]) -> None:
        entry = (memory.tenant_id, memory.id)
        targets = {(memory.tenant_id, scope) for scope in read_scopes(memory)}
        # partitions it no longer belongs to (another owner, a scope it left)
        for key in self._partition_of.get(entry, set()) - targets:
            self._leave(key, memory.id)
        for target in targets:
            partition = self._partitions.get(target)
            if partition is None:
                partition = self._partitions[target] = _Partition(len(vector))
            partition.put(memory, vector, tokens)
        self._partition_of[entry] = targets

    def _drop(self, entry: EntryKey) -> None:
        for key in self._partition_of.pop(entry, set()):
            self._leave(key, entry[1])

    def _leave(self, key: PartitionKey, memory_id: str) -> None:
        partition = self._partitions[key]
        partition.remove(memory_id)
        if partition.size == 0:
            del self._partitions[key]

    def _check_dimension(self, dimension: int) -> None:
        if self._dimension is None:
            self._dimension = dimension
        elif dimension != self._dimension:
            raise ValueError(
                f"vectors have {dimension} dimensions, the index holds {self._dimension}"
            )

    def _write(self, *statements: tuple[str, list[tuple]]) -> None:
        self._db.execute("BEGIN")
        try:
            for sql, rows in statements:
                self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise


class _Partition:
    """One user's rows 0..size-1, without holes: removal moves the last row into the gap,
    so the matrix stays contiguous and a search never skips tombstones."""

    def __init__(self, dimension: int):
        self.size = 0
        self.vectors = np.empty((INITIAL_CAPACITY, dimension), dtype=np.float32)
        self.doc_lengths = np.empty(INITIAL_CAPACITY, dtype=np.float32)
        self.type_codes = np.empty(INITIAL_CAPACITY, dtype=np.int8)
        self.ids: list[str] = []
        self.memories: list[Memory] = []
        self.term_counts: list[Counter[str]] = []
        self.row_of: dict[str, int] = {}
        self.postings: dict[str, dict[int, int]] = {}  # term → {row: term frequency}
        # term → (rows, frequencies) as arrays, built on a term's first query since its
        # last change: converting a long postings dict costs more than scoring it
        self.posting_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.facet_keys: list[frozenset[tuple[str, str]]] = []
        self.facets: dict[tuple[str, str], set[int]] = {}  # (field, value) → rows
        self.times = {f: np.empty(INITIAL_CAPACITY, dtype=np.int64) for f in TIME_FIELDS}
        self.total_length = 0
        self.type_counts: Counter[MemoryType] = Counter()

    # --- writes ---------------------------------------------------------------------
    def put(self, memory: Memory, vector: np.ndarray, tokens: list[str]) -> None:
        if memory.id in self.row_of:
            self.remove(memory.id)
        row = self.size
        self._reserve(row + 1)
        counts = Counter(tokens)
        self.vectors[row] = vector
        self.doc_lengths[row] = len(tokens)
        self.type_codes[row] = TYPE_CODES[memory.memory_type]
        self.ids.append(memory.id)
        self.memories.append(memory)
        self.term_counts.append(counts)
        self.row_of[memory.id] = row
        for term, count in counts.items():
            self.postings.setdefault(term, {})[row] = count
            self.posting_arrays.pop(term, None)
        facets = frozenset(facet_values(memory))
        self.facet_keys.append(facets)
        for facet in facets:
            self.facets.setdefault(facet, set()).add(row)
        for name, column in self.times.items():
            column[row] = getattr(memory, name)
        self.total_length += len(tokens)
        self.type_counts[memory.memory_type] += 1
        self.size += 1

    def remove(self, memory_id: str) -> None:
        row = self.row_of.pop(memory_id)
        for term in self.term_counts[row]:
            rows = self.postings[term]
            del rows[row]
            self.posting_arrays.pop(term, None)
            if not rows:
                del self.postings[term]
        for facet in self.facet_keys[row]:
            rows = self.facets[facet]
            rows.discard(row)
            if not rows:
                del self.facets[facet]
        self.total_length -= int(self.doc_lengths[row])
        self.type_counts[self.memories[row].memory_type] -= 1
        last = self.size - 1
        if row != last:
            self._move(last, row)
        self.ids.pop()
        self.memories.pop()
        self.term_counts.pop()
        self.facet_keys.pop()
        self.size = last

    def _move(self, source: int, target: int) -> None:
        self.vectors[target] = self.vectors[source]
        self.doc_lengths[target] = self.doc_lengths[source]
        self.type_codes[target] = self.type_codes[source]
        self.ids[target] = self.ids[source]
        self.memories[target] = self.memories[source]
        self.term_counts[target] = self.term_counts[source]
        self.facet_keys[target] = self.facet_keys[source]
        for column in self.times.values():
            column[target] = column[source]
        self.row_of[self.ids[target]] = target
        for term in self.term_counts[target]:
            rows = self.postings[term]
            rows[target] = rows.pop(source)
            self.posting_arrays.pop(term, None)
        for facet in self.facet_keys[target]:
            rows = self.facets[facet]
            rows.discard(source)
            rows.add(target)

    def _reserve(self, needed: int) -> None:
        capacity = len(self.doc_lengths)
        if needed <= capacity:
            return
        capacity = max(needed, capacity * 2)
        self.vectors = _grown(self.vectors, capacity, self.size)
        self.doc_lengths = _grown(self.doc_lengths, capacity, self.size)
        self.type_codes = _grown(self.type_codes, capacity, self.size)
        self.times = {f: _grown(c, capacity, self.size) for f, c in self.times.items()}

    # --- search ---------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        terms: list[str],
        groups: list[tuple[frozenset[MemoryType], int]],
        where: FilterNode | None,
    ) -> list[list[IndexHit]]:
        admitted = None if where is None else self._filter_mask(where)
        masks = []  # per group: the eligible rows, None for every row
        for wanted, limit in groups:
            mask = self._type_mask(wanted) if wanted and limit else np.zeros(self.size, bool)
            if admitted is not None:
                mask = admitted if mask is None else mask & admitted
            masks.append(mask)
        union = None if any(m is None for m in masks) else np.logical_or.reduce(masks)
        dense = self._dense_scores(query, union)
        lexical = self._bm25_scores(terms)
        found = np.flatnonzero(lexical)
        results = []
        for mask, (_, limit) in zip(masks, groups, strict=True):
            pool = None if mask is None else np.flatnonzero(mask)
            if pool is not None and len(pool) == 0:
                results.append([])
                continue
            rows = set(_best_rows(dense, pool, limit))
            rows.update(_best_rows(lexical, found if mask is None else found[mask[found]], limit))
            rows = sorted(rows)
            vectors = self.vectors[rows]  # a copy: rows move when others are removed
            hits = [IndexHit(id=self.ids[r], dense=float(dense[r]), lexical=float(lexical[r]),
                             vector=vector) for r, vector in zip(rows, vectors, strict=True)]
            hits.sort(key=lambda hit: (-hit.dense, hit.id))
            results.append(hits)
        return results

    def nearest(self, queries: np.ndarray, k: int, wanted: frozenset[MemoryType]
                ) -> list[list[IndexHit]]:
        mask = self._type_mask(wanted)
        pool = np.arange(self.size) if mask is None else np.flatnonzero(mask)
        if len(pool) == 0:
            return [[] for _ in range(len(queries))]
        # Score the wanted rows only, copied out when few (as in _dense_scores).
        gather = len(pool) < GATHER_BELOW * self.size
        matrix = np.take(self.vectors, pool, axis=0) if gather else self.vectors[: self.size]
        results = []
        for start in range(0, len(queries), NEAREST_BATCH):
            scores = queries[start:start + NEAREST_BATCH] @ matrix.T
            if not gather:
                scores = scores if mask is None else scores[:, pool]
            for row_scores in scores:
                top = _top(row_scores, min(k, len(pool)))
                results.append([IndexHit(id=self.ids[pool[t]], dense=float(row_scores[t]),
                                         lexical=0.0) for t in top.tolist()])
        return results

    def _type_mask(self, wanted: frozenset[MemoryType]) -> np.ndarray | None:
        """Rows whose type is wanted, or None when that is every row (the common case)."""
        if all(t in wanted for t, count in self.type_counts.items() if count > 0):
            return None
        is_wanted = np.zeros(len(TYPE_CODES), dtype=bool)
        is_wanted[[TYPE_CODES[t] for t in wanted]] = True
        return is_wanted[self.type_codes[: self.size]]  # a table lookup, cheaper than np.isin

    def _filter_mask(self, node: FilterNode) -> np.ndarray:
        """Rows the filter admits, from the facet postings and time columns: the same
        answer as `node.matches` on every row, without touching the rows."""
        mask = np.ones(self.size, dtype=bool)
        for child in node.all_of:
            mask &= self._condition_mask(child)
        if node.any_of:
            either = np.zeros(self.size, dtype=bool)
            for child in node.any_of:
                either |= self._condition_mask(child)
            mask &= either
        return mask

    def _condition_mask(self, node: Condition | FilterNode) -> np.ndarray:
        if isinstance(node, FilterNode):
            return self._filter_mask(node)
        if node.field in self.times:
            column = self.times[node.field][: self.size]
            return {"eq": np.equal, "gt": np.greater, "gte": np.greater_equal,
                    "lt": np.less, "lte": np.less_equal}[node.op](column, node.value)
        values = node.value if node.op == "in" else [node.value]
        mask = np.zeros(self.size, dtype=bool)
        for value in values:
            rows = self.facets.get((node.field, value))
            if rows:
                mask[np.fromiter(rows, dtype=np.intp, count=len(rows))] = True
        return mask

    def _dense_scores(self, query: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Cosine per row (rows and query are unit length). With a mask, only its rows are
        meaningful: callers never read the others."""
        if mask is None or (pool := np.flatnonzero(mask)).size >= GATHER_BELOW * self.size:
            return self.vectors[: self.size] @ query
        scores = np.zeros(self.size, dtype=np.float32)
        scores[pool] = np.take(self.vectors, pool, axis=0) @ query
        return scores

    def _bm25_scores(self, terms: list[str]) -> np.ndarray:
        scores = np.zeros(self.size, dtype=np.float32)
        if self.total_length == 0:
            return scores
        average_length = self.total_length / self.size
        for term in set(terms):
            postings = self.postings.get(term)
            if not postings:
                continue
            found = len(postings)
            if self.size >= COMMON_TERM_MIN_ROWS and found > COMMON_TERM_SHARE * self.size:
                continue  # in nearly every row ("user"): idf ≈ 0, yet the costliest to read
            rows, freqs = self._posting_array(term, postings)
            scores[rows] += bm25_term_scores(bm25_idf(self.size, found), freqs,
                                             self.doc_lengths[rows], average_length)
        return scores

    def _posting_array(self, term: str, postings: dict[int, int]
                       ) -> tuple[np.ndarray, np.ndarray]:
        arrays = self.posting_arrays.get(term)
        if arrays is None:
            count = len(postings)
            arrays = self.posting_arrays[term] = (
                np.fromiter(postings.keys(), dtype=np.intp, count=count),
                np.fromiter(postings.values(), dtype=np.float32, count=count))
        return arrays


def _best_rows(scores: np.ndarray, pool: np.ndarray | None, limit: int) -> list[int]:
    """Up to `limit` rows of `pool` (every row when None) with the highest scores, best
    first. Ranking the pool alone, rather than all rows with -inf for the rest, keeps
    argpartition off long runs of equal values, where it is slow."""
    pool_scores = scores if pool is None else scores[pool]
    ranked = _top(pool_scores, min(limit, len(pool_scores)))
    return (ranked if pool is None else pool[ranked]).tolist()


def _top(scores: np.ndarray, count: int) -> np.ndarray:
    """Positions of the `count` highest scores, highest first."""
    cut = len(scores) - count
    best = np.argpartition(scores, cut)[cut:] if cut > 0 else np.arange(len(scores))
    return best[np.argsort(-scores[best], kind="stable")]


def _unit_rows(vectors: np.ndarray, expected_rows: int) -> np.ndarray:
    """Float32 rows scaled to unit length, so a dot product is the cosine."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != expected_rows:
        raise ValueError(
            f"expected {expected_rows} vectors as a 2-d array, got shape {vectors.shape}"
        )
    if not np.isfinite(vectors).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0).astype(np.float32)


def _grown(array: np.ndarray, capacity: int, used: int) -> np.ndarray:
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


def _snapshot(memory: Memory) -> tuple[Memory, str]:
    """A copy through JSON, and that JSON (the row's): the caller may go on mutating its
    object, and the index then holds exactly what a reload from SQLite would give (and
    faster than a deep copy)."""
    body = memory.model_dump_json()
    return Memory.model_validate_json(body), body


def _entry_row(memory: Memory, body: str, vector: np.ndarray, tokens: list[str]) -> tuple:
    return (
        memory.tenant_id,
        memory.id,
        memory.user_id,
        vector.astype("<f4").tobytes(),
        json.dumps(tokens, ensure_ascii=False),
        body,
    )


def _connect(path: Path | None) -> sqlite3.Connection:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        ":memory:" if path is None else path, check_same_thread=False, isolation_level=None
    )
    # A row is ~2.5 KB (a 1.5 KB vector plus the memory): with the default 4 KB pages each
    # would take a page of its own. Only takes effect when the file is created.
    db.execute("PRAGMA page_size=16384")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA secure_delete=ON")  # deleted rows and freed pages are zeroed
    existed = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'entries'").fetchone()
    db.executescript(SCHEMA)
    if db.execute("PRAGMA user_version").fetchone()[0] < SCRUBBED_VERSION:
        if existed:
            # Written before secure_delete: rows deleted or replaced back then may linger
            # in free space. Rewritten once, so an erasure leaves nothing behind.
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute(f"PRAGMA user_version = {SCRUBBED_VERSION}")
    return db
