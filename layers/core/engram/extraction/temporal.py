"""Relative dates ("yesterday", "last Friday", "上个月") made absolute against the time the
message was sent, so a memory means the same thing when it is read months later.

Calendar arithmetic is in UTC. Weeks start on Monday: "last Friday" is the Friday of the
previous week, "next Friday" the Friday of the following one. Vague spans ("a few days
ago", "recently") are left as written rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MONTHS_EN = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
WEEKDAYS_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SATURDAY = 5


@dataclass(frozen=True, slots=True)
class ResolvedText:
    text: str
    event_time: int | None  # epoch ms of the first date resolved; None when there was none


@dataclass(frozen=True, slots=True)
class Span:
    """A resolved period: its first day and two ways of saying it."""

    start: date
    bare: str  # "12 September 2025": after "since", "until", ... or as a subject
    with_prep: str  # "on 12 September 2025": where the relative phrase stood alone


def resolve_relative_dates(text: str, event_time_ms: int, language: str) -> ResolvedText:
    """Rewrite relative date phrases in `text` as absolute dates. event_time is the start
    (00:00 UTC) of the first period found, or `event_time_ms` itself when that period is
    the message's own day, which keeps the more precise time."""
    if not _may_hold_date(text, language):
        return ResolvedText(text, None)
    resolver = _resolve_zh if language == "zh" else _resolve_en
    today = utc_day(event_time_ms)
    rewritten, first = resolver(text, today)
    if first is None:
        return ResolvedText(text, None)
    event_time = event_time_ms if first == today else day_start_ms(first)
    return ResolvedText(rewritten, event_time)


@dataclass(frozen=True, slots=True)
class Period:
    """The days a relative phrase names: from `start` up to, not including, `end`."""

    start: date
    end: date
    phrase: str


def relative_periods(text: str, today: date) -> list[Period]:
    """Every relative date phrase of `text`, English or Chinese, as the days it names
    counted from `today`, by the same rules as `resolve_relative_dates`: "last Saturday"
    is the Saturday of the previous week, "last week" that week (Monday to Sunday), "two
    weeks ago" the seven days around the day 14 days back, "3 months ago" that month."""
    periods = [Period(*_en_period(m, today), m[0]) for m in _EN_RELATIVE.finditer(text)]
    if _ZH_DATE_CHARS.search(text):
        periods += [Period(*_zh_period(m, today), m[0]) for m in _ZH_RELATIVE.finditer(text)]
    return periods


def strip_relative_dates(text: str, language: str) -> str:
    """The text without its relative date phrases, for titles: 'off to Paris next Friday'
    → 'off to Paris'."""
    if not _may_hold_date(text, language):
        return text
    return (_ZH_RELATIVE if language == "zh" else _EN_RELATIVE).sub("", text)


# Every relative phrase contains one of these; checking for them first keeps the common
# case (no date at all) cheap on the ingest hot path.
_EN_DATE_WORDS = (
    "day", "night", "tomorrow", "morning", "afternoon", "evening", "week", "month", "year"
)
_ZH_DATE_CHARS = re.compile("[天日早晨晚夜周期拜月年]")


def _may_hold_date(text: str, language: str) -> bool:
    if language == "zh":
        return _ZH_DATE_CHARS.search(text) is not None
    lowered = text.lower()
    return any(word in lowered for word in _EN_DATE_WORDS)


# --- calendar helpers -----------------------------------------------------------------

def utc_day(epoch_ms: int) -> date:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).date()


def day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def shift_months(day: date, months: int) -> date:
    """First day of the month `months` away from `day`'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def format_day_en(day: date) -> str:
    return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"


def format_day_zh(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# --- English --------------------------------------------------------------------------

_EN_NUMBER = r"\d{1,3}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_EN_DAY_OFFSETS = {"yesterday": -1, "today": 0, "tonight": 0, "tomorrow": 1}

_EN_RELATIVE = re.compile(
    r"\b(?:"
    r"(?P<before_yesterday>(?:the\s+)?day\s+before\s+yesterday)"
    r"|(?P<after_tomorrow>(?:the\s+)?day\s+after\s+tomorrow)"
    r"|(?P<day>yesterday|today|tonight|tomorrow)(?:\s+(?P<day_part>morning|afternoon|evening|night))?"
    r"|(?P<part_rel>this|last)\s+(?P<part>morning|afternoon|evening|night)"
    r"|(?P<unit_rel>last|this|next)\s+(?P<unit>week|weekend|month|year)"
    r"|(?P<weekday_rel>last|this|next)\s+(?P<weekday>" + "|".join(WEEKDAYS_EN) + r")"
    r"|(?P<ago_n>" + _EN_NUMBER + r")\s+(?P<ago_unit>day|week|month|year)s?\s+ago"
    r"|in\s+(?P<in_n>" + _EN_NUMBER + r")\s+(?P<in_unit>day|week)s?"
    r")\b",
    re.IGNORECASE,
)
# After these words the date stands bare: "since 11 September 2025", not "since on ...".
_EN_BARE_AFTER = re.compile(
    r"\b(?:since|until|till|by|from|before|after|of|for|to|between|through|as of)\s+$", re.I
)
_EN_BARE_BEFORE = re.compile(r"'s\b|\s+(?:is|was|will\s+be|has\s+been)\b", re.I)


def _resolve_en(text: str, today: date) -> tuple[str, date | None]:
    found: list[date] = []

    def replace(match: re.Match[str]) -> str:
        span = _en_span(match, today)
        found.append(span.start)
        return span.bare if _wants_bare(match) else span.with_prep

    return _EN_RELATIVE.sub(replace, text), (found[0] if found else None)


def _wants_bare(match: re.Match[str]) -> bool:
    text, start, end = match.string, match.start(), match.end()
    return bool(
        _EN_BARE_AFTER.search(text, max(0, start - 12), start)
        or _EN_BARE_BEFORE.match(text, end)
    )


def _en_span(m: re.Match[str], today: date) -> Span:
    if m["before_yesterday"]:
        return _en_day(today - timedelta(days=2))
    if m["after_tomorrow"]:
        return _en_day(today + timedelta(days=2))
    if m["day"]:
        word = m["day"].lower()
        part = m["day_part"] or ("night" if word == "tonight" else None)
        return _en_day(today + timedelta(days=_EN_DAY_OFFSETS[word]), part)
    if m["part"]:
        offset = -1 if m["part_rel"].lower() == "last" else 0
        return _en_day(today + timedelta(days=offset), m["part"].lower())
    if m["unit"]:
        return _en_unit(today, _direction(m["unit_rel"]), m["unit"].lower())
    if m["weekday"]:
        monday = week_monday(today) + timedelta(weeks=_direction(m["weekday_rel"]))
        day = monday + timedelta(days=WEEKDAYS_EN.index(m["weekday"].lower()))
        return _en_day(day, weekday=True)
    if m["ago_n"]:
        return _en_offset(today, -_en_number(m["ago_n"]), m["ago_unit"].lower())
    return _en_offset(today, _en_number(m["in_n"]), m["in_unit"].lower())


def _en_period(m: re.Match[str], today: date) -> tuple[date, date]:
    start = _en_span(m, today).start
    unit = (m["unit"] or m["ago_unit"] or m["in_unit"] or "day").lower()
    if unit == "week" and not m["unit"]:  # "two weeks ago": around that day
        return start - timedelta(days=3), start + timedelta(days=4)
    return start, period_end(start, unit)


def period_end(start: date, unit: str) -> date:
    """The day after the period of `unit` (day, weekend, week, month, year) from `start`."""
    if unit == "month":
        return shift_months(start, 1)
    if unit == "year":
        return date(start.year + 1, 1, 1)
    return start + timedelta(days={"week": 7, "weekend": 2}.get(unit, 1))


def _direction(word: str) -> int:
    return {"last": -1, "this": 0, "next": 1}[word.lower()]


def _en_number(word: str) -> int:
    return int(word) if word.isdigit() else _EN_NUMBERS[word.lower()]


def _en_day(day: date, part: str | None = None, weekday: bool = False) -> Span:
    text = format_day_en(day)
    if weekday:
        text = f"{WEEKDAYS_EN[day.weekday()].capitalize()}, {text}"
    if part:
        text = f"the {part} of {text}"
    return Span(day, text, f"on {text}")


def _en_unit(today: date, direction: int, unit: str) -> Span:
    if unit == "week":
        monday = week_monday(today) + timedelta(weeks=direction)
        text = f"the week of {format_day_en(monday)}"
        return Span(monday, text, f"in {text}")
    if unit == "weekend":
        saturday = week_monday(today) + timedelta(weeks=direction, days=SATURDAY)
        text = f"the weekend of {format_day_en(saturday)}"
        return Span(saturday, text, f"on {text}")
    if unit == "month":
        return _en_month(shift_months(today, direction))
    return _en_year(today.year + direction)


def _en_offset(today: date, amount: int, unit: str) -> Span:
    if unit == "day":
        return _en_day(today + timedelta(days=amount))
    if unit == "week":
        day = today + timedelta(weeks=amount)
        text = f"around {format_day_en(day)}"
        return Span(day, text, text)
    if unit == "month":
        return _en_month(shift_months(today, amount))
    return _en_year(today.year + amount)


def _en_month(first: date) -> Span:
    text = f"{MONTHS_EN[first.month - 1]} {first.year}"
    return Span(first, text, f"in {text}")


def _en_year(year: int) -> Span:
    return Span(date(year, 1, 1), str(year), f"in {year}")


# --- Chinese --------------------------------------------------------------------------

_ZH_DAY_OFFSETS = {
    "大前天": -3, "前天": -2, "昨天": -1, "昨日": -1, "今天": 0, "今日": 0,
    "明天": 1, "明日": 1, "后天": 2, "大后天": 3,
}
_ZH_SHORT_DAYS = {
    "今早": (0, "早上"), "今晨": (0, "早上"), "今晚": (0, "晚上"), "昨晚": (-1, "晚上"),
    "昨夜": (-1, "晚上"), "明早": (1, "早上"), "明晚": (1, "晚上"),
}
_ZH_YEARS = {"前年": -2, "去年": -1, "今年": 0, "明年": 1}
_ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_ZH_WEEK = r"个?(?:周|星期|礼拜)(?![围边期到])"

_ZH_RELATIVE = re.compile(
    # (?<!..): 之后天气 / 以前天 / 过去年 are not dates.
    r"(?<![之以然最提过])(?P<day>大前天|大后天|前天|后天|昨天|昨日|今天|今日|明天|明日)"
    r"(?P<day_part>早上|上午|中午|下午|傍晚|晚上|夜里)?"
    r"|(?P<short>今早|今晨|今晚|昨晚|昨夜|明早|明晚)"
    r"|(?P<week_rel>上|这|本|下)" + _ZH_WEEK + r"(?P<weekday>[一二三四五六日天]|末)?"
    r"|(?P<month_rel>上个?|这个|本|下个?)月"
    r"|(?<!过)(?P<year>前年|去年|今年|明年)"
    r"|(?<![\d一二两三四五六七八九十])(?P<n>\d{1,2}|[一二两三四五六七八九十]{1,3})"
    r"(?P<unit>天|周|个星期|个礼拜|个月|年)(?P<dir>以前|之前|前|以后|之后|后)"
)


def _resolve_zh(text: str, today: date) -> tuple[str, date | None]:
    found: list[date] = []

    def replace(match: re.Match[str]) -> str:
        start, rendered = _zh_span(match, today)
        found.append(start)
        return rendered

    return _ZH_RELATIVE.sub(replace, text), (found[0] if found else None)


def _zh_span(m: re.Match[str], today: date) -> tuple[date, str]:
    if m["day"]:
        day = today + timedelta(days=_ZH_DAY_OFFSETS[m["day"]])
        return day, format_day_zh(day) + (m["day_part"] or "")
    if m["short"]:
        offset, part = _ZH_SHORT_DAYS[m["short"]]
        day = today + timedelta(days=offset)
        return day, format_day_zh(day) + part
    if m["week_rel"]:
        return _zh_week(today, m["week_rel"], m["weekday"])
    if m["month_rel"]:
        first = shift_months(today, _zh_direction(m["month_rel"]))
        return first, f"{first.year}年{first.month}月"
    if m["year"]:
        year = today.year + _ZH_YEARS[m["year"]]
        return date(year, 1, 1), f"{year}年"
    return _zh_offset(today, m)


def _zh_period(m: re.Match[str], today: date) -> tuple[date, date]:
    start, _ = _zh_span(m, today)
    if m["week_rel"]:
        unit = {None: "week", "末": "weekend"}.get(m["weekday"], "day")
    elif m["month_rel"]:
        unit = "month"
    elif m["year"]:
        unit = "year"
    elif m["unit"]:
        unit = {"天": "day", "个月": "month", "年": "year"}.get(m["unit"], "week")
        if unit == "week":  # "两周前": around that day
            return start - timedelta(days=3), start + timedelta(days=4)
    else:
        unit = "day"
    return start, period_end(start, unit)


def _zh_direction(word: str) -> int:
    return {"上": -1, "这": 0, "本": 0, "下": 1}[word[0]]


def _zh_week(today: date, rel: str, weekday: str | None) -> tuple[date, str]:
    monday = week_monday(today) + timedelta(weeks=_zh_direction(rel))
    if weekday is None:
        return monday, f"{format_day_zh(monday)}那周"
    if weekday == "末":
        saturday = monday + timedelta(days=SATURDAY)
        return saturday, f"{format_day_zh(saturday)}那个周末"
    day = monday + timedelta(days=_ZH_WEEKDAYS[weekday])
    return day, format_day_zh(day)


def _zh_offset(today: date, m: re.Match[str]) -> tuple[date, str]:
    amount = zh_number(m["n"])
    if m["dir"].endswith("前"):
        amount = -amount
    unit = m["unit"]
    if unit == "天":
        day = today + timedelta(days=amount)
        return day, format_day_zh(day)
    if unit == "个月":
        first = shift_months(today, amount)
        return first, f"{first.year}年{first.month}月"
    if unit == "年":
        return date(today.year + amount, 1, 1), f"{today.year + amount}年"
    day = today + timedelta(weeks=amount)
    return day, f"{format_day_zh(day)}左右"


def zh_number(text: str) -> int:
    """'3' → 3, '两' → 2, '十二' → 12, '二十' → 20."""
    if text.isdigit():
        return int(text)
    tens, has_ten, units = text.partition("十")
    if not has_ten:
        return _ZH_DIGITS.get(text, 0)
    return _ZH_DIGITS.get(tens, 1) * 10 + _ZH_DIGITS.get(units, 0)
