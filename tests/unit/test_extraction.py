"""RuleBasedExtractor: the MemOS seed conversations end to end, LoCoMo-style named
speakers, and each rule on its own."""

from __future__ import annotations

from datetime import date

import pytest
from tests.seeds import QUESTIONNAIRE_EN, QUESTIONNAIRE_ZH

from engram.extraction.context import detect_language
from engram.extraction.rules.extractor import RuleBasedExtractor
from engram.extraction.temporal import day_start_ms
from engram.models.domain import Candidate, MemoryType, MessageRecord
from engram.models.times import to_epoch_ms

DEFAULT_TIME = "2025-09-12 08:00:00"


def messages(*turns: tuple) -> list[MessageRecord]:
    """Turns as (role, text[, chat_time[, speaker]])."""
    records = []
    for i, (role, text, *rest) in enumerate(turns):
        when = rest[0] if rest and rest[0] else DEFAULT_TIME
        speaker = rest[1] if len(rest) > 1 else None
        records.append(
            MessageRecord(
                tenant_id="t", user_id="u", conversation_id="c", seq=i, role=role, text=text,
                message_id=f"m{i}", chat_time=to_epoch_ms(when, "chat_time"), speaker=speaker,
            )
        )
    return records


def extract(*turns: tuple) -> list[Candidate]:
    return RuleBasedExtractor().statements(messages(*turns))


def values(candidates: list[Candidate]) -> list[str]:
    return [c.memory_value for c in candidates]


def only(candidates: list[Candidate]) -> Candidate:
    assert len(candidates) == 1, values(candidates)
    return candidates[0]


def questionnaire(language: str) -> str:
    return {"en": QUESTIONNAIRE_EN, "zh": QUESTIONNAIRE_ZH}[language]


# --- the seed conversations, end to end ------------------------------------------------

QUICK_START_EN = (
    ("user", "I'm planning a trip to Guangzhou during the summer vacation. "
             "What chain hotels are available for accommodation?"),
    ("assistant", "You can consider [7 Days Inn, JI Hotel, Hilton], etc."),
    ("user", "I choose 7 Days Inn"),
    ("assistant", "Okay, ask me if you have any other questions."),
)
QUICK_START_ZH = (
    ("user", "我暑假定好去广州旅游，住宿的话有哪些连锁酒店可选？"),
    ("assistant", "您可以考虑【七天、全季、希尔顿】等等"),
    ("user", "我选七天"),
    ("assistant", "好的，有其他问题再问我。"),
)


def test_quick_start_english():
    trip, choice = extract(*QUICK_START_EN)

    assert trip.memory_value == (
        "The user is planning a trip to Guangzhou during the summer vacation.")
    assert trip.memory_key == "Trip to Guangzhou"
    assert trip.memory_type == MemoryType.user
    assert trip.sources == ["m0"]
    assert trip.language == "en"
    assert "trip" in trip.tags and all(t == t.lower() for t in trip.tags)
    assert 0.9 <= trip.confidence <= 0.99

    assert choice.memory_value == (
        "The user chose 7 Days Inn for the trip to Guangzhou during the summer vacation."
    )
    assert choice.memory_key == "Hotel choice"
    assert choice.memory_type == MemoryType.user
    assert choice.sources == ["m2", "m0"]
    assert choice.confidence < trip.confidence
    assert "JI Hotel" in choice.context and "Guangzhou" in choice.context
    assert len(choice.context) <= 300


def test_quick_start_chinese():
    trip, choice = extract(*QUICK_START_ZH)

    assert trip.memory_value == "用户暑假定好去广州旅游。"
    assert trip.memory_key == "广州旅游"
    assert trip.language == "zh"
    assert choice.memory_value.startswith("用户选七天")
    assert "广州" in choice.memory_value
    assert choice.memory_key == "酒店选择"
    assert choice.sources == ["m2", "m0"]
    assert "全季" in choice.context
    assert not any("连锁酒店" in v for v in values([trip, choice]))


def test_realtime_turn_english_resolves_this_morning():
    memory = only(extract(
        ("user", "I ran 5 kilometers this morning, and my knees are a bit sore"),
        ("assistant", "You ran 5 kilometers today and your knees are a bit sore, which means "
                      "your joints and muscles are still adapting to the intensity."),
    ))
    assert memory.memory_value.startswith(
        "The user ran 5 kilometers on the morning of 12 September 2025"
    )
    assert "the user's knees are a bit sore" in memory.memory_value
    assert memory.memory_type == MemoryType.user
    assert memory.event_time == to_epoch_ms(DEFAULT_TIME, "t")


def test_realtime_turn_chinese_resolves_this_morning():
    memory = only(extract(("user", "我今天早上跑了5公里，膝盖有点酸")))
    assert memory.memory_value.startswith("用户2025年9月12日早上跑了5公里")
    assert memory.language == "zh"


def test_history_import_english_preferences():
    likes, dislikes = extract(
        ("user", "I like spicy food", "2025-09-12 08:00:00"),
        ("assistant", "Got it, I remember, you like spicy food.", "2025-09-12 08:01:00"),
        ("user", "But I don't really like heavy oil, such as spicy hot pot, Mao Xue Wang, etc.",
         "2025-09-25 12:00:00"),
        ("assistant", "You prefer refreshing and spicy dishes.", "2025-09-25 12:01:00"),
    )
    assert likes.memory_value == "The user likes spicy food."
    assert (likes.memory_type, likes.polarity, likes.preference_type) == (
        MemoryType.preference, "positive", "explicit")
    assert likes.memory_key == "Food preference"
    assert "I like spicy food" in likes.reasoning

    assert dislikes.memory_value == (
        "The user doesn't really like heavy oil, such as spicy hot pot, Mao Xue Wang, etc."
    )
    assert (dislikes.memory_type, dislikes.polarity) == (MemoryType.preference, "negative")
    assert dislikes.sources == ["m2"]
    assert dislikes.event_time == to_epoch_ms("2025-09-25 12:00:00", "t")


def test_history_import_chinese_preferences():
    likes, dislikes = extract(
        ("user", "我喜欢吃辣的食物"),
        ("assistant", "明白啦，我记住了，你喜欢辣味的食物。"),
        ("user", "但我又不太喜欢重油的，比如麻辣火锅、毛血旺之类的"),
    )
    assert likes.memory_value == "用户喜欢吃辣的食物。"
    assert (likes.polarity, likes.memory_key) == ("positive", "饮食偏好")
    assert dislikes.memory_value == "用户不太喜欢重油的，比如麻辣火锅、毛血旺之类的。"
    assert (dislikes.polarity, dislikes.memory_type) == ("negative", MemoryType.preference)


def test_questionnaire_english():
    candidates = extract(("user", questionnaire("en")))
    by_key = {c.memory_key: c for c in candidates}

    assert len(candidates) == 11
    movies = by_key["Favorite movie genres"]
    assert movies.memory_value == "The user's favorite movie genres are Sci-Fi, Action, Comedy."
    assert (movies.memory_type, movies.polarity) == (MemoryType.preference, "positive")
    assert by_key["Preferred chat style"].memory_value.startswith(
        "The user's preferred chat style is ")
    hopes = next(c for c in candidates if "hopes AI" in c.memory_value)
    assert hopes.memory_type == MemoryType.user
    assert hopes.memory_value.startswith("Things the user hopes AI can help with are Planning")
    assert all(c.sources == ["m0"] for c in candidates)


def test_questionnaire_chinese():
    candidates = extract(("user", questionnaire("zh")))
    by_key = {c.memory_key: c for c in candidates}

    assert len(candidates) == 11
    assert by_key["饮食偏好"].memory_value == "用户的饮食偏好：偏爱辣、健康饮食。"
    assert by_key["喜欢的电影类型"].memory_value == "用户喜欢的电影类型：科幻、动作、喜剧。"
    assert "自我成长" in by_key["喜欢的书籍类型"].memory_value  # 自我 is not "I"
    hopes = by_key["希望AI帮助的事情"]
    assert hopes.memory_type == MemoryType.user
    assert hopes.memory_value.startswith("用户希望AI帮助的事情：规划日常学习计划")
    assert all(c.language == "zh" for c in candidates)


# --- named speakers (LoCoMo) -------------------------------------------------------------

LOCOMO_TIME = "2023-05-08 13:56:00"


def locomo(*turns: tuple[str, str]) -> list[Candidate]:
    return extract(*(("user", f"{name}: {text}", LOCOMO_TIME, name) for name, text in turns))


def test_named_speaker_is_the_subject_and_dates_resolve():
    went = only(locomo(
        ("Melanie", "Hey Caroline! Good to see you! How have you been?"),
        ("Caroline", "I went to a LGBTQ support group yesterday and it was so powerful."),
    ))
    assert went.memory_value.startswith(
        "Caroline went to a LGBTQ support group on 7 May 2023")
    assert "the user" not in went.memory_value.lower()
    assert went.memory_type == MemoryType.user
    assert went.memory_key == "LGBTQ support group"
    assert went.sources == ["m1"]
    assert went.event_time == day_start_ms(date(2023, 5, 7))
    assert "How have you been?" in went.context


def test_greetings_and_vocatives_between_named_speakers_are_dropped():
    assert locomo(
        ("Melanie", "Hey Caroline! Good to see you! How have you been?"),
        ("Caroline", "Thanks, Melanie! That's really sweet."),
        ("Melanie", "Wow, that's cool, Caroline! Talk to you soon!"),
    ) == []


def test_named_statement_without_first_person_says_whose_it_is():
    memory = only(locomo(("Caroline", "The transgender stories were so inspiring!")))
    assert memory.memory_value == "Caroline said the transgender stories were so inspiring."


def test_named_possessives_and_dropped_subjects():
    swamped, plans = locomo(
        ("Melanie", "I'm swamped with the kids & work."),
        ("Caroline", "Gonna continue my edu and check out career options!"),
    )
    assert swamped.memory_value == "Melanie is swamped with the kids & work."
    assert plans.memory_value == (
        "Caroline is going to continue Caroline's edu and check out career options.")
    assert plans.confidence < swamped.confidence


# --- questions, requests, fillers ----------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        "What chain hotels are available for accommodation?",
        "Can you help me plan a trip to Tokyo?",
        "Please recommend a good book",
        "Do you know any good restaurants nearby?",
        "有哪些连锁酒店可选？",
        "请帮我推荐几本书",
        "你觉得这个怎么样？",
    ],
)
def test_pure_questions_and_requests_give_no_statement(text):
    made = extract(("user", text))
    # kept whole when long enough to say something of its speaker, never as a statement
    assert all(c.whole_turn and c.memory_value.startswith(("The user asked: ", "用户问："))
               for c in made)
    assert bool(made) == (len(text.split()) >= 6)


def test_the_declarative_clause_of_a_question_is_kept():
    memory = only(extract(("user", "I'm off to Paris next Friday, any tips?")))
    assert memory.memory_value == "The user is off to Paris on Friday, 19 September 2025."
    assert memory.memory_key == "Paris"


@pytest.mark.parametrize(
    "text",
    ["ok", "Thanks!", "Okay, ask me if you have any other questions.", "Sounds good, thank you!",
     "Yes, I did!", "好的", "谢谢", "嗯嗯，好的！", "Got it 👍"],
)
def test_fillers_give_nothing(text):
    assert extract(("user", text)) == []


# --- roles --------------------------------------------------------------------------

def test_assistant_system_and_tool_turns_give_nothing_on_their_own():
    assert extract(
        ("system", "I am a helpful assistant. I like to help."),
        ("assistant", "You like spicy food, and you ran 5 kilometers this morning."),
        ("tool", "I found 3 hotels in Guangzhou."),
    ) == []


def test_sources_are_only_the_user_messages_behind_the_value():
    candidates = extract(*QUICK_START_EN, ("user", "I like spicy food"))
    user_ids = {"m0", "m2", "m4"}
    assert candidates and all(set(c.sources) <= user_ids for c in candidates)
    assert candidates[-1].sources == ["m4"]


# --- context completion ---------------------------------------------------------------

def test_a_short_reply_is_completed_with_any_earlier_topic():
    _, choice = extract(
        ("user", "I'm buying a new laptop for work. Which brand is best?"),
        ("assistant", "Consider Dell, Lenovo or Apple."),
        ("user", "I pick Lenovo"),
    )
    assert choice.memory_value == "The user picked Lenovo for the new laptop for work."
    assert choice.memory_key == "New laptop choice"
    assert choice.sources == ["m2", "m0"]


def test_a_short_reply_is_not_completed_when_nothing_was_offered():
    _, choice = extract(
        ("user", "I'm planning a trip to Guangzhou during the summer vacation."),
        ("assistant", "Noted."),
        ("user", "I choose 7 Days Inn"),
    )
    assert choice.memory_value == "The user chose 7 Days Inn."
    assert choice.sources == ["m2"]
    assert choice.context == "Noted. | I choose 7 Days Inn"


# --- third person --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I am tired after work", "The user is tired after work."),
        ("I'm a software engineer at Google", "The user is a software engineer at Google."),
        ("I have two kids and a dog named Max", "The user has two kids and a dog named Max."),
        ("I go to the gym on Mondays", "The user goes to the gym on Mondays."),
        ("I study Spanish with my sister", "The user studies Spanish with the user's sister."),
        ("I watch the news with my dad", "The user watches the news with the user's dad."),
        ("I need a new phone", "The user needs a new phone."),
        ("I don't eat pork", "The user doesn't eat pork."),
        ("I've been learning Spanish for three months",
         "The user has been learning Spanish for three months."),
        ("I'll call my mom on Sunday", "The user will call the user's mom on Sunday."),
        ("I'd love to visit Japan someday", "The user would love to visit Japan someday."),
        ("My sister lives in Berlin", "The user's sister lives in Berlin."),
        ("We moved to Seattle last year", "The user and others moved to Seattle in 2024."),
        ("Went to the dentist yesterday", "The user went to the dentist on 11 September 2025."),
    ],
)
def test_english_first_person_becomes_the_user(text, expected):
    assert only(extract(("user", text))).memory_value == expected


def test_chinese_first_person_becomes_the_user():
    memory = only(extract(("user", "我们上个月去了三亚")))
    assert memory.memory_value == "用户和其他人2025年8月去了三亚。"
    assert memory.memory_type == MemoryType.user


def test_a_statement_about_the_world_is_long_term_memory():
    memory = only(extract(("user", "The meeting with my boss is tomorrow at 3pm")))
    assert memory.memory_type == MemoryType.user  # it mentions the user's boss
    world = only(extract(("user", "The library closes at 9pm on weekdays")))
    assert world.memory_type == MemoryType.long_term
    assert world.memory_value == "The library closes at 9pm on weekdays."


# --- preferences ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "polarity", "key"),
    [
        ("I love hiking in the mountains", "positive", "Exercise preference"),
        ("I hate waking up early", "negative", "Preference: Waking up early"),
        ("I'm not a fan of horror movies", "negative", "Movie preference"),
        ("I can't stand loud music", "negative", "Music preference"),
        ("My favorite color is blue", "positive", "Favorite color"),
        ("I usually go running every morning", "positive", "Exercise habit"),
        ("我讨厌下雨天", "negative", "偏好：下雨天"),
        ("我经常去健身房健身", "positive", "运动习惯"),
        ("我最喜欢的颜色是蓝色", "positive", "最喜欢的颜色"),
    ],
)
def test_preferences(text, polarity, key):
    memory = only(extract(("user", text)))
    assert memory.memory_type == MemoryType.preference
    assert (memory.polarity, memory.memory_key) == (polarity, key)
    assert memory.preference_type == "explicit"
    assert memory.reasoning


def test_a_wish_is_not_a_preference():
    assert only(extract(("user", "I'd love to visit Japan someday"))).memory_type == (
        MemoryType.user)


# --- language ------------------------------------------------------------------------

def test_language_follows_the_input_and_is_never_translated():
    english, chinese = extract(("user", "I like green tea"), ("user", "我喜欢的学习方式是Podcast"))
    assert (english.language, chinese.language) == ("en", "zh")
    assert chinese.memory_value == "用户喜欢的学习方式是Podcast。"
    assert detect_language("I like 火锅 and 毛血旺") == "en"
    assert detect_language("我在用ChatGPT写代码") == "zh"


def test_event_time_is_the_message_time_without_a_date():
    memory = only(extract(("user", "I like green tea", "2024-02-29 10:00:00")))
    assert memory.event_time == to_epoch_ms("2024-02-29 10:00:00", "t")


@pytest.mark.parametrize("text", ["12:30: lunch, gym", "My: a, b", "Note: I moved to Berlin."])
def test_lines_with_a_colon_that_are_not_questionnaire_answers(text):
    # A questionnaire answer would read "The user's <key> is/are <values>".
    assert not any(c.memory_value.startswith("The user's ") for c in extract(("user", text)))


def test_image_descriptions_become_shared_image_memories():
    msgs = [MessageRecord(tenant_id="t", user_id="u", conversation_id="c", seq=0, role="user",
                          message_id="m0", speaker="John", chat_time=1_700_000_000_000,
                          text="John: Look at this! [image: a dog running on a beach]")]
    (image, *rest) = RuleBasedExtractor().statements(msgs)
    assert image.memory_value == "John shared an image of a dog running on a beach."
    assert image.sources == ["m0"] and image.memory_key == "Shared image"
    assert all("[image" not in c.memory_value for c in rest)
