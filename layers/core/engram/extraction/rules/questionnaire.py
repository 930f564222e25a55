"""Questionnaire lines: 'Favorite movie genres: Sci-Fi, Action' is a key and its values,
one memory per line."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engram.extraction.rules.english import is_content_free_en

_QUESTIONNAIRE_LINE = re.compile(r"^(?P<key>[^:：.!?。！？\[(]{1,40}?)\s*[:：]\s*(?P<values>\S.*)$")
_LIST_SEPARATOR = re.compile(r"\s*[,，、;；]\s*")
_PREFERENCE_KEY = re.compile(
    r"favou?rite|prefer|like|love|enjoy|habit|style|interest|hobb|taste|fan\b|"
    r"喜欢|偏好|偏爱|习惯|爱好|兴趣|风格|最爱|口味|讨厌|忌口",
    re.I,
)
_PLURAL_WORD = re.compile(r"\b\w{2,}[^\Ws]s\b")  # "genres", "types"; not "chess"
_NEGATIVE_KEY = re.compile(r"dislike|hate|avoid|不喜欢|讨厌|忌口", re.I)


@dataclass(frozen=True, slots=True)
class QuestionnaireLine:
    key: str
    values: list[str]

    @property
    def is_preference(self) -> bool:
        return bool(_PREFERENCE_KEY.search(self.key))

    @property
    def polarity(self) -> str:
        return "negative" if _NEGATIVE_KEY.search(self.key) else "positive"

    @property
    def plural(self) -> bool:
        """'Favorite movie genres: ...' are, 'Favorite game: ...' is."""
        return bool(_PLURAL_WORD.search(self.key))


def parse_questionnaire_line(line: str, language: str) -> QuestionnaireLine | None:
    """'Favorite movie genres: Sci-Fi, Action' → key and values; None for prose."""
    match = _QUESTIONNAIRE_LINE.match(line)
    if not match or line.rstrip()[-1:] in ".!?。！？" or "//" in line:
        return None
    key, values = match["key"].strip(), _LIST_SEPARATOR.split(match["values"].strip())
    if language == "zh":
        unusable = len(key) > 16
    else:  # too long for a label, or no label at all: "My: ..."
        unusable = len(key.split()) > 7 or is_content_free_en(key)
    if unusable or key[-1:].isdigit():  # "12:30: lunch, gym" is a time, not a key
        return None
    if len(values) < 2 and not _PREFERENCE_KEY.search(key):
        return None
    return QuestionnaireLine(key, [v for v in values if v])
