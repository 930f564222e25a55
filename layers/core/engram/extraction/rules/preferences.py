"""Preferences and habits: whether a statement states one ("I love spicy food", "我每天跑步"),
what it is about, and the key it is filed under ("Food preference", "Favorite color")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engram.extraction.rules.english import EN_ADVERBS, EN_FIRST_PERSON_WORD


@dataclass(frozen=True, slots=True)
class Preference:
    polarity: str  # "positive" | "negative"
    habit: bool


_EN_PREFERENCE = re.compile(
    r"\b(?:i|we)(?:'m|'ve|'s)?(?:\s+(?:" + EN_ADVERBS + r"|do|don't|do not|didn't|did not|"
    r"have|am|no longer|not))*\s+(?:like[sd]?|love[sd]?|enjoy(?:s|ed)?|prefer(?:s|red)?|"
    r"adore[sd]?|hate[sd]?|dislike[sd]?|detest(?:s|ed)?|can't stand|cannot stand|"
    r"am into|'m into|really into)\b"
    r"|\bfavou?rite\b|\b(?:big |huge |not a |not much of a )?fan of\b",
    re.I,
)
_EN_HABIT = re.compile(
    r"\b(?:usually|always|often|normally|typically|every (?:morning|day|night|evening|week|"
    r"weekend)|each (?:morning|day|week)|most (?:mornings|days|nights|weekends))\b",
    re.I,
)
_EN_WISH = re.compile(r"\b(?:would|'d)\s+(?:really\s+)?(?:like|love)\b", re.I)
_EN_NEGATIVE_PREFERENCE = re.compile(
    r"\b(?:(?:don't|do not|didn't|did not|never|not|no longer)\s+(?:really\s+|much\s+|"
    r"particularly\s+|even\s+)?(?:like|love|enjoy|care for)|hate[sd]?|dislike[sd]?|"
    r"detest(?:s|ed)?|can't stand|cannot stand|not (?:a|much of a|really a) fan|"
    r"not (?:really )?into)\b",
    re.I,
)
_ZH_NEGATIVE_PREFERENCE = re.compile(
    r"不(?:太|怎么|是很|大|很)?喜欢|不爱|讨厌|受不了|反感|不习惯|厌恶|不感兴趣"
)
_ZH_PREFERENCE = re.compile(
    r"喜欢|热爱|偏爱|偏好|最爱|钟爱|迷上|(?:我|很|最|特别|非常|超|也|都|真|就)爱(?![人情心])"
)
_ZH_HABIT = re.compile(r"习惯|经常|总是|每天|通常|平时")


def detect_preference(first_person: str, language: str) -> Preference | None:
    """A preference or habit stated by the speaker, read from the first-person text."""
    if language == "zh":
        return _preference_zh(first_person)
    if _EN_NEGATIVE_PREFERENCE.search(first_person):
        return Preference("negative", habit=False)
    if _EN_WISH.search(first_person):
        return None  # "I'd love to ..." is a wish, not a taste
    if _EN_PREFERENCE.search(first_person):
        return Preference("positive", habit=False)
    if _EN_HABIT.search(first_person) and EN_FIRST_PERSON_WORD.search(first_person):
        return Preference("positive", habit=True)
    return None


def liked_part(first_person: str, language: str) -> str:
    """What the preference is about: the words after 'like'/'喜欢' (or the whole text)."""
    patterns = (_ZH_NEGATIVE_PREFERENCE, _ZH_PREFERENCE) if language == "zh" else (
        _EN_NEGATIVE_PREFERENCE, _EN_PREFERENCE)
    for pattern in patterns:
        match = pattern.search(first_person)
        if match and match.end() < len(first_person):
            return first_person[match.end():].strip()
    return first_person


def _preference_zh(text: str) -> Preference | None:
    if _ZH_NEGATIVE_PREFERENCE.search(text):
        return Preference("negative", habit=False)
    if _ZH_PREFERENCE.search(text):
        return Preference("positive", habit=False)
    if _ZH_HABIT.search(text):
        return Preference("positive", habit=True)
    return None


# --- keys -----------------------------------------------------------------------------

_FAVOURITE = {
    "en": re.compile(r"\bfavou?rite\s+((?:[\w-]+\s+){0,2}?[\w-]+)\s+(?:is|are|was|were)\b", re.I),
    "zh": re.compile(r"最(?:喜欢|爱)的([^，,。是]{1,6})是"),
}


def favourite_key(first_person: str, language: str) -> str | None:
    """'My favorite color is blue' → 'Favorite color'; None when no favourite is named."""
    favourite = _FAVOURITE[language].search(first_person)
    if not favourite:
        return None
    thing = favourite.group(1)
    return f"最喜欢的{thing}" if language == "zh" else f"Favorite {thing.lower()}"


def preference_key(
    topic: str | None, phrase: str, preference: Preference, language: str
) -> str:
    if language == "zh":
        kind = "习惯" if preference.habit else "偏好"
        return f"{topic}{kind}" if topic else f"{kind}：{phrase}".rstrip("：")
    kind = "habit" if preference.habit else "preference"
    if topic:
        return f"{topic} {kind}"
    return f"{kind.capitalize()}: {phrase}" if phrase else kind.capitalize()
