"""Rule-based extraction: one add request's user turns become atomic, self-contained,
third-person memories, without an LLM.

It runs in the ingest hot path, so it is regular expressions compiled once at import and
a single pass over the messages. Per user turn:
  questionnaire lines ("Favorite movie genres: Sci-Fi, Action") → one memory per line;
  other text → sentences → drop fillers, questions and requests (keeping the declarative
  clause of a mixed sentence) → first person rewritten in the third person → relative
  dates made absolute → preference, fact-about-the-user or other fact.
A short reply to an assistant turn that offered options ("I choose 7 Days Inn") takes
the topic of the last earlier user statement so it still makes sense alone.

This module walks the turns and builds the candidates; the language rules are in
english.py and chinese.py, the rest in one module each: subject.py (who a memory is about),
preferences.py, topics.py (topic, key, tags), questionnaire.py, short_replies.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engram.extraction.context import (
    CONTEXT_LIMIT,
    GENERIC_SPEAKERS,
    IMAGE_CAPTION,
    clip,
    detect_language,
    normalise,
    own_words,
    says_something,
    strip_speaker_prefix,
    turn_context,
)
from engram.extraction.rules.ages import AGE_KEY, states_an_age
from engram.extraction.rules.chinese import (
    ZH_SENTENCE_END,
    split_sentences_zh,
    statement_zh,
    third_person_zh,
)
from engram.extraction.rules.english import (
    EN_SENTENCE_END,
    attribute_en,
    split_sentences_en,
    statement_en,
    third_person_en,
)
from engram.extraction.rules.preferences import (
    Preference,
    detect_preference,
    favourite_key,
    liked_part,
    preference_key,
)
from engram.extraction.rules.questionnaire import QuestionnaireLine, parse_questionnaire_line
from engram.extraction.rules.short_replies import (
    TopicStatement,
    bare,
    choice_key,
    is_choice,
    is_short,
    offers_choice,
    with_topic,
)
from engram.extraction.rules.subject import Subject
from engram.extraction.rules.topics import find_topic, make_tags, phrase_key_en, phrase_key_zh
from engram.extraction.temporal import resolve_relative_dates, strip_relative_dates
from engram.extraction.trajectories import trajectory_candidates
from engram.models.domain import CONTEXT_SEPARATOR, Candidate, MemoryType, MessageRecord, Role
from engram.models.pipeline import ToolCallRecord
from engram.ports import Extraction

CONFIDENCE_QUESTIONNAIRE = 0.97
CONFIDENCE_FIRST_PERSON = 0.95
CONFIDENCE_INDIRECT = 0.9  # no first person in it, or a subject we had to supply
CONFIDENCE_COMPLETED = 0.85  # made self-contained with the conversation's topic


# --- the extractor --------------------------------------------------------------------

@dataclass(slots=True)
class _Conversation:
    """What the extractor remembers while walking one request's messages."""

    names: frozenset[str]
    previous: MessageRecord | None = None
    topic: TopicStatement | None = None


@dataclass(slots=True)
class _Statement:
    """One declarative statement of a user turn, on its way to becoming a candidate."""

    first_person: str
    message: MessageRecord
    subject: Subject
    language: str
    supplied_subject: bool = False
    completion: TopicStatement | None = None


class RuleBasedExtractor:
    """Implements the Extractor port without a model: deterministic and fast."""

    name = "rule-based"

    def extract(self, messages: Sequence[MessageRecord],
                tool_calls: Sequence[ToolCallRecord] = ()) -> Extraction:
        """Statements of the user turns, and tool memory from the tool calls."""
        return Extraction(self.statements(messages)
                          + trajectory_candidates(messages, tool_calls))

    def statements(self, messages: Sequence[MessageRecord]) -> list[Candidate]:
        """The user turns' statements as atomic, third-person candidates."""
        conversation = _Conversation(names=_speaker_names(messages))
        candidates: list[Candidate] = []
        for message in messages:
            if message.role == Role.user:
                candidates += self._user_turn(message, conversation)
            if message.role in (Role.user, Role.assistant):
                conversation.previous = message
        return candidates

    # -- one user turn --

    def _user_turn(self, message: MessageRecord, conv: _Conversation) -> list[Candidate]:
        text = normalise(strip_speaker_prefix(message.text, message.speaker))
        images = IMAGE_CAPTION.findall(text)
        text = IMAGE_CAPTION.sub(" ", text).strip()
        language = detect_language(text or " ".join(images))
        subject = Subject.of(message, language)
        candidates = [_image_candidate(d.strip(), message, subject, conv) for d in images
                      if d.strip()]
        statements: list[_Statement] = []
        asked: list[str] = []
        numbered: list[str] = []  # English sentences with a number, which a memory must keep
        for line in filter(None, text.split("\n")):
            questionnaire = parse_questionnaire_line(line, language)
            if questionnaire:
                candidates.append(_questionnaire_candidate(questionnaire, line, message, subject))
                continue
            for sentence in _sentences(line, language):
                statement, dropped = self._statement(sentence, message, subject, language, conv)
                asked += dropped
                if statement:
                    statements.append(statement)
                if language == "en" and _DIGIT.search(sentence):
                    numbered.append(sentence)
        self._complete_short_reply(statements, text, conv)
        made = [c for c in (self._candidate(s, conv) for s in statements) if c]
        if made and not any(s.completion for s in statements):
            conv.topic = TopicStatement(bare(made[-1].memory_value), message.message_id, asked)
        if not candidates and not made:
            return _whole_turn(text, message, subject, conv)
        kept = _numbers(" ".join(c.memory_value for c in made)) if numbered else set()
        return candidates + made + [
            asked_candidate(sentence, message, subject, conv, own_words(message))
            for sentence in numbered if _has_a_number_memories_miss(sentence, kept, conv.names)]

    def _statement(
        self, sentence: str, message: MessageRecord, subject: Subject, language: str,
        conv: _Conversation,
    ) -> tuple[_Statement | None, list[str]]:
        if language == "zh":
            return _statement_zh(sentence, message, subject)
        return _statement_en(sentence, message, subject, conv.names), []

    def _complete_short_reply(
        self, statements: list[_Statement], text: str, conv: _Conversation
    ) -> None:
        """'I choose 7 Days Inn' after the assistant listed hotels: attach the topic."""
        previous, topic = conv.previous, conv.topic
        if len(statements) != 1 or previous is None or topic is None:
            return
        if previous.role != Role.assistant or not offers_choice(previous.text):
            return
        if is_short(text, statements[0].language):
            statements[0].completion = topic

    # -- building the candidate --

    def _candidate(self, st: _Statement, conv: _Conversation) -> Candidate | None:
        third, mentioned = _third_person(st.first_person, st.subject)
        if st.language == "en" and not mentioned and st.subject.is_named:
            third, mentioned = attribute_en(third, st.subject), True
        preference = detect_preference(st.first_person, st.language)
        choice = st.completion is not None and is_choice(st.first_person, st.language)
        key, topic = self._key(st, third, preference, choice, conv)
        if not key:
            return None
        resolved = resolve_relative_dates(third, st.message.event_time, st.language)
        value = _sentence_case(resolved.text, st.language)
        sources = [st.message.message_id]
        if st.completion:
            value = with_topic(value, st.completion.value, st.subject)
            sources.append(st.completion.message_id)
        return Candidate(
            memory_type=_memory_type(preference, mentioned),
            memory_key=key,
            memory_value=_finish(value, st.language),
            tags=make_tags(key, topic, _kind(preference, choice, st.language), st.language),
            confidence=_confidence(st, mentioned),
            sources=sources,
            event_time=resolved.event_time or st.message.event_time,
            preference_type="explicit" if preference else None,
            polarity=preference.polarity if preference else None,
            reasoning=_reasoning(st.first_person, preference),
            language=st.language,
            context=_context(conv.previous, st),
        )

    def _key(
        self, st: _Statement, third: str, preference: Preference | None, choice: bool,
        conv: _Conversation,
    ) -> tuple[str, str | None]:
        """The memory's title and its topic ('Food preference', 'Food')."""
        phrase_key = phrase_key_zh if st.language == "zh" else phrase_key_en
        if choice:  # named after what was offered or asked, else after the topic
            offered = [conv.previous.text if conv.previous else "", *st.completion.asked]
            topic = find_topic(offered, st.language)
            subject = topic or phrase_key(st.completion.value, st.subject)
            return choice_key(subject, st.language), topic or find_topic([subject], st.language)
        undated = strip_relative_dates(third, st.language)
        if preference is None and states_an_age(st.first_person, st.language):
            return AGE_KEY[st.language], find_topic([third], st.language)
        if preference is None:
            return phrase_key(undated, st.subject), find_topic([third], st.language)
        liked = liked_part(st.first_person, st.language)
        topic = find_topic([liked], st.language)
        favourite = favourite_key(st.first_person, st.language)
        if favourite is not None:  # "My favorite color is blue" → "Favorite color"
            return favourite, topic
        phrase = phrase_key(liked, st.subject) or phrase_key(undated, st.subject)
        return preference_key(topic, phrase, preference, st.language), topic


# -- statements --

def _sentences(line: str, language: str) -> list[str]:
    return split_sentences_zh(line) if language == "zh" else split_sentences_en(line)


def _statement_en(
    sentence: str, message: MessageRecord, subject: Subject, names: frozenset[str]
) -> _Statement | None:
    stated = statement_en(sentence, names)
    if stated is None:
        return None
    first_person, supplied = stated
    return _Statement(first_person, message, subject, "en", supplied_subject=supplied)


def _statement_zh(
    sentence: str, message: MessageRecord, subject: Subject
) -> tuple[_Statement | None, list[str]]:
    first_person, asked = statement_zh(sentence)
    if first_person is None:
        return None, asked
    return _Statement(first_person, message, subject, "zh"), asked


# -- wording --

def _third_person(text: str, subject: Subject) -> tuple[str, bool]:
    if subject.language == "zh":
        return third_person_zh(text, subject)
    return third_person_en(text, subject)


def _sentence_case(text: str, language: str) -> str:
    return text if language == "zh" or not text else text[0].upper() + text[1:]


def _finish(value: str, language: str) -> str:
    if language == "zh":
        return ZH_SENTENCE_END.sub("", value) + "。"
    return EN_SENTENCE_END.sub("", value) + "."  # "etc." keeps its one full stop


_KINDS_ZH = {"habit": "习惯", "preference": "偏好", "choice": "选择"}


def _kind(preference: Preference | None, choice: bool, language: str) -> str | None:
    """What sort of memory this is, as a tag: 'preference', 'habit' or 'choice'."""
    if preference:
        kind = "habit" if preference.habit else "preference"
    elif choice:
        kind = "choice"
    else:
        return None
    return _KINDS_ZH[kind] if language == "zh" else kind


def _memory_type(preference: Preference | None, mentioned: bool) -> MemoryType:
    if preference:
        return MemoryType.preference
    return MemoryType.user if mentioned else MemoryType.long_term


def _confidence(st: _Statement, mentioned: bool) -> float:
    if st.completion:
        return CONFIDENCE_COMPLETED
    if st.supplied_subject or not mentioned:
        return CONFIDENCE_INDIRECT
    return CONFIDENCE_FIRST_PERSON


def _reasoning(first_person: str, preference: Preference | None) -> str | None:
    if preference is None:
        return None
    how = "stated habit" if preference.habit else "stated directly"
    return f"{how}: '{clip(first_person, 120)}'"


def _context(previous: MessageRecord | None, st: _Statement) -> str:
    """The turn this statement answered, the topic it was completed with, and the rest of
    its own turn (a sentence alone often leaves out what "they" or "it" were)."""
    return turn_context(previous, st.message, own_words(st.message),
                        between=st.completion.value if st.completion else "")


def _speaker_names(messages: Sequence[MessageRecord]) -> frozenset[str]:
    """Speaker names and their short forms ('Melanie' → 'mel', 'mela', ...), to recognise
    vocatives like 'Thanks, Mel!'."""
    forms: set[str] = set()
    for message in messages:
        name = (message.speaker or "").strip().lower()
        if name and name not in GENERIC_SPEAKERS:
            forms.update(name[:n] for n in range(3, len(name) + 1))
    return frozenset(forms)


# -- image and questionnaire candidates --

def _image_candidate(description: str, message: MessageRecord, subject: Subject,
                     conv: _Conversation) -> Candidate:
    """A memory that the speaker shared an image, and what it shows."""
    if subject.language == "zh":
        value, key, tags = f"{subject.name}分享了一张图片：{description}。", "分享图片", ["图片"]
    else:
        who = _sentence_case(subject.name, "en")
        value = f"{who} shared an image of {description.rstrip('.')}."
        key, tags = "Shared image", ["image"]
    previous = conv.previous if conv.previous and conv.previous.message_id != message.message_id \
        else None
    own = normalise(own_words(message))
    context = [clip(normalise(previous.text).replace("\n", " "), CONTEXT_LIMIT)
               if previous else "", clip(own.replace("\n", " "), CONTEXT_LIMIT)]
    return Candidate(
        memory_type=MemoryType.user, memory_key=key, memory_value=value, tags=tags,
        confidence=CONFIDENCE_INDIRECT, sources=[message.message_id],
        event_time=message.event_time, language=subject.language,
        context=CONTEXT_SEPARATOR.join(part for part in context if part))


def _questionnaire_candidate(
    line: QuestionnaireLine, raw: str, message: MessageRecord, subject: Subject
) -> Candidate:
    language = subject.language
    third_key, mentioned = _third_person(line.key, subject)
    value = _questionnaire_value(line, third_key, mentioned, subject)
    is_preference = line.is_preference
    key = _sentence_case(line.key.replace("我", "") if language == "zh" else third_key, language)
    topic = find_topic([line.key], language)
    kind = ("偏好" if language == "zh" else "preference") if is_preference else None
    return Candidate(
        memory_type=MemoryType.preference if is_preference else MemoryType.user,
        memory_key=key,
        memory_value=_finish(value, language),
        tags=make_tags(key, topic, kind, language),
        confidence=CONFIDENCE_QUESTIONNAIRE,
        sources=[message.message_id],
        event_time=message.event_time,
        preference_type="explicit" if is_preference else None,
        polarity=line.polarity if is_preference else None,
        reasoning=f"stated directly: '{clip(raw.strip(), 120)}'" if is_preference else None,
        language=language,
    )


def _questionnaire_value(
    line: QuestionnaireLine, third_key: str, mentioned: bool, subject: Subject
) -> str:
    """'The user's favorite movie genres are Sci-Fi, Action, Comedy' /
    '用户的饮食偏好：偏爱辣、健康饮食'."""
    if subject.language == "zh":
        if mentioned:
            owner = third_key  # 用户最感兴趣的话题
        elif "的" in line.key:
            owner = subject.name + line.key  # 用户喜欢的电影类型, not 用户的喜欢的...
        else:
            owner = subject.possessive + line.key  # 用户的饮食偏好
        return f"{owner}：{'、'.join(line.values)}"
    copula = "are" if line.plural else "is"
    owner = third_key if mentioned else f"{subject.possessive} {_lower_first(line.key)}"
    return f"{_sentence_case(owner, 'en')} {copula} {', '.join(line.values)}"


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first[1:].islower() or len(first) == 1 else text


WHOLE_TURN_MIN_WORDS = 6  # "Any tips?" alone says nothing about its speaker
WHOLE_TURN_CHARS = 300


_DIGIT = re.compile(r"\d")


def _numbers(text: str) -> set[str]:
    """The words of `text` with a digit in them: an amount, a date, a time, an age, what a
    later question asks for exactly. (Words split, not a regex: one that looks for a digit
    inside a run of non-spaces backtracks quadratically over a long run without one.)"""
    return {w.strip(".,;:!?'’\"()").lower() for w in text.split() if _DIGIT.search(w)}


def _has_a_number_memories_miss(sentence: str, kept: set[str], names: frozenset[str]) -> bool:
    """Whether a sentence names a number that none of its turn's memories says: of "I'm
    looking forward to owning a home, …, but … - remember when I got pre-approved for
    $400,000 from Wells Fargo?" the statement keeps the first clause, and the sentence is
    the only record of the amount. (Names too were measured: 12 times as many sentences
    kept, no more found.)"""
    if len(sentence.split()) < WHOLE_TURN_MIN_WORDS or not says_something(sentence, names):
        return False  # a timestamp, a list number, "Any tips for 2024?"
    return bool(_numbers(sentence) - kept)


def _whole_turn(text: str, message: MessageRecord, subject: Subject,
                conv: _Conversation) -> list[Candidate]:
    """A turn no statement came from (a question, a request) still says something about
    its speaker ("…my living room, with a cat that sheds a lot?"): kept whole, as asked."""
    if not says_something(text, conv.names) or len(text.split()) < WHOLE_TURN_MIN_WORDS and not (
            subject.language == "zh" and len(text) >= WHOLE_TURN_MIN_WORDS * 2):
        return []
    return [asked_candidate(text, message, subject, conv)]


def asked_candidate(text: str, message: MessageRecord, subject: Subject,
                    conv: _Conversation, turn: str | None = None) -> Candidate:
    """`text` kept as its speaker asked it, ranked below what was stated (whole_turn); its
    context ends with `turn`, the words of the whole turn when `text` is a sentence of it."""
    one_line = clip(text.replace("\n", " "), WHOLE_TURN_CHARS)
    name = subject.name if subject.is_named else (
        "用户" if subject.language == "zh" else "The user")
    value = (f"{name}问：{one_line}" if subject.language == "zh"
             else f"{name} asked: {one_line}")
    return Candidate(
        memory_type=MemoryType.long_term, memory_key="问题" if subject.language == "zh"
        else "Question", memory_value=value, confidence=0.7, sources=[message.message_id],
        event_time=message.event_time, language=subject.language,
        context=turn_context(conv.previous, message, turn or text), whole_turn=True)
