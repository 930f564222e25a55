"""A person's age is reached by questions that share no word with it ("How many years will
I be when Rachel gets married?" against "I'm 32"): statements of an age are keyed Age, and a
query asking an age searches that key and favours what it keys."""

from __future__ import annotations

import pytest
from tests.fakes.embedder import HashingEmbedder
from tests.in_process import memos_caller

from engram.config import Settings
from engram.extraction.rules.ages import states_an_age
from engram.extraction.rules.extractor import RuleBasedExtractor
from engram.local.runtime import build_local_runtime
from engram.models.domain import MessageRecord, Role
from engram.retrieval.intent import asks_an_age


@pytest.mark.parametrize("text", [
    "I'm 32, so I'm in my 30s", "I am 45 years old", "I'm a 28-year-old nurse",
    "I just turned 30 last week", "my 40th birthday is in May", "Caroline is 25 years old",
    "我今年32岁"])
def test_statements_of_an_age(text):
    assert states_an_age(text, "zh" if "岁" in text else "en")


@pytest.mark.parametrize("text", [
    "I'm 5 minutes away", "I'm 2 hours late", "I'm 100% sure", "the oven turned 200 degrees",
    "I have 3 kids", "It is 5, right", "Chapter 12 is 30 pages", "我今年3月去了北京"])
def test_numbers_that_are_not_an_age(text):
    assert not states_an_age(text, "zh" if "北京" in text else "en")


@pytest.mark.parametrize("query, asks", [
    ("How many years will I be when my friend Rachel gets married?", True),
    ("How old was Melanie when she moved?", True), ("What is my age?", True),
    ("我今年几岁？", True), ("她多大了？", True), ("我的房间有多大？", False),
    ("How many years have I worked here?", False),
    ("What did I buy for my mother?", False)])
def test_queries_that_ask_an_age(query, asks):
    assert asks_an_age(query) is asks


def test_an_age_statement_is_keyed_age():
    made = RuleBasedExtractor().statements([MessageRecord(
        tenant_id="t", user_id="u", conversation_id="c", message_id="m0", seq=0,
        role=Role.user, text="I'm 32, so I'm in my 30s. My skin looks dull lately.")])
    assert [c.memory_key for c in made if "32" in c.memory_value] == ["Age"]


@pytest.fixture
def call(tmp_path):
    runtime = build_local_runtime(Settings(data_dir=tmp_path, api_keys={"k": "tenant-a"}),
                                  embedder=HashingEmbedder())
    yield memos_caller(runtime.services)
    runtime.close()


def test_a_question_about_an_age_finds_the_age_among_other_memories(call):
    # others share the question's words; the age shares none
    turns = ["I'm 32, so I'm in my 30s.", "My friend Rachel is getting married next year.",
             *(f"My friend {name} got married {n} years ago, and it was a lovely wedding."
               for n, name in enumerate(["Tom", "Jess", "Ana", "Raj", "Lee", "Kim"], 2)),
             "I have been married to my partner for five years.",
             "Rachel and I have been friends for many years."]
    call("add/message", {"user_id": "u", "conversation_id": "c", "async_mode": False,
                         "messages": [{"role": "user", "content": t} for t in turns]})
    query = {"user_id": "u", "memory_limit_number": 3,
             "query": "How many years will I be when my friend Rachel gets married?"}
    found = [m["memory_value"] for m in call("search/memory", query)["memory_detail_list"]]
    assert "The user is 32, so the user is in the user's 30s." in found
    # the same memory without the question's age: not lifted above Rachel's wedding
    query["query"] = "When is my friend Rachel getting married?"
    found = [m["memory_value"] for m in call("search/memory", query)["memory_detail_list"]]
    assert found[0].startswith("The user's friend Rachel")
