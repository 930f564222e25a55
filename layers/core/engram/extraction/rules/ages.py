"""A person's age, a fact questions reach by no shared word: "How many years will I be
when Rachel gets married?" needs "I'm 32" from a skincare chat. A statement of its
speaker's age gets the key AGE_KEY; a query asking an age (retrieval/intent.py) searches
that key's term too, and favours memories so keyed."""

from __future__ import annotations

import re

AGE_KEY = {"en": "Age", "zh": "年龄"}

# "I'm 32", "I am 45 years old", "I'm a 28-year-old…", "Caroline is 25 years old", "I just
# turned 30", "turning 40 next month", "my 30th birthday"; not "I'm 5 minutes away", and a
# third person only with "years old" ("It is 5." is no age).
_AGE_EN = re.compile(
    r"\bI(?:'m|’m| am)\s+(?:now\s+|only\s+|just\s+|already\s+|almost\s+)?(?:a\s+)?\d{1,3}"
    r"(?:[\s-]years?[\s-]old|(?=\s*(?:[,.;!?)]|$|and\b|but\b|so\b|now\b|this\b|myself\b)))"
    r"|\b\d{1,3}[\s-]years?[\s-]old\b"
    r"|\bturn(?:ed|ing|s)?\s+\d{1,3}\b(?!\s*(?:%|percent|degrees|minutes|hours|days|weeks))"
    r"|\b(?:my|his|her|their)\s+\d{1,3}(?:st|nd|rd|th)\s+birthday\b",
    re.I)
_AGE_ZH = re.compile(r"\d{1,3}\s*(?:周)?岁")  # not "今年3月" (March this year)


def states_an_age(first_person: str, language: str) -> bool:
    return bool((_AGE_ZH if language == "zh" else _AGE_EN).search(first_person))
