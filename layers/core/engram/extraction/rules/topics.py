"""A memory's topic ('Hotel', '酒店'), its key (a short title: 'Trip to Guangzhou',
'广州旅游') and its tags."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engram.extraction.context import MAX_TAGS
from engram.extraction.rules.english import EN_WORD
from engram.extraction.rules.subject import Subject, strip_subject

MAX_KEY_WORDS = 5
MAX_KEY_CHARS_ZH = 12


# --- topics ---------------------------------------------------------------------------

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
    for word in EN_WORD.findall(text.lower()):
        if word in _TOPIC_BY_WORD_EN:
            return _TOPIC_BY_WORD_EN[word]
    return None


def _topic_zh(text: str) -> str | None:
    match = _TOPIC_ZH.search(text)
    return _TOPIC_BY_WORD_ZH[match.group(0)] if match else None


# --- keys -----------------------------------------------------------------------------

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
ZH_KEY_BREAK = re.compile(r"[，,、：:；;（(]")


def phrase_key_zh(text: str, subject: Subject) -> str:
    """'用户暑假定好去广州旅游' → '广州旅游'."""
    clause = strip_subject(ZH_KEY_BREAK.split(text, 1)[0], subject)
    clause = _ZH_KEY_TAIL.sub("", _ZH_KEY_LEAD.sub("", clause))
    return clause[:MAX_KEY_CHARS_ZH]


# --- tags -----------------------------------------------------------------------------

_TAG_STOPWORDS = _KEY_SKIP | _KEY_STOP


def make_tags(key: str, topic: str | None, kind: str | None, language: str) -> list[str]:
    """A few lowercase keywords: the topic, the kind of memory, the key's content words."""
    if language == "zh":
        words = [key]
    else:
        words = [w for w in EN_WORD.findall(key.lower()) if len(w) > 2]
    tags: list[str] = []
    for tag in [t.lower() for t in (topic, kind) if t] + words:
        if tag not in tags and tag not in _TAG_STOPWORDS:
            tags.append(tag)
    return tags[:MAX_TAGS]
