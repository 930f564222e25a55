"""A user turn the rules make no statement of (a question, a request) is kept whole, and
ranks just below what was extracted: found when nothing else covers it."""

from __future__ import annotations

import pytest
from tests.fakes.embedder import HashingEmbedder
from tests.in_process import memos_caller

from engram.config import Settings
from engram.extraction.rules.extractor import RuleBasedExtractor
from engram.local.runtime import build_local_runtime
from engram.models.domain import MessageRecord, Role
from engram.retrieval.vectors import memory_vectors
from engram.services.search import WHOLE_TURN_PENALTY

DUST = "What are some simple ways to keep my living room dust-free, with a cat that sheds?"


def turn(text: str, i: int = 0, role: Role = Role.user) -> MessageRecord:
    return MessageRecord(tenant_id="t", user_id="u", conversation_id="c", message_id=f"m{i}",
                         seq=i, role=role, text=text, chat_time=1_700_000_000_000 + i)


def test_a_question_no_statement_came_from_is_kept_whole():
    (kept,) = RuleBasedExtractor().statements([turn(DUST)])
    assert kept.whole_turn and kept.memory_value == f"The user asked: {DUST}"
    assert kept.sources == ["m0"] and kept.memory_key == "Question"


def test_a_whole_turn_is_embedded_once_its_turn_not_mixed_in():
    texts: list[str] = []

    class Counting(HashingEmbedder):
        def embed(self, batch):
            texts.extend(batch)
            return super().embed(batch)

    (kept,) = RuleBasedExtractor().statements([turn(DUST)])
    memory_vectors(Counting(), [kept])
    assert texts == [f"The user asked: {DUST}"]


@pytest.mark.parametrize("text", [
    "I adopted a cat last month.",  # a statement: extracted as such
    "Any tips for that?",  # too short to say anything about its speaker
])
def test_a_turn_with_a_statement_or_too_short_is_not_kept_whole(text):
    assert not any(c.whole_turn for c in RuleBasedExtractor().statements([turn(text)]))


def test_a_chinese_request_is_kept_whole_in_chinese():
    (kept,) = RuleBasedExtractor().statements([turn("有什么简单的方法可以让客厅少一点灰尘吗？")])
    assert kept.whole_turn and kept.memory_value.startswith("用户问：")


@pytest.fixture
def runtime(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    yield runtime
    runtime.close()


@pytest.fixture
def call(runtime):
    return memos_caller(runtime.services)


def test_a_whole_turn_is_found_and_ranks_below_an_extracted_memory(call, runtime):
    call("add/message", {"user_id": "u", "conversation_id": "c", "async_mode": False,
                         "messages": [{"role": "user", "content": DUST},
                                      {"role": "user", "content": "My cat sheds a lot."}]})
    found = call("search/memory", {"user_id": "u", "query": "cat that sheds",
                                   "memory_limit_number": 5})["memory_detail_list"]
    values = [m["memory_value"] for m in found]
    assert values.index("The user's cat sheds a lot.") < values.index(f"The user asked: {DUST}")
    asked = found[values.index(f"The user asked: {DUST}")]
    # the same memory, were it extracted, would score the penalty higher
    (memory,) = runtime.services.search.memories.get_many("tenant-a", [asked["id"]])
    runtime.services.search.memories.put_many([memory.model_copy(update={"whole_turn": False})])
    again = call("search/memory", {"user_id": "u", "query": "cat that sheds",
                                   "memory_limit_number": 5})["memory_detail_list"]
    (same,) = [m for m in again if m["id"] == asked["id"]]
    assert same["relativity"] == pytest.approx(asked["relativity"] + WHOLE_TURN_PENALTY)


MORTGAGE = ("I'm really looking forward to owning a home, it's been a long process, but it'll be "
            "worth it - remember when I got pre-approved for $400,000 from Wells Fargo?")


def test_a_sentence_whose_number_and_names_no_memory_keeps_is_kept_as_asked():
    made = RuleBasedExtractor().statements([turn(MORTGAGE)])
    stated = [c for c in made if not c.whole_turn]
    asked = [c for c in made if c.whole_turn]
    assert stated and all("400,000" not in c.memory_value for c in stated)
    assert [c.memory_value for c in asked] == [f"The user asked: {MORTGAGE}"]


@pytest.mark.parametrize("text", [
    "I went to Lisbon with Anna in 2019.",  # the statement keeps every name and number
    "I bought a new bike. How do I fix a flat tire?",  # the question names nothing specific
])
def test_no_sentence_is_kept_again_when_the_memories_say_its_specifics(text):
    assert not any(c.whole_turn for c in RuleBasedExtractor().statements([turn(text)]))


def test_the_amount_only_a_question_said_is_found(call):
    call("add/message", {"user_id": "u", "conversation_id": "c", "async_mode": False,
                         "messages": [{"role": "user", "content": MORTGAGE}]})
    found = call("search/memory", {"user_id": "u", "query": "How much was I pre-approved for "
                                   "by Wells Fargo?", "memory_limit_number": 3})
    assert any("$400,000" in m["memory_value"] for m in found["memory_detail_list"])


def test_a_question_repeating_a_statements_many_numbers_is_not_kept_again():
    # a hostile 210 kB turn: 15,000 numbers stated, then asked again
    numbers = " ".join(str(n) for n in range(100_000, 115_000))
    made = RuleBasedExtractor().statements([turn(f"I have {numbers} items. Why {numbers}?")])
    assert not any(c.whole_turn for c in made)
