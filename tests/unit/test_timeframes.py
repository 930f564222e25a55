"""The periods a query names, counted from when it is asked; the time scoring term; the
version of a memory that held at a given time."""

from __future__ import annotations

from datetime import date

import pytest

from engram.extraction.temporal import day_start_ms, utc_day
from engram.models.domain import Memory, MemoryType, MemoryVersion
from engram.models.times import to_epoch_ms
from engram.retrieval.timeframes import (
    DAY_MS,
    TIME_WEIGHT,
    Window,
    date_weight,
    query_windows,
    time_match,
    version_at,
)

ASKED = "2025-09-17 10:00:00"  # a Wednesday


def days(query: str, asked: str = ASKED) -> list[tuple[str, date, date]]:
    """(phrase, first day, day after the last) of each window."""
    return [(w.phrase, utc_day(w.start), utc_day(w.end))
            for w in query_windows(query, to_epoch_ms(asked, "asked"))]


@pytest.mark.parametrize(("query", "phrase", "first", "after"), [
    ("What did I do yesterday?", "yesterday", date(2025, 9, 16), date(2025, 9, 17)),
    # the Saturday of the previous week, as extraction reads it in memories
    ("What did I do last Saturday?", "last Saturday", date(2025, 9, 13), date(2025, 9, 14)),
    ("where was I last weekend", "last weekend", date(2025, 9, 13), date(2025, 9, 15)),
    ("anything last week?", "last week", date(2025, 9, 8), date(2025, 9, 15)),
    # a span of weeks back is loose: the seven days around that day
    ("What did I buy two weeks ago?", "two weeks ago", date(2025, 8, 31), date(2025, 9, 7)),
    ("a charity event a month ago", "a month ago", date(2025, 8, 1), date(2025, 9, 1)),
    ("Where did I travel last year?", "last year", date(2024, 1, 1), date(2025, 1, 1)),
    ("What did I plant three days ago", "three days ago", date(2025, 9, 14), date(2025, 9, 15)),
])
def test_english_relative_phrases_count_from_the_reference_time(query, phrase, first, after):
    assert days(query) == [(phrase, first, after)]


@pytest.mark.parametrize(("query", "phrase", "first", "after"), [
    ("What painting did she show on October 13, 2023?", "October 13, 2023",
     date(2023, 10, 13), date(2023, 10, 14)),
    ("What did Gina find on 1 February, 2023?", "1 February, 2023",
     date(2023, 2, 1), date(2023, 2, 2)),
    ("What class did Maria start in December 2023?", "December 2023",
     date(2023, 12, 1), date(2024, 1, 1)),
    ("How often did I go to the beach in 2023?", "in 2023", date(2023, 1, 1), date(2024, 1, 1)),
    # no year: the latest such month or day not after the day asked
    ("Where did I go in May?", "in May", date(2025, 5, 1), date(2025, 6, 1)),
    ("What did I do in December?", "in December", date(2024, 12, 1), date(2025, 1, 1)),
    ("the 3rd of March", "3rd of March", date(2025, 3, 3), date(2025, 3, 4)),
    ("Sept 20", "Sept 20", date(2024, 9, 20), date(2024, 9, 21)),
])
def test_english_absolute_dates(query, phrase, first, after):
    assert days(query) == [(phrase, first, after)]


@pytest.mark.parametrize(("query", "phrase", "first", "after"), [
    ("我昨天做了什么？", "昨天", date(2025, 9, 16), date(2025, 9, 17)),
    ("我上周做了什么", "上周", date(2025, 9, 8), date(2025, 9, 15)),
    ("上周六去了哪里", "上周六", date(2025, 9, 13), date(2025, 9, 14)),
    ("上周末", "上周末", date(2025, 9, 13), date(2025, 9, 15)),
    ("上个月买了什么", "上个月", date(2025, 8, 1), date(2025, 9, 1)),
    ("去年去哪里旅行了", "去年", date(2024, 1, 1), date(2025, 1, 1)),
    ("3天前", "3天前", date(2025, 9, 14), date(2025, 9, 15)),
    ("两周前买了什么", "两周前", date(2025, 8, 31), date(2025, 9, 7)),
    ("5月7日吃了什么", "5月7日", date(2025, 5, 7), date(2025, 5, 8)),
    ("2023年5月", "2023年5月", date(2023, 5, 1), date(2023, 6, 1)),
    ("12月去了哪里", "12月", date(2024, 12, 1), date(2025, 1, 1)),
    ("2022年的旅行", "2022年", date(2022, 1, 1), date(2023, 1, 1)),
])
def test_chinese_phrases(query, phrase, first, after):
    assert days(query) == [(phrase, first, after)]


def test_year_boundaries_follow_the_reference_time():
    assert days("What did I do yesterday?", "2025-01-01 09:00:00") == [
        ("yesterday", date(2024, 12, 31), date(2025, 1, 1))]
    assert days("in December", "2025-12-31 23:00:00") == [
        ("in December", date(2025, 12, 1), date(2026, 1, 1))]


@pytest.mark.parametrize("query", [
    "Where do I live?", "May I ask what my favourite food is?", "What did I say about 2000 "
    "people?", "我最喜欢的食物是什么", "a few days ago", "How many days did the trip take?",
])
def test_a_query_without_a_date_has_no_window(query):
    assert query_windows(query, to_epoch_ms(ASKED, "asked")) == []


def test_two_dates_give_two_windows():
    assert [w.phrase for w in query_windows("between last Monday and yesterday",
                                            to_epoch_ms(ASKED, "asked"))] == [
        "last Monday", "yesterday"]


@pytest.mark.parametrize(("query", "topic_terms"), [
    ("What did I do last Saturday?", 0),  # the date is all it asks by
    ("Where did I go yesterday?", 1),  # "go"
    ("What charity event did I participate in a month ago?", 3),
    ("上周我做了什么？", 4),  # 我做 做了 了什 什么: Chinese counts character bigrams
])
def test_the_date_weighs_less_the_more_topic_a_query_has(query, topic_terms):
    windows = query_windows(query, to_epoch_ms(ASKED, "asked"))
    assert windows
    assert date_weight(query, windows) == pytest.approx(
        TIME_WEIGHT * max(0.5, 2 / (2 + topic_terms)))
    assert date_weight("what did I do?", []) == 0.0


# --- the scoring term ---------------------------------------------------------------

SATURDAY = Window(day_start_ms(date(2025, 9, 13)), day_start_ms(date(2025, 9, 14)), "sat")
MAY = Window(day_start_ms(date(2025, 5, 1)), day_start_ms(date(2025, 6, 1)), "may")


def test_inside_a_window_the_match_is_full():
    assert time_match(SATURDAY.start, [SATURDAY]) == 1.0
    assert time_match(SATURDAY.end - 1, [SATURDAY]) == 1.0


def test_outside_it_fades_over_half_the_window_and_at_least_a_day():
    # a one-day window fades over a day: 6 h after it, three quarters remain
    assert time_match(SATURDAY.end + DAY_MS // 4, [SATURDAY]) == pytest.approx(0.75, abs=1e-6)
    assert time_match(SATURDAY.start - DAY_MS, [SATURDAY]) == 0.0
    # a 31-day month fades over 15.5 days
    half = 15.5 * DAY_MS
    assert time_match(MAY.start - int(half / 2), [MAY]) == pytest.approx(0.5, abs=1e-6)
    assert time_match(MAY.end + int(half), [MAY]) == 0.0


def test_the_best_window_counts_and_no_event_time_no_match():
    assert time_match(SATURDAY.start, [MAY, SATURDAY]) == 1.0
    assert time_match(None, [SATURDAY]) == 0.0
    assert time_match(SATURDAY.start, []) == 0.0


# --- as_of ---------------------------------------------------------------------------

JAN, MAR, JUN = (to_epoch_ms(d, "t") for d in ("2025-01-10", "2025-03-01", "2025-06-01"))


def coffee() -> Memory:
    """Loved coffee from January, stopped in June."""
    return Memory(
        tenant_id="t", user_id="u", memory_type=MemoryType.preference, memory_key="coffee",
        memory_value="The user doesn't like coffee anymore.", version=2, valid_from=JUN,
        event_time=JUN, history=[MemoryVersion(
            version=1, memory_value="The user loves coffee.", valid_from=JAN, valid_to=JUN,
            change="supersede", reason="contradicted by a newer preference")])


def test_the_version_valid_then_answers():
    then = version_at(coffee(), MAR)
    assert then is not None and then.memory_value == "The user loves coffee."
    assert (then.version, then.valid_from, then.valid_to, then.event_time) == (1, JAN, JUN, JAN)
    assert version_at(coffee(), JUN).memory_value == "The user doesn't like coffee anymore."


def test_a_memory_not_yet_known_then_is_left_out():
    assert version_at(coffee(), JAN - 1) is None
    fresh = Memory(tenant_id="t", user_id="u", memory_type=MemoryType.user, memory_key="k",
                   memory_value="v", valid_from=JUN)
    assert version_at(fresh, MAR) is None and version_at(fresh, JUN) is fresh
