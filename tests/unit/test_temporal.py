"""Relative dates resolved against the message's own time (UTC)."""

from __future__ import annotations

from datetime import date

import pytest

from engram.extraction.temporal import (
    day_start_ms,
    resolve_relative_dates,
    shift_months,
    strip_relative_dates,
    zh_number,
)
from engram.models.times import to_epoch_ms

FRIDAY_MORNING = to_epoch_ms("2025-09-12 08:00:00", "t")  # a Friday


def resolve(text: str, when: str = "2025-09-12 08:00:00", language: str = "en"):
    return resolve_relative_dates(text, to_epoch_ms(when, "t"), language)


def test_this_morning_keeps_the_message_time_for_the_same_day():
    resolved = resolve("I ran 5 kilometers this morning")
    assert resolved.text == "I ran 5 kilometers on the morning of 12 September 2025"
    assert resolved.event_time == FRIDAY_MORNING


def test_yesterday_gives_the_start_of_that_day():
    resolved = resolve("I went to a support group yesterday", "2023-05-08 13:56:00")
    assert resolved.text == "I went to a support group on 7 May 2023"
    assert resolved.event_time == day_start_ms(date(2023, 5, 7))


@pytest.mark.parametrize(
    ("text", "when", "expected"),
    [
        ("yesterday", "2025-01-01 09:00:00", "on 31 December 2024"),
        ("tomorrow", "2024-12-31 23:30:00", "on 1 January 2025"),
        ("last month", "2025-01-15 10:00:00", "in December 2024"),
        ("next month", "2025-12-03 10:00:00", "in January 2026"),
        ("3 months ago", "2025-03-31 10:00:00", "in December 2024"),
        ("in 3 days", "2025-01-30 10:00:00", "on 2 February 2025"),
        ("the day before yesterday", "2024-03-01 10:00:00", "on 28 February 2024"),
        ("last year", "2025-01-01 00:00:00", "in 2024"),
    ],
)
def test_month_end_and_year_boundaries(text, when, expected):
    assert resolve(text, when).text == expected


@pytest.mark.parametrize(
    ("text", "expected", "day"),
    [
        ("last Friday", "on Friday, 5 September 2025", date(2025, 9, 5)),
        ("this Sunday", "on Sunday, 14 September 2025", date(2025, 9, 14)),
        ("next Monday", "on Monday, 15 September 2025", date(2025, 9, 15)),
        ("last week", "in the week of 1 September 2025", date(2025, 9, 1)),
        ("next weekend", "on the weekend of 20 September 2025", date(2025, 9, 20)),
    ],
)
def test_weekdays_and_weeks_count_from_monday(text, expected, day):
    resolved = resolve(text)
    assert resolved.text == expected
    assert resolved.event_time == day_start_ms(day)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I felt sick last night", "I felt sick on the night of 11 September 2025"),
        ("see you tonight", "see you on the night of 12 September 2025"),
        ("it rained tomorrow morning", "it rained on the morning of 13 September 2025"),
        ("two days ago", "on 10 September 2025"),
        ("a week ago", "around 5 September 2025"),
        ("5 years ago", "in 2020"),
        ("in a week", "around 19 September 2025"),
        ("this year", "in 2025"),
    ],
)
def test_english_phrases(text, expected):
    assert resolve(text).text == expected


def test_the_date_stands_bare_after_a_preposition_or_as_a_subject():
    assert resolve("sore since yesterday").text == "sore since 11 September 2025"
    assert resolve("Today is my birthday").text == "12 September 2025 is my birthday"
    assert resolve("yesterday's game").text == "11 September 2025's game"


def test_the_first_date_found_sets_the_event_time():
    resolved = resolve("yesterday I booked a flight for next Monday")
    assert resolved.text == "on 11 September 2025 I booked a flight for Monday, 15 September 2025"
    assert resolved.event_time == day_start_ms(date(2025, 9, 11))


@pytest.mark.parametrize("text", ["I like spicy food", "a few days ago", "some day soon"])
def test_text_without_a_definite_date_is_unchanged(text):
    resolved = resolve(text)
    assert resolved.text == text
    assert resolved.event_time is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我今天早上跑了5公里", "我2025年9月12日早上跑了5公里"),
        ("昨天", "2025年9月11日"),
        ("昨晚", "2025年9月11日晚上"),
        ("前天", "2025年9月10日"),
        ("明天", "2025年9月13日"),
        ("后天", "2025年9月14日"),
        ("上周五", "2025年9月5日"),
        ("下周", "2025年9月15日那周"),
        ("上周末", "2025年9月6日那个周末"),
        ("上个月", "2025年8月"),
        ("去年", "2024年"),
        ("明年", "2026年"),
        ("3天前", "2025年9月9日"),
        ("两周前", "2025年8月29日左右"),
        ("十二天后", "2025年9月24日"),
    ],
)
def test_chinese_phrases(text, expected):
    assert resolve(text, language="zh").text == expected


def test_chinese_year_boundary():
    resolved = resolve("我上个月去了三亚", "2025-01-03 10:00:00", "zh")
    assert resolved.text == "我2024年12月去了三亚"
    assert resolved.event_time == day_start_ms(date(2024, 12, 1))


@pytest.mark.parametrize("text", ["2025年前完成", "之后天气转晴", "这周围很安静", "过去年轻"])
def test_chinese_look_alikes_are_not_dates(text):
    resolved = resolve(text, language="zh")
    assert resolved.text == text
    assert resolved.event_time is None


def test_strip_relative_dates_leaves_the_rest():
    assert strip_relative_dates("off to Paris next Friday", "en").strip() == "off to Paris"
    assert strip_relative_dates("用户上个月去了三亚", "zh") == "用户去了三亚"


def test_helpers():
    assert shift_months(date(2025, 1, 31), -1) == date(2024, 12, 1)
    assert shift_months(date(2025, 11, 30), 3) == date(2026, 2, 1)
    assert [zh_number(n) for n in ("3", "两", "十", "十二", "二十", "二十三")] == [
        3, 2, 10, 12, 20, 23,
    ]
