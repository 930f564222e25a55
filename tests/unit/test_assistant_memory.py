"""What the assistant said is kept, found by its words, and comes forward when a user asks
what the assistant said; it neither merges with nor crowds out the user's own facts."""

from __future__ import annotations

import numpy as np
import pytest
from tests.fakes.embedder import HashingEmbedder
from tests.in_process import memos_caller

from engram.config import Settings
from engram.extraction.assistant import MAX_PASSAGES, assistant_candidates, passages
from engram.local.runtime import build_local_runtime
from engram.models.domain import MessageRecord, Role
from engram.retrieval.intent import asks_what_the_assistant_said, asks_what_was_first_said
from engram.retrieval.vectors import memory_vectors

APPS = ("Sure! Here are some apps you could try:\n"
        "1. Duolingo - gamified lessons in short daily sessions, good for building a habit.\n"
        "2. Memrise - uses mnemonics and videos of native speakers to help you memorize words "
        "and phrases.\n"
        "3. Anki - spaced-repetition flashcards you build yourself.\n"
        "Good luck!")


def message(role: Role, text: str, i: int) -> MessageRecord:
    return MessageRecord(tenant_id="t", user_id="u", conversation_id="c", message_id=f"m{i}",
                         seq=i, role=role, text=text, chat_time=1_700_000_000_000 + i)


def test_an_assistant_turn_becomes_passages_said_by_the_assistant():
    turns = [message(Role.user, "Which apps help with learning Spanish words?", 0),
             message(Role.assistant, APPS, 1)]
    found = assistant_candidates(turns)
    assert found and all(c.said_by == "assistant" and c.sources == ["m1"] for c in found)
    assert any("Memrise - uses mnemonics" in c.memory_value for c in found)
    assert assistant_candidates([message(Role.assistant, "Sure! Happy to help.", 2)]) == []
    assert "Which apps" in found[0].context  # the question it answered


def test_an_acknowledgement_that_repeats_the_user_is_not_kept():
    said = [message(Role.user, "I like spicy food", 0),
            message(Role.assistant, "Got it, I remember, you like spicy food.", 1)]
    assert assistant_candidates(said) == []
    courtesy = [message(Role.assistant, "Okay, ask me if you have any other questions.", 2)]
    assert assistant_candidates(courtesy) == []
    answered = [message(Role.user, "I like spicy food", 0),
                message(Role.assistant, "Then try the mapo tofu at Chengdu Taste on Valley "
                        "Boulevard, it is very spicy.", 1)]
    assert len(assistant_candidates(answered)) == 1


def test_a_long_answer_is_kept_up_to_max_passages():
    answer = "\n".join(f"Step {i}: stir the sauce for {i} minutes over a low flame."
                        for i in range(2_000))
    kept = assistant_candidates([message(Role.user, "How do I make the sauce?", 0),
                                 message(Role.assistant, answer, 1)])
    assert len(kept) == MAX_PASSAGES and "Step 0:" in kept[0].memory_value


def test_passages_join_lines_and_split_long_ones_at_sentence_ends():
    long_line = " ".join(f"Sentence number {i} says something." for i in range(40))
    parts = passages(f"short one\nshort two\n{long_line}")
    assert parts[0].startswith("short one short two")
    assert all(len(p) <= 300 for p in parts)
    assert "".join(parts).replace(" ", "") == f"short oneshort two{long_line}".replace(" ", "")


@pytest.mark.parametrize("query, asks", [
    ("Can you remind me which app uses mnemonics?", True),
    ("What was the phone number you gave me for the tourism board?", True),
    ("Which restaurant did you recommend in Bandung?", True),
    ("In our previous conversation, what book came up?", True),
    ("你之前推荐的那家餐厅叫什么？", True),
    ("Which app do I use to learn Spanish?", False),
    ("What did I buy for my sister?", False),
])
def test_a_query_that_asks_what_the_assistant_said(query, asks):
    assert asks_what_the_assistant_said(query) is asks


@pytest.mark.parametrize("query, asks", [
    ("What did I originally say my budget was?", True),
    ("Which hotel did I first pick for the trip?", True),
    ("At first, what colour did I want for the kitchen?", True),
    ("我最初想去哪个城市？", True),
    ("When did I first visit Paris?", False),
    ("Which hotel did I choose?", False),
])
def test_a_query_that_asks_what_was_first_said(query, asks):
    assert asks_what_was_first_said(query) is asks


def test_what_the_assistant_said_is_not_embedded():
    class Counting(HashingEmbedder):
        texts: list[str] = []

        def embed(self, texts):
            self.texts += list(texts)
            return super().embed(texts)

    embedder = Counting()
    user = message(Role.user, "I am learning Spanish", 0)
    items = assistant_candidates([user, message(Role.assistant, APPS, 1)])
    vectors = memory_vectors(embedder, items)
    assert embedder.texts == [] and not vectors.any()


@pytest.fixture
def call(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    call = memos_caller(runtime.services)
    yield call
    runtime.close()


def test_search_finds_what_the_assistant_said_when_asked_and_the_users_facts_otherwise(call):
    call("add/message", {"user_id": "u", "conversation_id": "c", "async_mode": False,
                         "messages": [
                             {"role": "user", "content": "I am learning Spanish for my trip "
                                                         "to Madrid. Which apps should I use?"},
                             {"role": "assistant", "content": APPS}]})
    asked = call("search/memory", {"user_id": "u", "query": "Remind me which app you "
                                   "recommended that uses mnemonics to memorize words?"})
    top = asked["memory_detail_list"][0]
    assert "Memrise" in top["memory_value"] and top["memory_key"] == "Assistant's answer"

    own = call("search/memory", {"user_id": "u", "query": "Which language am I learning?"})
    assert "Spanish" in own["memory_detail_list"][0]["memory_value"]
    assert own["memory_detail_list"][0]["memory_key"] != "Assistant's answer"


def test_assistant_passages_never_merge_with_a_users_fact(call):
    said = ("The assistant said: You should book the Hotel Central near the station again, "
            "for its rooftop pool and free breakfast.")
    call("add/message", {"user_id": "v", "conversation_id": "c", "async_mode": False,
                         "messages": [
                             {"role": "user", "content": "I booked the Hotel Central near "
                                                         "the station."},
                             {"role": "assistant", "content": said.split(": ", 1)[1]}]})
    listed = call("get/memory", {"user_id": "v", "size": 50})["memory_detail_list"]
    values = [m["memory_value"] for m in listed]
    assert said in values and any("booked the Hotel Central" in v for v in values)
    assert np.unique(values).size == len(values)
