"""Time as a search signal: the periods a query names, how a memory's event time earns a
boost from them, and which version of a memory held at a given time.

`query_windows(query, reference_time)` is the one place a query's dates are read:
relative phrases ("yesterday", "last Saturday", "two weeks ago", "last year", "上周",
"昨天") resolve against `reference_time`, by the rules extraction resolves them in
memories with (extraction/temporal.py), so a question and the memory it asks about name
the same days; absolute dates ("on 7 May 2023", "in July 2023", "in May", "in 2022",
"5月7日", "2023年") are read as written, a month or day without a year as the latest one
not after the reference day. Calendar days are UTC.

`time_match` is the one scoring term: 1 when a memory's event time falls in a window,
falling linearly to 0 at half the window's length (at least a day) outside it, since a
question's "last week" may be loose; search adds `date_weight` × it to the relativity
(services/search.py): up to TIME_WEIGHT, less for a query with more topic words besides
its dates. A query without dates gets no windows, and its scores do not change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from engram.extraction.temporal import (
    MONTHS_EN,
    day_start_ms,
    period_end,
    relative_periods,
    utc_day,
)
from engram.models.domain import Memory
from engram.retrieval.lexical import tokenize

# A memory inside a window the query names gains up to this much relativity: all of it
# when the date is all the query asks by ("what did I do last Saturday?"), less the more
# topic words it has besides ("what charity event did I join a month ago?": the topic
# decides, the date breaks near ties), since a window lifts everything said then,
# relevant or not. See `date_weight`; README (Benchmarks) has the figures.
TIME_WEIGHT = 0.2
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Window:
    """A period a query names: epoch ms from `start` up to, not including, `end`."""

    start: int
    end: int
    phrase: str  # as written in the query


_MONTH = "|".join([*MONTHS_EN, *(m[:3] for m in MONTHS_EN if len(m) > 3), "Sept"])
_ORDINAL = r"(?P<{}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{}>(?:19|20)\d\d)"
_EN_ABSOLUTE = re.compile(r"\b(?:" + "|".join([
    # "May 7, 2023", "May 7th"
    rf"(?P<m1>{_MONTH})\.?\s+{_ORDINAL.format('d1')}(?![\d:])(?:,?\s+{_YEAR.format('y1')})?",
    # "7 May 2023", "the 7th of May"
    rf"{_ORDINAL.format('d2')}\s+(?:of\s+)?(?P<m2>{_MONTH})\b\.?(?:,?\s+{_YEAR.format('y2')})?",
    # "July 2023"
    rf"(?P<m3>{_MONTH})\.?,?\s+{_YEAR.format('y3')}",
    # "in May", "during early June": a month alone needs a word before it ("May I ..."),
    # and leaves "in May 2023" / "in May 7" to the forms above
    rf"(?:in|during|of|since|until|before|after|early|mid|late)\s+(?P<m4>{_MONTH})"
    r"(?!\.?,?\s+\d)",
    # "in 2022", "during 2019"
    rf"(?:in|during|of|since|until|before|after)\s+{_YEAR.format('y4')}",
]) + r")\b", re.IGNORECASE)
_ZH_ABSOLUTE = re.compile(
    r"(?:(?P<year>(?:19|20)\d\d)年)?(?P<month>1[0-2]|0?[1-9])月(?:(?P<day>[0-3]?\d)[日号])?"
    r"|(?P<year_only>(?:19|20)\d\d)年(?!\d)"
)


def query_windows(query: str, reference_time: int) -> list[Window]:
    """The periods `query` names, relative ones counted from `reference_time` (epoch
    ms: when the question is asked). Empty when it names none."""
    today = utc_day(reference_time)
    found = [(p.start, p.end, p.phrase) for p in relative_periods(query, today)]
    found += [period for m in _EN_ABSOLUTE.finditer(query)
              if (period := _en_absolute(m, today))]
    found += [period for m in _ZH_ABSOLUTE.finditer(query)
              if (period := _zh_absolute(m, today))]
    return [Window(day_start_ms(start), day_start_ms(end), phrase)
            for start, end, phrase in found]


def date_weight(query: str, windows: Sequence[Window]) -> float:
    """How much a window match is worth for `query`: TIME_WEIGHT × max(1/2, 2 / (2 + n)),
    n the query's terms besides its dates (0 → 0.2, 1 → 0.13, 2 or more → 0.1); 0
    without windows."""
    if not windows:
        return 0.0
    rest = query
    for window in windows:
        rest = rest.replace(window.phrase, " ")
    return TIME_WEIGHT * max(0.5, 2 / (2 + len(set(tokenize(rest)))))


def time_match(event_time: int | None, windows: Sequence[Window]) -> float:
    """In [0, 1]: 1 when `event_time` falls in one of `windows`, falling linearly to 0
    at half that window's length (at least a day) before or after it; the best window
    counts. 0 without an event time."""
    if event_time is None:
        return 0.0
    best = 0.0
    for w in windows:
        distance = max(w.start - event_time, event_time - w.end + 1, 0)
        slack = max((w.end - w.start) / 2, DAY_MS)
        best = max(best, 1.0 - distance / slack)
    return best


def version_at(memory: Memory, when: int) -> Memory | None:
    """The memory as it stood at `when` (epoch ms): itself while its current value held,
    else the past version from its history valid then (value, version, window and event
    time taken from it), else None (it was not yet known, or no longer held)."""
    if memory.valid_from <= when and (memory.valid_to is None or when < memory.valid_to):
        return memory
    for past in reversed(memory.history):
        if past.valid_from <= when < past.valid_to:
            return memory.model_copy(update={
                "memory_value": past.memory_value, "version": past.version,
                "valid_from": past.valid_from, "valid_to": past.valid_to,
                "event_time": past.valid_from})
    return None


# --- absolute dates ---------------------------------------------------------------------

def _month_number(name: str) -> int:
    lowered = name.lower()[:3]
    return next(i for i, m in enumerate(MONTHS_EN, 1) if m.lower().startswith(lowered))


def _latest(month: int, day: int | None, today: date) -> int:
    """The year of the latest `month` (and `day`) not after `today`."""
    if (month, day or 1) <= (today.month, today.day):
        return today.year
    return today.year - 1


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:  # "February 30"
        return None


def _en_absolute(m: re.Match[str], today: date) -> tuple[date, date, str] | None:
    if m["y4"]:
        start = date(int(m["y4"]), 1, 1)
        return start, period_end(start, "year"), m[0]
    name = m["m1"] or m["m2"] or m["m3"] or m["m4"]
    month = _month_number(name)
    day_text = m["d1"] or m["d2"]
    year_text = m["y1"] or m["y2"] or m["y3"]
    if day_text is None:
        year = int(year_text) if year_text else _latest(month, None, today)
        start = date(year, month, 1)
        return start, period_end(start, "month"), m[0]
    day = int(day_text)
    year = int(year_text) if year_text else _latest(month, day, today)
    start = _day(year, month, day)
    return (start, period_end(start, "day"), m[0]) if start else None


def _zh_absolute(m: re.Match[str], today: date) -> tuple[date, date, str] | None:
    if m["year_only"]:
        start = date(int(m["year_only"]), 1, 1)
        return start, period_end(start, "year"), m[0]
    month = int(m["month"])
    day = int(m["day"]) if m["day"] else None
    year = int(m["year"]) if m["year"] else _latest(month, day, today)
    if day is None:
        start = date(year, month, 1)
        return start, period_end(start, "month"), m[0]
    start = _day(year, month, day)
    return (start, period_end(start, "day"), m[0]) if start else None
