import math
import random
import threading
from collections import Counter

import numpy as np
import pytest

from engram.adapters.local_index import LocalMemoryIndex
from engram.models.domain import Memory, MemoryStatus, MemoryType
from engram.models.filters import compile_filter
from engram.ports import IndexQuery
from engram.retrieval.lexical import tokenize

DIM = 16
ALL_TYPES = list(MemoryType)
FACTS = [MemoryType.long_term]


def memory(text: str, user: str = "u1", tenant: str = "t1", **fields) -> Memory:
    fields.setdefault("memory_type", MemoryType.long_term)
    return Memory(tenant_id=tenant, user_id=user, memory_key=text, memory_value="", **fields)


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def stack(*vectors: np.ndarray) -> np.ndarray:
    return np.stack(vectors)


def search(index, vector, text="", k=10, user="u1", tenant="t1", types=ALL_TYPES, where=None):
    return index.search(tenant, user, vector, text, k, types, where)


@pytest.fixture
def index():
    idx = LocalMemoryIndex(None)
    yield idx
    idx.close()


def test_hits_carry_cosine_and_bm25_and_come_best_dense_first(index):
    a, b, c = memory("hotel in paris"), memory("dog named rex"), memory("cheap hotels")
    index.upsert([a, b, c], stack(unit(1), unit(2), unit(3)))

    hits = search(index, unit(2), "hotel")

    assert hits[0].id == b.id
    assert hits[0].dense == pytest.approx(1.0, abs=1e-5)
    assert [h.dense for h in hits] == sorted((h.dense for h in hits), reverse=True)
    by_id = {h.id: h for h in hits}
    assert by_id[a.id].dense == pytest.approx(float(unit(1) @ unit(2)), abs=1e-5)
    assert by_id[a.id].lexical > 0 and by_id[c.id].lexical > 0
    assert by_id[b.id].lexical == 0.0


def test_candidates_are_the_union_of_dense_and_lexical_tops(index):
    rng = np.random.default_rng(7)
    query = unit(0)
    fillers = [memory(f"filler note {i}") for i in range(300)]
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    keyword_only = memory("zanzibar itinerary")
    index.upsert(fillers + [keyword_only], np.vstack([vectors, -query]))

    hits = search(index, query, "zanzibar", k=5)

    by_id = {h.id: h for h in hits}
    assert keyword_only.id in by_id  # the worst dense row, found by BM25 alone
    assert by_id[keyword_only.id].dense == pytest.approx(-1.0, abs=1e-5)
    assert 50 <= len(hits) <= 51  # max(4k, 50) dense candidates plus the lexical one
    cosines = (vectors @ query) / np.linalg.norm(vectors, axis=1)
    expected_dense = np.argsort(-cosines)[:50]
    assert {fillers[i].id for i in expected_dense} <= set(by_id)


def test_candidate_count_grows_with_k(index):
    items = [memory(f"note {i}") for i in range(100)]
    index.upsert(items, np.random.default_rng(1).standard_normal((100, DIM)))
    assert len(search(index, unit(0), k=20)) == 80


def test_other_users_and_tenants_are_never_returned(index):
    vector = unit(5)
    mine = memory("my passport number", user="alice", tenant="acme")
    same_text_other_user = memory("my passport number", user="bob", tenant="acme")
    same_text_other_tenant = memory("my passport number", user="alice", tenant="globex")
    index.upsert(
        [mine, same_text_other_user, same_text_other_tenant], stack(vector, vector, vector)
    )

    hits = search(index, vector, "passport number", k=10, user="alice", tenant="acme")

    assert [h.id for h in hits] == [mine.id]
    assert search(index, vector, "passport", user="carol", tenant="acme") == []


def test_same_id_in_two_tenants_are_separate_memories(index):
    first = memory("shared id", tenant="t1")
    second = first.model_copy(update={"tenant_id": "t2"})
    index.upsert([first, second], stack(unit(1), unit(2)))

    index.remove("t1", [first.id])

    assert search(index, unit(1), tenant="t1") == []
    assert [h.id for h in search(index, unit(1), tenant="t2")] == [second.id]


def test_types_restrict_both_dense_and_lexical_candidates(index):
    fact = memory("likes green tea", memory_type=MemoryType.long_term)
    pref = memory("likes green tea", memory_type=MemoryType.preference)
    index.upsert([fact, pref], stack(unit(1), unit(1)))

    assert [h.id for h in search(index, unit(1), "green tea", types=FACTS)] == [fact.id]
    assert search(index, unit(1), "green tea", types=[MemoryType.tool_schema]) == []
    assert search(index, unit(1), "green tea", types=[]) == []


@pytest.mark.parametrize("preference_share", [0.05, 0.9])  # gather path and mask path
def test_type_filter_matches_brute_force(index, preference_share):
    rng = np.random.default_rng(3)
    count = 400
    types = [
        MemoryType.preference if rng.random() < preference_share else MemoryType.long_term
        for _ in range(count)
    ]
    items = [memory(f"item {i}", memory_type=t) for i, t in enumerate(types)]
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    index.upsert(items, vectors)
    query = unit(9)

    hits = search(index, query, k=5, types=[MemoryType.preference])

    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    wanted = [i for i, t in enumerate(types) if t == MemoryType.preference]
    best = sorted(wanted, key=lambda i: -(normed[i] @ query))[:50]
    assert [h.id for h in hits] == [items[i].id for i in best]


def test_where_filter_reaches_past_the_first_window(index):
    rng = np.random.default_rng(4)
    query = unit(0)
    items = [memory(f"trip {i}") for i in range(1000)]
    vectors = rng.standard_normal((1000, DIM)).astype(np.float32)
    cosines = (vectors @ query) / np.linalg.norm(vectors, axis=1)
    tagged = [items[i] for i in np.argsort(cosines)[:3]]  # the three worst dense rows
    for item in tagged:
        item.tags = ["travel"]
    index.upsert(items, vectors)

    hits = search(index, query, "trip", k=5, where=compile_filter({"tags": {"contains": "travel"}}))

    assert {h.id for h in hits} == {item.id for item in tagged}


def test_where_filter_applies_to_lexical_candidates(index):
    rome = memory("flight to rome", agent_id="a1")
    oslo = memory("flight to oslo", agent_id="a2")
    index.upsert([rome, oslo], stack(unit(1), unit(2)))

    hits = search(index, unit(3), "flight", where=compile_filter({"agent_id": "a2"}))

    assert [h.id for h in hits] == [oslo.id]


def test_upsert_replaces_text_and_vector(index):
    item = memory("lives in berlin")
    index.upsert([item], stack(unit(1)))
    moved = item.model_copy(update={"memory_key": "lives in lisbon"})
    index.upsert([moved], stack(unit(2)))

    hits = search(index, unit(2), "berlin lisbon")

    assert len(hits) == 1
    assert hits[0].dense == pytest.approx(1.0, abs=1e-5)
    assert hits[0].lexical == pytest.approx(search(index, unit(2), "lisbon")[0].lexical)


def test_reupsert_with_another_user_moves_the_memory(index):
    item = memory("a note", user="u1")
    index.upsert([item], stack(unit(1)))
    index.upsert([item.model_copy(update={"user_id": "u2"})], stack(unit(1)))

    assert search(index, unit(1), user="u1") == []
    assert [h.id for h in search(index, unit(1), user="u2")] == [item.id]


def test_last_occurrence_of_an_id_in_a_batch_wins(index):
    item = memory("first wording")
    later = item.model_copy(update={"memory_key": "second wording"})
    index.upsert([item, later], stack(unit(1), unit(2)))

    hits = search(index, unit(2), "second")
    assert len(hits) == 1 and hits[0].lexical > 0
    assert hits[0].dense == pytest.approx(1.0, abs=1e-5)


def test_inactive_memories_are_not_indexed(index):
    item = memory("old address")
    index.upsert([item], stack(unit(1)))
    index.upsert([item.model_copy(update={"status": MemoryStatus.archived})], stack(unit(1)))
    index.upsert([memory("never active", status=MemoryStatus.deleted)], stack(unit(2)))

    assert search(index, unit(1), "address never") == []


def test_remove_and_unknown_ids(index):
    keep, gone = memory("keep me"), memory("remove me")
    index.upsert([keep, gone], stack(unit(1), unit(2)))

    index.remove("t1", [gone.id, "no-such-id"])
    index.remove("t1", [gone.id])

    assert [h.id for h in search(index, unit(2), "me")] == [keep.id]


def test_vectors_are_normalised_and_validated(index):
    index.upsert([memory("scaled")], stack(unit(1) * 7.5))
    assert search(index, unit(1) * 0.1)[0].dense == pytest.approx(1.0, abs=1e-5)

    with pytest.raises(ValueError):
        index.upsert([memory("wrong width")], np.ones((1, DIM + 1)))
    with pytest.raises(ValueError):
        index.upsert([memory("a"), memory("b")], stack(unit(1)))
    with pytest.raises(ValueError):
        search(index, np.ones(DIM + 1))
    assert search(index, unit(1), k=0) == []


def bm25(query: str, documents: dict[str, list[str]]) -> dict[str, float]:
    """Textbook BM25 (k1=1.2, b=0.75, Lucene idf), independent of the index."""
    count = len(documents)
    average = sum(len(d) for d in documents.values()) / count
    scores = dict.fromkeys(documents, 0.0)
    for term in set(tokenize(query)):
        found = sum(term in d for d in documents.values())
        if not found:
            continue
        idf = math.log(1 + (count - found + 0.5) / (found + 0.5))
        for doc_id, tokens in documents.items():
            tf = Counter(tokens)[term]
            if tf:
                scores[doc_id] += (
                    idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(tokens) / average))
                )
    return scores


def test_random_upserts_and_removes_match_a_brute_force_model(index):
    """Swap-remove and matrix growth must keep rows, vectors and postings aligned."""
    rng = random.Random(11)
    words = ["alpha", "beta", "gamma", "delta", "hotel", "train", "coffee", "paris"]
    live: dict[str, tuple[Memory, np.ndarray]] = {}
    for step in range(600):
        if live and rng.random() < 0.35:
            victim = rng.choice(sorted(live))
            index.remove("t1", [victim])
            del live[victim]
        else:
            text = " ".join(rng.choices(words, k=rng.randint(1, 6)))
            item = (
                memory(text)
                if not live or rng.random() < 0.7
                else live[rng.choice(sorted(live))][0]
            )
            item = item.model_copy(update={"memory_key": text})
            live[item.id] = (item, unit(step))
            index.upsert([item], stack(unit(step)))

    query, text = unit(999), "hotel coffee paris"
    hits = search(index, query, text, k=100)

    assert {h.id for h in hits} == set(live)
    expected_lexical = bm25(text, {i: tokenize(m.index_text) for i, (m, _) in live.items()})
    for hit in hits:
        assert hit.dense == pytest.approx(float(live[hit.id][1] @ query), abs=1e-5)
        assert hit.lexical == pytest.approx(expected_lexical[hit.id], rel=1e-4, abs=1e-6)


def test_reopening_the_file_gives_the_same_results(tmp_path):
    path = tmp_path / "index" / "memory-index.db"
    index = LocalMemoryIndex(path)
    items = [memory(f"note about topic {i}", user=f"u{i % 3}") for i in range(60)]
    index.upsert(items, np.random.default_rng(2).standard_normal((60, DIM)))
    index.remove("t1", [items[0].id, items[3].id])
    index.upsert([items[6].model_copy(update={"user_id": "u1"})], stack(unit(6)))
    index.upsert([items[9].model_copy(update={"status": MemoryStatus.archived})], stack(unit(9)))
    queries = [(user, unit(40 + n), "topic note 7") for n, user in enumerate(["u0", "u1", "u2"])]
    before = [search(index, vector, text, user=user) for user, vector, text in queries]
    index.close()

    reopened = LocalMemoryIndex(path)
    after = [search(reopened, vector, text, user=user) for user, vector, text in queries]
    reopened.close()

    assert after == before
    assert items[6].id in {h.id for h in after[1]}


def test_concurrent_upserts_removes_and_searches_keep_state_consistent(tmp_path):
    path = tmp_path / "index.db"
    index = LocalMemoryIndex(path)
    errors: list[BaseException] = []
    kept: dict[int, list[str]] = {}

    def writer(worker: int) -> None:
        rng = np.random.default_rng(worker)
        ids = []
        for batch in range(30):
            items = [
                memory(f"worker {worker} batch {batch} item {i}", user="shared") for i in range(5)
            ]
            index.upsert(items, rng.standard_normal((5, DIM)))
            ids.extend(item.id for item in items)
            index.remove("t1", [ids.pop(0)])  # swap-removes while others search
        kept[worker] = ids

    def reader() -> None:
        for n in range(100):
            hits = search(index, unit(n), "worker batch item", k=20, user="shared")
            assert len({h.id for h in hits}) == len(hits)
            assert all(-1.0001 <= h.dense <= 1.0001 for h in hits)

    def guarded(fn, *args):
        try:
            fn(*args)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(writer, w)) for w in range(4)]
    threads += [threading.Thread(target=guarded, args=(reader,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    expected = {i for ids in kept.values() for i in ids}
    assert len(expected) == 4 * 30 * 4
    found = {h.id for h in search(index, unit(0), k=len(expected), user="shared")}
    assert found == expected
    index.close()
    reopened = LocalMemoryIndex(path)
    assert {h.id for h in search(reopened, unit(0), k=len(expected), user="shared")} == expected
    reopened.close()


def test_later_changes_to_an_upserted_object_do_not_leak_in(index):
    item = memory("packing list")
    index.upsert([item], stack(unit(1)))
    item.tags.append("travel")
    item.agent_id = "a9"

    assert search(index, unit(1), where=compile_filter({"tags": {"contains": "travel"}})) == []
    assert search(index, unit(1), where=compile_filter({"agent_id": "a9"})) == []


FILTERS = [
    {"tags": {"contains": "travel"}},
    {"agent_id": "a1"},
    {"scene": {"in": ["chat", "mail"]}},
    {"info.biz_id": "b2"},
    {"create_time": {"gte": 1_500}},
    {"update_time": {"lt": 1_200}},
    {"or": [{"tags": "work"}, {"and": [{"agent_id": "a2"}, {"create_time": {"lte": 1_100}}]}]},
    {"and": [{"tags": "travel"}, {"tags": "work"}], "memory_type": "LongTermMemory"},
]


def test_filters_and_bm25_stay_exact_while_rows_move(index):
    """Facet postings, time columns and the cached posting arrays follow swap-removal,
    re-upserts and growth: every search along the way equals brute force over the live
    memories with FilterNode.matches."""
    rng = random.Random(5)
    words = ["alpha", "beta", "hotel", "train", "coffee"]
    live: dict[str, tuple[Memory, np.ndarray]] = {}
    for step in range(400):
        if live and rng.random() < 0.3:
            victim = rng.choice(sorted(live))
            index.remove("t1", [victim])
            del live[victim]
        else:
            fields = {
                "memory_key": " ".join(rng.choices(words, k=rng.randint(1, 4))),
                "tags": rng.sample(["travel", "work", "food"], k=rng.randint(0, 2)),
                "agent_id": rng.choice(["a1", "a2", None]),
                "info": {k: v for k, v in (("scene", rng.choice(["chat", "mail", "call"])),
                                           ("biz_id", rng.choice(["b1", "b2"])))
                         if rng.random() < 0.7},
                "create_time": rng.randint(1_000, 2_000),
                "update_time": rng.randint(1_000, 2_000),
                "memory_type": rng.choice([MemoryType.long_term, MemoryType.user]),
            }
            if live and rng.random() < 0.3:  # rewrite an existing memory
                item = live[rng.choice(sorted(live))][0].model_copy(update=fields)
            else:
                item = memory(fields.pop("memory_key"), **fields)
            live[item.id] = (item, unit(step))
            index.upsert([item], stack(unit(step)))
        if live:  # a search after every write: cached postings must never go stale
            query, text = unit(1000 + step), rng.choice(words)
            documents = {i: tokenize(m.index_text) for i, (m, _) in live.items()}
            expected_lexical = bm25(text, documents)
            for raw in FILTERS if step % 10 == 0 else [{}]:
                where = compile_filter(raw) if raw else None
                hits = search(index, query, text, k=len(live), where=where)
                assert {h.id for h in hits} == {
                    i for i, (m, _) in live.items() if not where or where.matches(m)}, raw
                for hit in hits:
                    assert hit.lexical == pytest.approx(expected_lexical[hit.id], rel=1e-4,
                                                        abs=1e-6)


def test_search_groups_equal_one_search_per_group(index):
    rng = np.random.default_rng(3)
    kinds = [MemoryType.long_term, MemoryType.preference, MemoryType.tool_trajectory]
    items = [memory(f"note {i} hotel" if i % 3 else f"note {i}", memory_type=kinds[i % 3],
                    tags=["odd"] if i % 2 else [])
             for i in range(300)]
    index.upsert(items, rng.standard_normal((300, DIM)))
    query = unit(77)
    queries = [IndexQuery(FACTS, 5), IndexQuery([MemoryType.preference], 3),
               IndexQuery([MemoryType.tool_trajectory], 0), IndexQuery(ALL_TYPES, 20)]
    for where in (None, compile_filter({"tags": "odd"})):
        grouped = index.search_groups("t1", "u1", query, "hotel note", queries, where)
        assert grouped == [search(index, query, "hotel note", q.k, types=q.types, where=where)
                           for q in queries]
        assert grouped[2] == []
        types_of = {m.id: m.memory_type for m in items}
        assert grouped[1] and {types_of[h.id] for h in grouped[1]} == {MemoryType.preference}


@pytest.mark.parametrize("preference_share", [0.02, 0.5])
def test_nearest_matches_brute_force_per_query_row(index, preference_share):
    rng = np.random.default_rng(9)
    items = [memory(f"m{i}", memory_type=MemoryType.preference if rng.random() < preference_share
                    else MemoryType.long_term) for i in range(400)]
    vectors = rng.standard_normal((400, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.upsert(items, vectors)
    index.upsert([memory("elsewhere", user="u2")], stack(vectors[0]))
    queries = rng.standard_normal((70, DIM)).astype(np.float32)  # more than one batch of 64
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    for types in (FACTS, [MemoryType.preference], ALL_TYPES):
        found = index.nearest("t1", "u1", queries, 5, types)
        allowed = [i for i, m in enumerate(items) if m.memory_type in types]
        assert len(found) == len(queries)
        for query, hits in zip(queries, found, strict=True):
            cosines = vectors[allowed] @ query
            best = [allowed[i] for i in np.argsort(-cosines)[:5]]
            assert [h.id for h in hits] == [items[i].id for i in best]
            assert [h.dense for h in hits] == pytest.approx(
                sorted(cosines, reverse=True)[:5], abs=1e-5)
    assert index.nearest("t1", "nobody", queries, 5, ALL_TYPES) == [[]] * len(queries)
