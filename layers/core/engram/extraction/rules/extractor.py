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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engram.extraction.temporal import resolve_relative_dates, strip_relative_dates
from engram.extraction.trajectories import trajectory_candidates
from engram.models.domain import CONTEXT_SEPARATOR, Candidate, MemoryType, MessageRecord, Role
from engram.models.pipeline import ToolCallRecord
from engram.ports import Extraction

CONFIDENCE_QUESTIONNAIRE = 0.97
CONFIDENCE_FIRST_PERSON = 0.95
CONFIDENCE_INDIRECT = 0.9  # no first person in it, or a subject we had to supply
CONFIDENCE_COMPLETED = 0.85  # made self-contained with the conversation's topic
CONTEXT_LIMIT = 300
SHORT_REPLY_WORDS = 6
SHORT_REPLY_CHARS_ZH = 12
MAX_KEY_WORDS = 5
MAX_KEY_CHARS_ZH = 12
MAX_TAGS = 5
# `speaker` values that name a role, not a person.
GENERIC_SPEAKERS = frozenset({"user", "assistant", "system", "tool", "human", "ai", "bot"})


# --- language and normalisation -------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_EN_SLANG = re.compile(r"\b(gonna|wanna|gotta|kinda)\b", re.I)
_EN_SLANG_FULL = {"gonna": "going to", "wanna": "want to", "gotta": "have to", "kinda": "kind of"}


def detect_language(text: str) -> str:
    """'zh' when CJK characters are at least 40% of the letters, else 'en'."""
    cjk = len(_CJK.findall(text))
    if not cjk:
        return "en"
    return "zh" if cjk / (cjk + len(_LATIN.findall(text))) >= 0.4 else "en"


def normalise(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _EMOJI.sub("", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.splitlines())


def strip_speaker_prefix(text: str, speaker: str | None) -> str:
    """'Caroline: I went ...' → 'I went ...' when Caroline is the speaker."""
    if speaker and text.startswith(speaker):
        rest = text[len(speaker):].lstrip()
        if rest[:1] in (":", "："):
            return rest[1:].lstrip()
    return text


# --- who the memory is about ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Subject:
    """How the memory names the person who spoke."""

    name: str  # "the user", "Caroline", "用户"
    language: str

    @classmethod
    def of(cls, message: MessageRecord, language: str) -> Subject:
        speaker = (message.speaker or "").strip()
        if speaker and speaker.lower() not in GENERIC_SPEAKERS:
            return cls(speaker, language)
        return cls("用户" if language == "zh" else "the user", language)

    @property
    def possessive(self) -> str:
        if self.language == "zh":
            return f"{self.name}的"
        return f"{self.name}'" if self.name.endswith("s") else f"{self.name}'s"

    @property
    def group(self) -> str:
        return f"{self.name}和其他人" if self.language == "zh" else f"{self.name} and others"

    @property
    def is_named(self) -> bool:
        return self.name not in ("the user", "用户")


# --- sentences ------------------------------------------------------------------------

_EN_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+")
_EN_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "e.g.", "i.e.", "no.", "approx."}
)
_ZH_SENTENCE = re.compile(r"[^。！？!?；;]+[。！？!?；;]*")
_ZH_CLAUSE_BREAK = re.compile(r"[，,]")


def split_sentences_en(line: str) -> list[str]:
    sentences: list[str] = []
    for piece in _EN_SENTENCE_BREAK.split(line):
        if sentences and _continues(sentences[-1], piece):
            sentences[-1] = f"{sentences[-1]} {piece}"
        elif piece:
            sentences.append(piece)
    return sentences


def _continues(previous: str, piece: str) -> bool:
    """A break after 'Dr.' or before a lower-case word is not a sentence end."""
    last_word = previous.rsplit(" ", 1)[-1].lower()
    return last_word in _EN_ABBREVIATIONS or piece[:1].islower()


def split_sentences_zh(line: str) -> list[str]:
    return [s.strip() for s in _ZH_SENTENCE.findall(line) if s.strip()]


# --- fillers, questions, requests (English) -------------------------------------------

# Words that may open a sentence and carry nothing: stripped with or without a comma.
_EN_LEADING_CONJUNCTION = re.compile(
    r"^(?:but|and|so|also|plus|anyway|anyways|besides|however|btw|by the way|um+|uh+|"
    r"actually|honestly|oh)\b[\s,]*",
    re.I,
)
# Interjections: stripped only when punctuation follows ("Great, I'll go" but not
# "Great food is ...").
_EN_LEADING_INTERJECTION = re.compile(
    r"^(?:yes|yeah|yep|yup|no|nope|wow|hey|hi|hello|ok|okay|sure|alright|right|thanks|"
    r"thank you|great|cool|nice|awesome|haha+|lol|hmm+|ah+|aw+|ooh|oh my god|omg|well|"
    r"true|exactly|totally|seriously|congrats|congratulations|oh wow|oops)\s*[,!.:;-]+\s*",
    re.I,
)
_GREETINGS = frozenset("hey hi hello yep yeah wow thanks oh aw".split())
_EN_FILLER_WORDS = frozenset(
    "ok okay thanks thank you got it sure yes no yeah yep yup nope cool great nice awesome "
    "alright right sounds good bye goodbye hi hello hey haha lol see i me fine perfect wow oh "
    "hmm noted understood that that's thats it's is so really very too much amazing wonderful "
    "lovely sweet interesting true exactly agree totally absolutely definitely indeed of "
    "course to talk soon later care take welcome morning night evening afternoon glad meet "
    "have a day same here the what about agreed makes sense will do np no problem all "
    "congrats congratulations".split()
)
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_EN_QUESTION_WORD_START = re.compile(
    r"^(?:what|what's|which|who|who's|whom|whose|where|where's|when|why|how|how's)\b"
    r"(?!\s+(?:i|we)\b)",
    re.I,
)
_EN_AUX_QUESTION_START = re.compile(
    r"^(?:is|are|am|was|were|do|does|did|can|could|would|will|should|shall|may|might|have|"
    r"has|had|isn't|aren't|don't|doesn't|didn't|can't|won't|wouldn't|shouldn't)\s+"
    r"(?:you|it|there|this|that|they|he|she|i|we|your|any)\b"
    r"|^any(?:one|body|thing)?\b",
    re.I,
)
_EN_ASKING = re.compile(
    r"\b(?:i(?:'d| would) like to know|i want to know|i wonder|i was wondering|"
    r"i'm wondering|do you know)\b",
    re.I,
)
_EN_REQUEST_START = re.compile(
    r"^(?:please|pls|plz|kindly|help me|tell me|show me|give me|let me know|remind me|"
    r"find me|recommend|suggest|explain|ask me|take a look|look at|check this|let's|lets|"
    r"could you|can you|would you|will you|i want you to|i need you to|"
    r"i(?:'d| would) like you to)\b",
    re.I,
)
_EN_CLAUSE_BREAK = re.compile(r",\s+|\s+(?:but|so)\s+")
_EN_FIRST_PERSON_WORD = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|we|we're|our|us)\b", re.I)


def strip_discourse_en(sentence: str, names: frozenset[str]) -> str:
    """Drop openers ('But', 'Wow,') and vocatives ('..., Caroline!') that carry nothing."""
    text = sentence.strip()
    for _ in range(4):
        stripped = _EN_LEADING_INTERJECTION.sub("", _EN_LEADING_CONJUNCTION.sub("", text))
        stripped = _strip_vocative(stripped, names)
        if stripped == text:
            break
        text = stripped
    return text


def _strip_vocative(text: str, names: frozenset[str]) -> str:
    """'Hey Jon, ...', 'Mel! ...', '..., Caroline!' → without the greeting and the name."""
    words = text.split(" ", 2)
    if len(words) == 3 and words[0].lower() in _GREETINGS:
        words = words[1:]  # "Hey Jon, ..." → "Jon, ..."
    if len(words) >= 2 and words[0].rstrip(",!.").lower() in names and words[0][-1:] in ",!.":
        text = " ".join(words[1:])
    head, comma, last = text.rpartition(",")
    if comma and last.strip(" !.?").lower() in names:
        text = head + last.strip()[-1:] if last.strip()[-1:] in "!.?" else head
    return text.strip()


def is_filler_en(sentence: str, names: frozenset[str]) -> bool:
    words = [w.lower() for w in _EN_WORD.findall(sentence)]
    return all(w in _EN_FILLER_WORDS or w in names for w in words)


def is_question_en(clause: str) -> bool:
    return bool(
        clause.rstrip().endswith("?")
        or _EN_QUESTION_WORD_START.match(clause)
        or _EN_AUX_QUESTION_START.match(clause)
        or _EN_ASKING.search(clause)
    )


def is_request_en(clause: str) -> bool:
    return bool(_EN_REQUEST_START.match(clause))


def declarative_part_en(sentence: str) -> str | None:
    """The sentence if it states something; for 'I'm off to Paris, any tips?' the leading
    clauses that do; None for a pure question or request."""
    if is_request_en(sentence):
        return None
    if not is_question_en(sentence):
        return sentence
    kept: list[str] = []
    for clause in _EN_CLAUSE_BREAK.split(sentence.rstrip("?")):
        if is_question_en(clause) or is_request_en(clause):
            break
        if not _EN_FIRST_PERSON_WORD.search(clause):
            break
        kept.append(clause)
    return ", ".join(kept) or None


# --- fillers, questions, requests (Chinese) -------------------------------------------

_ZH_FILLERS = frozenset(
    "好的 好 好吧 好哒 嗯 嗯嗯 哦 噢 谢谢 谢谢你 谢谢您 多谢 感谢 明白 明白了 知道了 收到 "
    "行 可以 没问题 哈哈 哈哈哈 拜拜 再见 你好 您好 对 对的 是的 是 了解 ok OK 好的谢谢 "
    "好嘞 行吧 嗯呢".split()
)
_ZH_LEADING_CONJUNCTION = re.compile(
    r"^(?:但是|但|不过|可是|而且|然后|所以|另外|其实|嗯+|哦+|啊+)[，,\s]*"
)
_ZH_CONTRAST = re.compile(r"^(?:但是|但|不过|可是)")
_ZH_QUESTION_END = re.compile(r"[吗呢么嘛][？?]?$")
_ZH_QUESTION_WORD = re.compile(
    r"什么|哪|怎么|如何|为什么|为何|几[个点天次号岁]|多少|是否|能不能|可不可以|有没有|是不是|"
    r"要不要|会不会|行不行|好不好"
)
_ZH_REQUEST_START = re.compile(
    r"^(?:请|麻烦|帮我|帮忙|给我|告诉我|推荐|求推荐|能否|能不能|可不可以|可以帮|你能|您能|"
    r"你可以|您可以|你帮|您帮)"
)
_ZH_PUNCTUATION = re.compile(r"[。！？!?；;，,、：:\s~～…]+")


def declarative_part_zh(sentence: str) -> tuple[str | None, list[str]]:
    """The declarative clauses of a sentence, and the question/request clauses dropped.
    '我暑假定好去广州旅游，住宿的话有哪些连锁酒店可选？' → ('我暑假定好去广州旅游', [...])."""
    asks = sentence.rstrip().endswith(("？", "?"))
    clauses = [c.strip() for c in _ZH_CLAUSE_BREAK.split(sentence.rstrip("。！？!?；; "))]
    clauses = [c for c in clauses if c and _ZH_PUNCTUATION.sub("", c) not in _ZH_FILLERS]
    asked = [c for c in clauses if _is_question_zh(c, asks) or _ZH_REQUEST_START.match(c)]
    if asks and not asked and clauses:
        asked = clauses[-1:]  # a question mark with no question word: the last clause asks
    kept = [c for c in clauses if c not in asked]
    return ("，".join(kept) or None), asked


def _is_question_zh(clause: str, sentence_asks: bool) -> bool:
    return bool(
        _ZH_QUESTION_END.search(clause) or (sentence_asks and _ZH_QUESTION_WORD.search(clause))
    )


# --- subjectless English sentences -----------------------------------------------------

IRREGULAR_PAST = frozenset(
    "went ran saw got made took came had did was were said told found gave knew thought "
    "bought brought felt left met paid sent sat spent stood taught won wrote ate drank drove "
    "flew forgot began broke chose fell grew heard held hid kept lost meant rode rang rose "
    "sang shot slept spoke swam threw understood woke wore built caught dug fought fed led "
    "lent sold sought shook stole struck swore tore bent bled blew drew fled froze hung knelt "
    "laid leapt learnt shone shrank slid spun spat sprang stuck swept swung wept wound "
    "become became been done gone seen taken given written eaten".split()
)
# "Going to Paris tomorrow": the -ing words that usually mean a dropped "I'm".
_SUBJECTLESS_ING = frozenset(
    "planning hoping thinking heading looking feeling trying going".split()
)
# Present-tense verbs that open a subjectless chat line: "Love that painting!"
_SUBJECTLESS_PRESENT = frozenset(
    "love like enjoy hate prefer adore appreciate hope guess believe wish miss know".split()
)
_NOT_PAST_VERBS = frozenset("based used called named located related united".split())
_LEADING_ADVERB = frozenset("just finally recently also really totally actually still".split())
_COPULA_LATER = re.compile(r"\s(?:is|was|are|were)\s", re.I)
_EN_ME = re.compile(r"\b(?:me|myself)\b", re.I)


def supply_subject_en(sentence: str) -> str:
    """'Went to the gym' → 'I went to the gym'; 'Going to Paris' → "I'm going to Paris".
    Chat often drops the subject; without one the memory would not say who did it."""
    words = sentence.split(" ", 2)
    first = words[0].lstrip("[(").lower()  # "[shared a photo: ...]" from a photo caption
    verb = words[1].lower() if first in _LEADING_ADVERB and len(words) > 1 else first
    lowered = sentence[0].lower() + sentence[1:]
    # "Working with kids is rewarding": the -ing word is the subject, not a dropped "I'm".
    gerund_subject = _COPULA_LATER.search(sentence.split(",", 1)[0])
    # Not when "me" is the object: "Really made me proud" dropped "It", not "I".
    if _EN_ME.search(sentence):
        return sentence
    if first in _SUBJECTLESS_ING and not gerund_subject:
        return f"I'm {lowered}"
    if first in ("been", "done"):
        return f"I've {lowered}"
    if _is_past(verb) or verb in _SUBJECTLESS_PRESENT:
        return f"I {lowered}"
    return sentence


def _is_past(word: str) -> bool:
    if word in _NOT_PAST_VERBS:
        return False
    regular = len(word) > 4 and word.endswith("ed") and not word.endswith("eed")  # not "need"
    return word in IRREGULAR_PAST or regular


# --- first person → third person ------------------------------------------------------

_EN_ADVERBS = (
    "really|also|just|usually|always|often|never|still|actually|totally|sometimes|generally|"
    "mostly|recently|finally|definitely|absolutely|truly|rarely|seldom|even|only|already|"
    "kind of|sort of|personally|now|currently|normally|typically|especially|particularly|"
    "honestly|certainly|probably|literally|barely|hardly|mainly|simply|then|too"
)
_EN_FIRST_PERSON = re.compile(
    r"\b(?:(?P<i_contraction>[Ii]'(?:m|ve|ll|d))"
    r"|(?P<i>[Ii])(?P<adverbs>(?:\s+(?:" + _EN_ADVERBS + r"))*)\s+(?P<verb>[a-z]+(?:'t)?)"
    r"|(?P<we_contraction>[Ww]e'(?:re|ve|ll|d))"
    r"|(?P<word>I|i|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself|[Ww]e|[Uu]s|[Oo]ur|[Oo]urs|[Oo]urselves))\b"
)
_AGREEMENT = {
    "am": "is", "have": "has", "do": "does", "don't": "doesn't", "haven't": "hasn't",
    "were": "was", "weren't": "wasn't", "be": "is",
}
_NO_AGREEMENT = frozenset(
    "can could will would shall should may might must ought did was and or but too as in at "
    "on to of for with who that the a an so myself alone it not never can't won't couldn't "
    "wouldn't shouldn't didn't wasn't mustn't if when".split()
)
_DECISION_PAST = {"choose": "chose", "pick": "picked", "select": "selected"}
_EN_HAD_NEXT = re.compile(r"\s+(?:been|had|already|never|gone|done|seen|left|forgotten)\b", re.I)
_EN_CONTRACTIONS = {"m": "is", "ve": "has", "ll": "will", "re": "are"}


def third_person_en(text: str, subject: Subject) -> tuple[str, bool]:
    """Rewrite I/me/my/we as the subject, with verb agreement for the common cases.
    Returns the text and whether the subject appears in it."""
    mentioned = False

    def replace(m: re.Match[str]) -> str:
        nonlocal mentioned
        # "themselves" does not say who: "Relaxing and expressing ourselves is key".
        mentioned = mentioned or (m["word"] or "").lower() not in ("myself", "ourselves")
        if m["i_contraction"]:
            return f"{subject.name} {_contraction(m, m['i_contraction'][2:], 'has')}"
        if m["i"]:
            return f"{subject.name}{m['adverbs']} {agree_verb(m['verb'])}"
        if m["we_contraction"]:
            return f"{subject.group} {_contraction(m, m['we_contraction'][3:], 'have')}"
        return _pronoun(m["word"].lower(), subject)

    return _EN_FIRST_PERSON.sub(replace, text), mentioned


def _contraction(m: re.Match[str], suffix: str, have: str) -> str:
    if suffix == "d":
        return "had" if _EN_HAD_NEXT.match(m.string, m.end()) else "would"
    return have if suffix == "ve" else _EN_CONTRACTIONS[suffix]


def _pronoun(word: str, subject: Subject) -> str:
    if word in ("i", "me"):
        return subject.name
    if word in ("my", "mine", "our", "ours"):
        return subject.possessive
    if word in ("myself", "ourselves"):
        return "themselves"
    return subject.group  # we, us


def agree_verb(verb: str) -> str:
    """The verb after 'I', in the third person singular: like → likes, am → is."""
    lower = verb.lower()
    if lower in _AGREEMENT:
        return _AGREEMENT[lower]
    if lower in _DECISION_PAST:
        return _DECISION_PAST[lower]
    if lower in _NO_AGREEMENT or _is_past(lower) or lower.endswith("'t"):
        return verb
    if lower.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return verb[:-1] + "ies"
    return verb + "s"


_ZH_FIRST_PERSON = re.compile(r"我们|咱们|(?<!自)我")


def third_person_zh(text: str, subject: Subject) -> tuple[str, bool]:
    mentioned = False

    def replace(m: re.Match[str]) -> str:
        nonlocal mentioned
        mentioned = True
        return subject.name if m.group(0) == "我" else subject.group

    return _ZH_FIRST_PERSON.sub(replace, text), mentioned


# --- preferences ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Preference:
    polarity: str  # "positive" | "negative"
    habit: bool


_EN_PREFERENCE = re.compile(
    r"\b(?:i|we)(?:'m|'ve|'s)?(?:\s+(?:" + _EN_ADVERBS + r"|do|don't|do not|didn't|did not|"
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
    if _EN_HABIT.search(first_person) and _EN_FIRST_PERSON_WORD.search(first_person):
        return Preference("positive", habit=True)
    return None


def _liked_part(first_person: str, language: str) -> str:
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


# --- topics: keys and tags ------------------------------------------------------------

# topic → the words that name it; the first such word in a text gives its topic.
_TOPICS_EN = {
    "Food": "food foods eat eating dish dishes cuisine spicy oil oily greasy meal meals snack "
            "snacks diet dietary cook cooking breakfast lunch dinner sushi pizza noodles rice "
            "meat vegetables vegetarian vegan fruit dessert hotpot",
    "Drink": "coffee tea drink drinks beer wine juice",
    "Movie": "movie movies film films cinema",
    "TV": "tv series show shows",
    "Music": "music song songs band singer concert concerts",
    "Book": "book books novel novels reading",
    "Hotel": "hotel hotels inn accommodation hostel airbnb",
    "Travel": "trip trips travel travelling traveling vacation holiday flight flights tour",
    "Exercise": "run running ran jog jogging gym fitness exercise workout yoga swim swimming "
                "hiking hike football basketball tennis sport sports kilometers km marathon",
    "Work": "job work career office boss colleague colleagues",
    "Learning": "learn learning study studying course courses class classes school",
    "Pet": "dog dogs cat cats pet pets puppy",
    "Health": "knee knees sore pain sick doctor health",
    "Family": "kids children son daughter wife husband family parents",
    "Art": "painting paintings paint art drawing",
}
_TOPICS_ZH = {
    "饮食": "吃 食 菜 辣 油 饭 火锅 饮食 口味 甜 咸",
    "饮品": "喝 咖啡 茶 酒 饮料",
    "电影": "电影",
    "电视剧": "电视剧",
    "音乐": "音乐 歌",
    "书籍": "书 小说 阅读",
    "酒店": "酒店 住宿 宾馆 民宿",
    "旅行": "旅游 旅行 出游 度假 机票",
    "运动": "跑步 跑了 健身 运动 游泳 瑜伽 公里",
    "工作": "工作 上班 公司 职业",
    "学习": "学习 课程 学校",
    "宠物": "狗 猫 宠物",
    "健康": "膝盖 疼 病 医生 健康",
    "家庭": "孩子 儿子 女儿 老婆 老公 家人 父母",
    "艺术": "画 艺术",
}


def _topic_lookup(topics: dict[str, str]) -> dict[str, str]:
    return {word: topic for topic, words in topics.items() for word in words.split()}


_TOPIC_BY_WORD_EN = _topic_lookup(_TOPICS_EN)
_TOPIC_BY_WORD_ZH = _topic_lookup(_TOPICS_ZH)
_TOPIC_ZH = re.compile("|".join(sorted(map(re.escape, _TOPIC_BY_WORD_ZH), key=len, reverse=True)))


def find_topic(texts: Sequence[str], language: str) -> str | None:
    """The topic of the first text that names one ('hotels' → 'Hotel', '住宿' → '酒店')."""
    for text in texts:
        topic = _topic_zh(text) if language == "zh" else _topic_en(text)
        if topic:
            return topic
    return None


def _topic_en(text: str) -> str | None:
    # A dictionary lookup per word: one big alternation regex is ten times slower.
    for word in _EN_WORD.findall(text.lower()):
        if word in _TOPIC_BY_WORD_EN:
            return _TOPIC_BY_WORD_EN[word]
    return None


def _topic_zh(text: str) -> str | None:
    match = _TOPIC_ZH.search(text)
    return _TOPIC_BY_WORD_ZH[match.group(0)] if match else None


# Words skipped before a key phrase starts: subjects, auxiliaries, light verbs, time words.
_KEY_SKIP = frozenset(
    "the a an user user's said that and others is are was were am has have had will would "
    "can could should might must does did do been be being not doesn't don't didn't also "
    "really just still finally recently already actually usually always often never now "
    "currently so very going planning plans planned plan hoping hopes hope thinking thinks "
    "buying getting considering booking especially even "
    "trying tries wants want wanted decided to off went goes go got get gets started starts "
    "about some this these those their his her its today yesterday tomorrow tonight last next "
    "morning afternoon evening night week weekend month year on in at of for into with "
    "themselves it it's they they've they're that's there there's here's since love like"
    .split()
)
# Words that end a key phrase: a new clause at once, a preposition once it has two words.
_KEY_CLAUSE_STOP = frozenset(
    "and or but because which who when while since so if than though although &".split()
)
_KEY_STOP = _KEY_CLAUSE_STOP | frozenset(
    "that during on at before after until with from for by as about in into to is are was were "
    "every each".split()
)
_KEY_PREPOSITIONS = frozenset("to in at from of".split())
_KEY_TOKEN = re.compile(r"[A-Za-z0-9][\w'.-]*|[,;:()&]")


def phrase_key_en(text: str, subject: Subject) -> str:
    """A 2–5 word title from a third-person sentence: 'The user is planning a trip to
    Guangzhou during the summer vacation' → 'Trip to Guangzhou'."""
    skip = _KEY_SKIP | {subject.name.lower(), subject.possessive.lower()}
    tokens = _KEY_TOKEN.findall(text)
    start = 0
    while start < len(tokens) and tokens[start].lower() in skip:
        start += 1
    phrase = _collect_key_words(tokens[start:])
    while phrase and phrase[-1].lower() in _KEY_STOP | {"a", "an", "the"}:
        phrase.pop()
    if not phrase:
        return ""
    return " ".join(phrase)[0].upper() + " ".join(phrase)[1:]


def _collect_key_words(tokens: list[str]) -> list[str]:
    phrase: list[str] = []
    for i, token in enumerate(tokens):
        lower = token.lower()
        if token in ",;:()" or len(phrase) == MAX_KEY_WORDS:
            break
        if phrase and lower in _KEY_CLAUSE_STOP:
            break
        if lower in _KEY_STOP and len(phrase) >= 2 and not _names_a_place(lower, tokens, i):
            break
        phrase.append(token.rstrip("."))
    return phrase


def _names_a_place(word: str, tokens: list[str], i: int) -> bool:
    """'trip to Guangzhou': a preposition followed by a capitalised word stays in the key."""
    return word in _KEY_PREPOSITIONS and i + 1 < len(tokens) and tokens[i + 1][:1].isupper()


_ZH_KEY_LEAD = re.compile(
    r"^(?:\d{4}年|\d{1,2}月|\d{1,2}[日号]|那周|那个周末|左右|早上|上午|中午|下午|傍晚|晚上|夜里|"
    r"今天|昨天|明天|刚才|刚刚|最近|现在|目前|暑假|寒假|周末|平时|已经|刚|又|也|都|还|正在|在|想|要|"
    r"打算|计划|准备|定好|决定|将|会|去|了|有点|很|非常|特别|一直|经常|总是|每天|通常|最|真的|其实|"
    r"买了?|一[个台只本家件辆部双张位条])+"
)
_ZH_KEY_TAIL = re.compile(r"[了的啦吧呢啊]+$")
_ZH_KEY_BREAK = re.compile(r"[，,、：:；;（(]")


def phrase_key_zh(text: str, subject: Subject) -> str:
    """'用户暑假定好去广州旅游' → '广州旅游'."""
    clause = _strip_subject(_ZH_KEY_BREAK.split(text, 1)[0], subject)
    clause = _ZH_KEY_TAIL.sub("", _ZH_KEY_LEAD.sub("", clause))
    return clause[:MAX_KEY_CHARS_ZH]


_TAG_STOPWORDS = _KEY_SKIP | _KEY_STOP


def make_tags(key: str, topic: str | None, kind: str | None, language: str) -> list[str]:
    """A few lowercase keywords: the topic, the kind of memory, the key's content words."""
    if language == "zh":
        words = [key]
    else:
        words = [w for w in _EN_WORD.findall(key.lower()) if len(w) > 2]
    tags: list[str] = []
    for tag in [t.lower() for t in (topic, kind) if t] + words:
        if tag not in tags and tag not in _TAG_STOPWORDS:
            tags.append(tag)
    return tags[:MAX_TAGS]


# --- questionnaire lines --------------------------------------------------------------

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


def parse_questionnaire_line(line: str, language: str) -> QuestionnaireLine | None:
    """'Favorite movie genres: Sci-Fi, Action' → key and values; None for prose."""
    match = _QUESTIONNAIRE_LINE.match(line)
    if not match or line.rstrip()[-1:] in ".!?。！？" or "//" in line:
        return None
    key, values = match["key"].strip(), _LIST_SEPARATOR.split(match["values"].strip())
    if language == "zh":
        unusable = len(key) > 16
    else:  # too long for a label, or no label at all: "My: ..."
        unusable = len(key.split()) > 7 or _is_content_free_en(key)
    if unusable or key[-1:].isdigit():  # "12:30: lunch, gym" is a time, not a key
        return None
    if len(values) < 2 and not _PREFERENCE_KEY.search(key):
        return None
    return QuestionnaireLine(key, [v for v in values if v])


# --- the extractor --------------------------------------------------------------------

@dataclass(slots=True)
class _TopicStatement:
    """The last declarative user statement, for completing short replies."""

    value: str  # third person, dates resolved, no final punctuation
    message_id: str
    asked: list[str]  # question clauses dropped from the same message


@dataclass(slots=True)
class _Conversation:
    """What the extractor remembers while walking one request's messages."""

    names: frozenset[str]
    previous: MessageRecord | None = None
    topic: _TopicStatement | None = None


@dataclass(slots=True)
class _Statement:
    """One declarative statement of a user turn, on its way to becoming a candidate."""

    first_person: str
    message: MessageRecord
    subject: Subject
    language: str
    supplied_subject: bool = False
    completion: _TopicStatement | None = None


_ZH_CONTRAST_PARTICLE = re.compile(r"^((?:我们|我))[又却]")
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
_EN_CONTENT_FREE = _EN_FILLER_WORDS | frozenset(
    "i i'm i've i'd i'll me my we do did does am is are was were have has had will would can "
    "could not don't didn't too also either neither".split()
)
_ZH_CONTENT_FREE = re.compile(r"[我你他她它们是的了吗呢啊呀吧也都还就好嗯对不没有这样那样一样]")
_EN_ARTICLE_START = re.compile(r"\b(?:a|an|the)\s+", re.I)
_ZH_TOPIC_INTENT = re.compile(r"已经|定好|打算|计划|准备|决定")
_EN_SENTENCE_END = re.compile(r"[\s!?;,:.]+$")
_ZH_SENTENCE_END = re.compile(r"[\s!?;,:.。！？；，：~～…]+$")
_COMMON_SENTENCE_STARTS = frozenset(
    "the a an this that that's these those it it's there they their he she his her you your "
    "you're you've you'd you'll everyone everything nothing some all most many people life "
    "cool so what how".split()
)


# "[image: a dog on a beach]": how a shared image's description travels in a text turn.
_IMAGE = re.compile(r"\[(?:image|photo|picture)\s*[:：]\s*([^\]]+)\]", re.I)


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
        images = _IMAGE.findall(text)
        text = _IMAGE.sub(" ", text).strip()
        language = detect_language(text or " ".join(images))
        subject = Subject.of(message, language)
        candidates = [_image_candidate(d.strip(), message, subject, conv) for d in images
                      if d.strip()]
        statements: list[_Statement] = []
        asked: list[str] = []
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
        self._complete_short_reply(statements, text, conv)
        made = [c for c in (self._candidate(s, conv) for s in statements) if c]
        if made and not any(s.completion for s in statements):
            conv.topic = _TopicStatement(_bare(made[-1].memory_value), message.message_id, asked)
        return candidates + made

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
        if previous.role != Role.assistant or not _OFFERS_CHOICE.search(previous.text):
            return
        if _is_short(text, statements[0].language):
            statements[0].completion = topic

    # -- building the candidate --

    def _candidate(self, st: _Statement, conv: _Conversation) -> Candidate | None:
        third, mentioned = _third_person(st.first_person, st.subject)
        if st.language == "en" and not mentioned and st.subject.is_named:
            third, mentioned = _attribute(third, st.subject), True
        preference = detect_preference(st.first_person, st.language)
        choice = st.completion is not None and _is_choice(st.first_person, st.language)
        key, topic = self._key(st, third, preference, choice, conv)
        if not key:
            return None
        resolved = resolve_relative_dates(third, st.message.event_time, st.language)
        value = _sentence_case(resolved.text, st.language)
        sources = [st.message.message_id]
        if st.completion:
            value = _with_topic(value, st.completion.value, st.subject)
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
            return _choice_key(subject, st.language), topic or find_topic([subject], st.language)
        undated = strip_relative_dates(third, st.language)
        if preference is None:
            return phrase_key(undated, st.subject), find_topic([third], st.language)
        liked = _liked_part(st.first_person, st.language)
        topic = find_topic([liked], st.language)
        favourite = _FAVOURITE[st.language].search(st.first_person)
        if favourite:  # "My favorite color is blue" → "Favorite color"
            return _favourite_key(favourite.group(1), st.language), topic
        phrase = phrase_key(liked, st.subject) or phrase_key(undated, st.subject)
        return _preference_key(topic, phrase, preference, st.language), topic


# -- statements --

def _sentences(line: str, language: str) -> list[str]:
    return split_sentences_zh(line) if language == "zh" else split_sentences_en(line)


def _statement_en(
    sentence: str, message: MessageRecord, subject: Subject, names: frozenset[str]
) -> _Statement | None:
    text = strip_discourse_en(_EN_SLANG.sub(_expand_slang, sentence), names)
    if not text or is_filler_en(text, names):
        return None
    declarative = declarative_part_en(text)
    if not declarative:
        return None
    stated = _EN_SENTENCE_END.sub("", declarative)
    first_person = supply_subject_en(stated)
    if _is_content_free_en(first_person):
        return None
    supplied = first_person != stated
    return _Statement(first_person, message, subject, "en", supplied_subject=supplied)


def _expand_slang(m: re.Match[str]) -> str:
    full = _EN_SLANG_FULL[m.group(0).lower()]
    return full.capitalize() if m.group(0)[0].isupper() else full


def _statement_zh(
    sentence: str, message: MessageRecord, subject: Subject
) -> tuple[_Statement | None, list[str]]:
    declarative, asked = declarative_part_zh(sentence)
    if not declarative:
        return None, asked
    contrast = _ZH_CONTRAST.match(declarative)
    text = _ZH_LEADING_CONJUNCTION.sub("", declarative)
    if contrast:
        text = _ZH_CONTRAST_PARTICLE.sub(r"\1", text)  # 但我又不太喜欢 → 我不太喜欢
    if not _ZH_CONTENT_FREE.sub("", _ZH_PUNCTUATION.sub("", text)):
        return None, asked
    return _Statement(text, message, subject, "zh"), asked


def _is_content_free_en(text: str) -> bool:
    return all(w.lower() in _EN_CONTENT_FREE for w in _EN_WORD.findall(text))


def _is_short(text: str, language: str) -> bool:
    if language == "zh":
        return len(_ZH_PUNCTUATION.sub("", text)) <= SHORT_REPLY_CHARS_ZH
    return len(text.split()) <= SHORT_REPLY_WORDS


def _is_choice(first_person: str, language: str) -> bool:
    return bool((_ZH_CHOICE if language == "zh" else _EN_CHOICE).search(first_person))


# -- wording --

def _third_person(text: str, subject: Subject) -> tuple[str, bool]:
    if subject.language == "zh":
        return third_person_zh(text, subject)
    return third_person_en(text, subject)


def _attribute(text: str, subject: Subject) -> str:
    """'The transgender stories were so inspiring' → 'Caroline said the ...', so a
    statement without a subject still says whose it is."""
    first, _, rest = text.partition(" ")
    if first.lower() in _COMMON_SENTENCE_STARTS or (first.endswith("ing") and first[1:].islower()):
        text = f"{first.lower()} {rest}".strip()
    return f"{subject.name} said {text}"


def _sentence_case(text: str, language: str) -> str:
    return text if language == "zh" or not text else text[0].upper() + text[1:]


def _bare(value: str) -> str:
    return _ZH_SENTENCE_END.sub("", value)


def _finish(value: str, language: str) -> str:
    if language == "zh":
        return _ZH_SENTENCE_END.sub("", value) + "。"
    return _EN_SENTENCE_END.sub("", value) + "."  # "etc." keeps its one full stop


def _with_topic(value: str, topic_value: str, subject: Subject) -> str:
    """Append the topic's main clause: '... for the trip to Guangzhou during the summer
    vacation' or '…（暑假去广州旅游）'."""
    value = _bare(value)
    if subject.language == "zh":
        clause = _strip_subject(_ZH_KEY_BREAK.split(topic_value, 1)[0], subject)
        return f"{value}（{_ZH_TOPIC_INTENT.sub('', clause)}）"
    main_clause = _EN_CLAUSE_BREAK.split(topic_value, 1)[0]
    # The thing talked about is the first noun phrase after the subject and its verbs.
    predicate = _strip_subject(main_clause, subject)
    article = _EN_ARTICLE_START.search(predicate)
    if article and article.start() < len(predicate) // 2:
        return f"{value} for the {predicate[article.end():]}"
    return f"{value} (context: {main_clause[0].lower()}{main_clause[1:]})"


def _strip_subject(text: str, subject: Subject) -> str:
    for prefix in (subject.group, subject.possessive, subject.name):
        if text[: len(prefix)].lower() == prefix.lower():
            return text[len(prefix):].lstrip()
    return text


_FAVOURITE = {
    "en": re.compile(r"\bfavou?rite\s+((?:[\w-]+\s+){0,2}?[\w-]+)\s+(?:is|are|was|were)\b", re.I),
    "zh": re.compile(r"最(?:喜欢|爱)的([^，,。是]{1,6})是"),
}


def _favourite_key(thing: str, language: str) -> str:
    return f"最喜欢的{thing}" if language == "zh" else f"Favorite {thing.lower()}"


def _choice_key(chosen_among: str, language: str) -> str:
    """'Hotel choice' / '酒店选择'."""
    if language == "zh":
        return f"{chosen_among}选择" if chosen_among else "选择"
    return f"{chosen_among} choice" if chosen_among else "Choice"


def _preference_key(
    topic: str | None, phrase: str, preference: Preference, language: str
) -> str:
    if language == "zh":
        kind = "习惯" if preference.habit else "偏好"
        return f"{topic}{kind}" if topic else f"{kind}：{phrase}".rstrip("：")
    kind = "habit" if preference.habit else "preference"
    if topic:
        return f"{topic} {kind}"
    return f"{kind.capitalize()}: {phrase}" if phrase else kind.capitalize()


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
    return f"{how}: '{_clip(first_person, 120)}'"


def _context(previous: MessageRecord | None, st: _Statement) -> str:
    """The turn this statement answered, the topic it was completed with, and the rest of
    its own turn (a sentence alone often leaves out what "they" or "it" were)."""
    own = _IMAGE.sub(" ", strip_speaker_prefix(st.message.text, st.message.speaker))
    return turn_context(previous, st.message, own,
                        between=st.completion.value if st.completion else "")


def turn_context(previous: MessageRecord | None, message: MessageRecord, own: str,
                 between: str = "") -> str:
    """A memory's context (see Candidate.context): the turn `message` answered (when
    another speaker said it), `between`, and `own`, the words of `message` itself, last."""
    parts = []
    if previous and previous.message_id != message.message_id and (
        previous.role == Role.assistant or previous.speaker != message.speaker
    ):
        parts.append(_clip(_one_line(previous.text), CONTEXT_LIMIT))
    parts.append(between)
    parts.append(_clip(_one_line(own), CONTEXT_LIMIT))
    return CONTEXT_SEPARATOR.join(p for p in parts if p)


def _one_line(text: str) -> str:
    return normalise(text).replace("\n", " ")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _speaker_names(messages: Sequence[MessageRecord]) -> frozenset[str]:
    """Speaker names and their short forms ('Melanie' → 'mel', 'mela', ...), to recognise
    vocatives like 'Thanks, Mel!'."""
    forms: set[str] = set()
    for message in messages:
        name = (message.speaker or "").strip().lower()
        if name and name not in GENERIC_SPEAKERS:
            forms.update(name[:n] for n in range(3, len(name) + 1))
    return frozenset(forms)


# -- questionnaire candidates --

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
    own = normalise(_IMAGE.sub(" ", strip_speaker_prefix(message.text, message.speaker)))
    context = [_clip(normalise(previous.text).replace("\n", " "), CONTEXT_LIMIT)
               if previous else "", _clip(own.replace("\n", " "), CONTEXT_LIMIT)]
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
    is_preference = bool(_PREFERENCE_KEY.search(line.key))
    polarity = "negative" if _NEGATIVE_KEY.search(line.key) else "positive"
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
        polarity=polarity if is_preference else None,
        reasoning=f"stated directly: '{_clip(raw.strip(), 120)}'" if is_preference else None,
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
    copula = "are" if _PLURAL_WORD.search(line.key) else "is"
    owner = third_key if mentioned else f"{subject.possessive} {_lower_first(line.key)}"
    return f"{_sentence_case(owner, 'en')} {copula} {', '.join(line.values)}"


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first[1:].islower() or len(first) == 1 else text
