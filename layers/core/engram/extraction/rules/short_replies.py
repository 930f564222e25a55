"""Short replies to an assistant that offered options ("I choose 7 Days Inn"): they take
the topic of the last earlier user statement, so the memory still makes sense alone."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engram.extraction.rules.chinese import ZH_PUNCTUATION, ZH_SENTENCE_END
from engram.extraction.rules.english import EN_CLAUSE_BREAK
from engram.extraction.rules.subject import Subject, strip_subject
from engram.extraction.rules.topics import ZH_KEY_BREAK

SHORT_REPLY_WORDS = 6
SHORT_REPLY_CHARS_ZH = 12

_OFFERS_CHOICE = re.compile(
    r"[?？\[【]|、|\b(?:or|consider|options?|recommend\w*|suggest\w*|choose|which)\b|"
    r"可以考虑|推荐|建议|选择|还是|哪",
    re.I,
)
_EN_CHOICE = re.compile(
    r"\b(?:choose|chose|pick|picked|select|selected|go with|went with|opt for|opted for|"
    r"decided on|book|booked|take|took)\b",
    re.I,
)
_ZH_CHOICE = re.compile(r"选|挑|定了|决定|就要|订了")
_EN_ARTICLE_START = re.compile(r"\b(?:a|an|the)\s+", re.I)
_ZH_TOPIC_INTENT = re.compile(r"已经|定好|打算|计划|准备|决定")


@dataclass(slots=True)
class TopicStatement:
    """The last declarative user statement, for completing short replies."""

    value: str  # third person, dates resolved, no final punctuation
    message_id: str
    asked: list[str]  # question clauses dropped from the same message


def offers_choice(text: str) -> bool:
    """Whether an assistant turn offered options or asked the user to pick one."""
    return bool(_OFFERS_CHOICE.search(text))


def is_short(text: str, language: str) -> bool:
    if language == "zh":
        return len(ZH_PUNCTUATION.sub("", text)) <= SHORT_REPLY_CHARS_ZH
    return len(text.split()) <= SHORT_REPLY_WORDS


def is_choice(first_person: str, language: str) -> bool:
    return bool((_ZH_CHOICE if language == "zh" else _EN_CHOICE).search(first_person))


def choice_key(chosen_among: str, language: str) -> str:
    """'Hotel choice' / '酒店选择'."""
    if language == "zh":
        return f"{chosen_among}选择" if chosen_among else "选择"
    return f"{chosen_among} choice" if chosen_among else "Choice"


def bare(value: str) -> str:
    """A memory's value without its final punctuation."""
    return ZH_SENTENCE_END.sub("", value)


def with_topic(value: str, topic_value: str, subject: Subject) -> str:
    """Append the topic's main clause: '... for the trip to Guangzhou during the summer
    vacation' or '…（暑假去广州旅游）'."""
    value = bare(value)
    if subject.language == "zh":
        clause = strip_subject(ZH_KEY_BREAK.split(topic_value, 1)[0], subject)
        return f"{value}（{_ZH_TOPIC_INTENT.sub('', clause)}）"
    main_clause = EN_CLAUSE_BREAK.split(topic_value, 1)[0]
    # The thing talked about is the first noun phrase after the subject and its verbs.
    predicate = strip_subject(main_clause, subject)
    article = _EN_ARTICLE_START.search(predicate)
    if article and article.start() < len(predicate) // 2:
        return f"{value} for the {predicate[article.end():]}"
    return f"{value} (context: {main_clause[0].lower()}{main_clause[1:]})"
