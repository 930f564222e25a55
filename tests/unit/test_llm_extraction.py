"""LlmExtractor against a scripted model: how replies become candidates, what the model is
shown, batching, and the per-batch fallback to rules."""

from __future__ import annotations

import json

import pytest
from tests.fakes.language_model import ScriptedModel
from tests.unit.test_extraction import messages

from engram.errors import LlmUnavailable
from engram.extraction.llm import LlmExtractor
from engram.models.domain import CONTEXT_SEPARATOR, MemoryType
from engram.models.pipeline import ToolCallRecord
from engram.models.times import to_epoch_ms


def memory(memory_type: str, key: str, value: str, sources: list[str], **fields) -> dict:
    return {"memory_type": memory_type, "memory_key": key, "memory_value": value,
            "confidence": fields.pop("confidence", 0.9), "source_message_ids": sources,
            **fields}


def prompt_of(model: ScriptedModel, call: int = 0) -> str:
    return model.calls[call][0][1]["content"]


def ids_in_prompt(model: ScriptedModel, call: int) -> list[str]:
    lines = prompt_of(model, call).split("\n")[1:]
    return [json.loads(line)["id"] for line in lines]


TRIP = messages(
    ("user", "I'm planning a trip to Guangzhou during the summer vacation.",
     "2025-09-12 08:00:00"),
    ("assistant", "You can consider [7 Days Inn, JI Hotel, Hilton], etc.", "2025-09-12 08:00:05"),
    ("user", "I choose 7 Days Inn", "2025-09-12 08:01:00"),
)


def test_reply_memories_become_candidates():
    model = ScriptedModel({"memories": [
        memory("UserMemory", "Trip to Guangzhou",
               "The user is planning a trip to Guangzhou during the 2025 summer vacation.",
               ["m0"], tags=["Travel", "travel", "guangzhou"], confidence=1.4),
        memory("PreferenceMemory", "Hotel choice",
               "The user chose 7 Days Inn for the trip to Guangzhou.",
               ["m1", "m2", "m99"], preference_type="implicit",
               reasoning="The user picked it among the hotels offered.", confidence=-0.2),
    ]})
    extraction = LlmExtractor(model).extract(TRIP)

    trip, hotel = extraction.candidates
    assert (trip.memory_type, trip.memory_key) == (MemoryType.user, "Trip to Guangzhou")
    assert trip.memory_value.startswith("The user is planning a trip to Guangzhou")
    assert trip.tags == ["travel", "guangzhou"]
    assert trip.confidence == 1.0
    assert trip.sources == ["m0"]
    assert trip.event_time == TRIP[0].event_time
    assert trip.preference_type is trip.polarity is trip.reasoning is None
    assert trip.context == TRIP[0].text

    assert hotel.memory_type == MemoryType.preference
    assert (hotel.preference_type, hotel.polarity) == ("implicit", "positive")
    assert hotel.reasoning == "The user picked it among the hotels offered."
    assert hotel.confidence == 0.0
    assert hotel.sources == ["m1", "m2"]  # m99 is not a message of the batch
    assert hotel.event_time == TRIP[2].event_time  # the latest cited
    assert hotel.context == f"{TRIP[1].text}{CONTEXT_SEPARATOR}{TRIP[2].text}"
    assert hotel.turn_text == "I choose 7 Days Inn"
    assert hotel.language == "en"

    assert extraction.usage.calls == 1
    assert extraction.warnings == []


def test_the_model_sees_ids_times_speakers_and_tool_calls():
    convo = messages(
        ("user", "Caroline: What's the weather in Paris tomorrow?", "2025-09-12 08:00:00",
         "Caroline"),
        ("assistant", '[tool call get_weather] {"city": "Paris"}', "2025-09-12 08:00:01"),
        ("tool", '{"forecast": "rain"}', "2025-09-12 08:00:02"),
    )
    calls = [ToolCallRecord(message_id="m1", call_id="call_1", name="get_weather",
                            arguments='{"city": "Paris"}', result_message_id="m2")]
    model = ScriptedModel({"memories": []})
    LlmExtractor(model).extract(convo, calls)

    [(sent, schema_name, schema)] = model.calls
    assert sent[0]["role"] == "system" and "PreferenceMemory" in sent[0]["content"]
    assert schema_name == "ExtractionOutput" and "memories" in schema["properties"]
    lines = [json.loads(line) for line in prompt_of(model).split("\n")[1:]]
    user, assistant, tool = lines
    assert user == {"id": "m0", "role": "user", "name": "Caroline",
                    "time": "2025-09-12T08:00:00Z", "weekday": "Friday",
                    "text": "Caroline: What's the weather in Paris tomorrow?"}
    assert assistant["time"] == "2025-09-12T08:00:01Z"
    assert assistant["tool_calls"] == [{"id": "call_1", "name": "get_weather",
                                        "arguments": {"city": "Paris"}}]
    assert assistant["text"] == ""  # the written-out call is not shown twice
    assert (tool["tool_call_id"], tool["tool_name"]) == ("call_1", "get_weather")
    assert tool["text"] == '{"forecast": "rain"}'


def test_a_tool_conversation_yields_tool_schema_and_trajectory_memories():
    convo = messages(
        ("user", "Book me a table for two at Chez Marie tonight."),
        ("assistant", "[tool call book_table] {\"restaurant\": \"Chez Marie\", \"seats\": 2}"),
        ("tool", '{"error": "fully booked"}'),
        ("assistant", "Sorry, Chez Marie is fully booked tonight."),
    )
    calls = [ToolCallRecord(message_id="m1", call_id="c1", name="book_table",
                            arguments='{"restaurant": "Chez Marie", "seats": 2}',
                            result_message_id="m2")]
    model = ScriptedModel({"memories": [
        memory("ToolSchemaMemory", "book_table",
               "book_table reserves a restaurant table; parameters: restaurant, seats.",
               ["m1"], tags=["tool", "booking"]),
        memory("ToolTrajectoryMemory", "Book a table at Chez Marie",
               "book_table(restaurant=Chez Marie, seats=2) returned 'fully booked'; the "
               "booking did not work.", ["m0", "m1", "m2"], tool_succeeded=False,
               tags=["booking"]),
    ]})
    extraction = LlmExtractor(model).extract(convo, calls)

    schema, trajectory = extraction.candidates
    assert schema.memory_type == MemoryType.tool_schema
    assert schema.memory_key == "book_table" and schema.sources == ["m1"]
    assert trajectory.memory_type == MemoryType.tool_trajectory
    assert trajectory.sources == ["m0", "m1", "m2"]
    assert trajectory.tags == ["failed", "booking"]
    assert trajectory.turn_text == "Book me a table for two at Chez Marie tonight."


def test_an_invalid_reply_is_repaired_once():
    model = ScriptedModel(
        "{not json",
        {"memories": [memory("UserMemory", "Trip", "The user plans a trip.", ["m0"])]},
    )
    extraction = LlmExtractor(model).extract(TRIP)

    assert [c.memory_value for c in extraction.candidates] == ["The user plans a trip."]
    assert extraction.usage.calls == 2
    assert extraction.usage.prompt_tokens == 200
    assert "not follow the JSON schema" in model.calls[1][0][-1]["content"]
    assert extraction.warnings == []


def test_a_preference_without_its_type_is_sent_back_for_repair():
    no_type = memory("PreferenceMemory", "Food preference", "The user likes spicy food.", ["m0"])
    model = ScriptedModel({"memories": [no_type]},
                          {"memories": [{**no_type, "preference_type": "explicit"}]})
    extraction = LlmExtractor(model).extract(messages(("user", "I like spicy food")))

    assert "preference_type" in model.calls[1][0][-1]["content"]
    [preference] = extraction.candidates
    assert preference.preference_type == "explicit"


def test_a_batch_invalid_twice_is_extracted_by_rules_with_a_warning():
    convo = messages(
        ("user", "I live in Lyon."),
        ("assistant", "Lovely city!"),
        ("user", "I like spicy food"),
        ("assistant", "Noted."),
    )
    model = ScriptedModel(
        {"memories": [memory("UserMemory", "Home city", "The user lives in Lyon.", ["m0"])]},
        "not json", '{"memories": [{"memory_type": "Fact"}]}',
    )
    extraction = LlmExtractor(model, max_batch_messages=2).extract(convo)

    by_llm, by_rules = extraction.candidates
    assert by_llm.memory_value == "The user lives in Lyon."
    assert by_rules.memory_type == MemoryType.preference
    assert by_rules.memory_value == "The user likes spicy food."
    assert by_rules.sources == ["m2"]
    assert extraction.warnings == [
        "messages m2…m3: the LLM reply was not valid after a repair; rule-based extraction used"]
    assert extraction.usage.calls == 3


def test_the_rule_based_fallback_keeps_tool_memory():
    convo = messages(("user", "Weather in Paris?"),
                     ("assistant", '[tool call get_weather] {"city": "Paris"}'),
                     ("tool", "rain"))
    calls = [ToolCallRecord(message_id="m1", call_id="c1", name="get_weather",
                            arguments='{"city": "Paris"}', result_message_id="m2")]
    extraction = LlmExtractor(ScriptedModel("[]", "[]")).extract(convo, calls)

    types = {c.memory_type for c in extraction.candidates}
    assert types == {MemoryType.tool_trajectory, MemoryType.tool_schema}
    assert len(extraction.warnings) == 1


def test_an_unavailable_endpoint_fails_the_extraction():
    model = ScriptedModel(LlmUnavailable("429 after 3 retries"))
    with pytest.raises(LlmUnavailable, match="429"):
        LlmExtractor(model).extract(TRIP)


def test_batches_respect_the_message_limit():
    convo = messages(*[("user", f"Fact number {i}.") for i in range(70)])
    model = ScriptedModel(*[{"memories": []}] * 3)
    extraction = LlmExtractor(model).extract(convo)

    assert [len(ids_in_prompt(model, i)) for i in range(3)] == [30, 30, 10]
    assert ids_in_prompt(model, 2)[0] == "m60"
    assert extraction.usage.calls == 3
    assert extraction.candidates == [] and extraction.warnings == []


def test_batches_respect_the_char_limit_and_a_long_message_goes_alone():
    convo = messages(("user", "a" * 400), ("user", "b" * 400), ("user", "c" * 400),
                     ("user", "d" * 2000), ("user", "e" * 10))
    extractor = LlmExtractor(ScriptedModel(), max_batch_chars=1000)

    batches = extractor.batches(convo)
    assert [[m.message_id for m in b] for b in batches] == [["m0", "m1"], ["m2"], ["m3"],
                                                            ["m4"]]


def test_a_tool_call_stays_in_one_batch_with_its_result():
    convo = messages(("user", "Weather in Paris?"),
                     ("assistant", '[tool call get_weather] {"city": "Paris"}'),
                     ("tool", "rain"), ("assistant", "Rain in Paris."))
    calls = [ToolCallRecord(message_id="m1", call_id="c1", name="get_weather",
                            arguments='{"city": "Paris"}', result_message_id="m2")]

    batches = LlmExtractor(ScriptedModel(), max_batch_messages=2).batches(convo, calls)
    assert [[m.message_id for m in b] for b in batches] == [["m0"], ["m1", "m2"], ["m3"]]
    # too big to keep together: split like any other messages
    batches = LlmExtractor(ScriptedModel(), max_batch_messages=1).batches(convo, calls)
    assert len(batches) == 4


def test_a_batch_without_text_costs_no_call():
    convo = messages(("user", "  "), ("assistant", ""))
    extraction = LlmExtractor(ScriptedModel()).extract(convo)
    assert extraction.candidates == [] and extraction.usage.calls == 0


def test_an_empty_answer_means_nothing_to_remember():
    extraction = LlmExtractor(ScriptedModel({"memories": []})).extract(TRIP)
    assert extraction.candidates == [] and extraction.warnings == []
    assert extraction.usage.calls == 1


def test_memories_citing_no_message_of_the_batch_are_dropped_with_a_warning():
    model = ScriptedModel({"memories": [
        memory("UserMemory", "Trip", "The user plans a trip.", ["m0"]),
        memory("UserMemory", "Made up", "The user owns a boat.", ["x1"]),
    ]})
    extraction = LlmExtractor(model).extract(TRIP)

    assert [c.memory_key for c in extraction.candidates] == ["Trip"]
    assert extraction.warnings == [
        "messages m0…m2: 1 LLM memory citing no message of the batch dropped"]


def test_chinese_memories_keep_their_language():
    convo = messages(("user", "我暑假定好去广州旅游，住宿的话有哪些连锁酒店可选？"),
                     ("assistant", "可以考虑【七天、全季、希尔顿】等等"),
                     ("user", "我选七天"))
    model = ScriptedModel({"memories": [
        memory("UserMemory", "广州旅游", "用户计划2025年暑假去广州旅游。", ["m0"]),
        memory("PreferenceMemory", "酒店选择", "用户去广州旅游选择住七天酒店。", ["m2"],
               preference_type="implicit", language="zh-CN"),
    ]})
    trip, hotel = LlmExtractor(model).extract(convo).candidates

    assert trip.language == hotel.language == "zh"
    assert trip.memory_value == "用户计划2025年暑假去广州旅游。"
    assert "我暑假定好去广州旅游" in prompt_of(model)  # sent as is, not \u-escaped


def test_two_preferences_keep_their_own_sources_and_times():
    convo = messages(
        ("user", "I like spicy food", "2025-09-12 08:00:00"),
        ("assistant", "Noted, spicy it is.", "2025-09-12 08:00:05"),
        ("user", "But I don't really like heavy oil, such as spicy hot pot",
         "2025-09-13 19:30:00"),
    )
    model = ScriptedModel({"memories": [
        memory("PreferenceMemory", "Spicy food", "The user likes spicy food.", ["m0"],
               preference_type="explicit", polarity="positive",
               reasoning="The user says so."),
        memory("PreferenceMemory", "Oily food", "The user does not like heavy, oily food "
               "such as spicy hot pot.", ["m2"], preference_type="explicit",
               polarity="negative", reasoning="The user says so."),
    ]})
    likes, dislikes = LlmExtractor(model).extract(convo).candidates

    assert likes.memory_type == dislikes.memory_type == MemoryType.preference
    assert (likes.sources, likes.polarity) == (["m0"], "positive")
    assert (dislikes.sources, dislikes.polarity) == (["m2"], "negative")
    assert likes.event_time == to_epoch_ms("2025-09-12 08:00:00", "t")
    assert dislikes.event_time == to_epoch_ms("2025-09-13 19:30:00", "t")
    assert dislikes.turn_text == "But I don't really like heavy oil, such as spicy hot pot"


def test_the_extractor_is_named_after_its_model():
    assert LlmExtractor(ScriptedModel()).name == "llm:scripted"
