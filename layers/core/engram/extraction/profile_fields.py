"""Profile fields filled from memories without an LLM: a field's name says which
attribute it holds (name, city, occupation, age, hobbies, preferences; English or
Chinese names), and the user's memories, newest first, are read for a statement of that
attribute in the forms the rule-based extractor (and most LLM extractors) write:
"The user's name is Alice Chen.", "The user lives in Berlin.", "The user works as a
nurse ...", "用户叫张三，28岁 ...". A field whose name names none of these stays as it is."""

from __future__ import annotations

import re
from collections.abc import Sequence

from engram.models.domain import Memory, MemoryType

_WORD_NAME = r"([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,3})"
_CJK = "\u4e00-\u9fff"

# attribute → the words of a field name that mean it (lower-case; Chinese by substring)
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": ("name", "full name", "first name", "姓名", "名字", "称呼"),
    "city": ("city", "location", "residence", "city of residence", "home", "hometown",
             "lives", "居住地", "城市", "常住", "所在地", "住址", "居住"),
    "occupation": ("occupation", "job", "profession", "work", "career", "role", "职业",
                   "工作"),
    "age": ("age", "年龄"),
    "hobby": ("hobby", "hobbies", "interest", "interests", "爱好", "兴趣"),
    "preference": ("preference", "preferences", "likes", "偏好", "喜好"),
}
PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "name": (re.compile(r"\b(?:user's name is|user is called|user goes by|name is)\s+"
                        + _WORD_NAME),
             re.compile(f"(?:叫|名字是)([{_CJK}]{{2,4}}?)(?:[，,。；;\\s]|$)")),
    "city": (re.compile(r"\b(?:lives in|living in|moved to|based in|resides in|"
                        r"relocated to|lives and works in)\s+" + _WORD_NAME),
             re.compile(f"(?:住在|居住在|生活在|搬到了?|常住)([{_CJK}]{{2,3}})"),
             re.compile(f"(?:岁|，|,)([{_CJK}]{{2,3}})(?:后端|前端|工作|从事|做)")),
    "occupation": (re.compile(r"\b(?:works as|working as|job is|employed as)\s+(?:an?\s+)?"
                              r"([A-Za-z][\w -]*?)(?=\s+(?:at|in|for|and)\b|[.,;]|$)"),
                   re.compile(r"\buser is an?\s+([a-z][a-z -]*?(?:engineer|developer|teacher|"
                              r"nurse|doctor|designer|manager|student|writer|lawyer|scientist|"
                              r"analyst|programmer|chef|artist|accountant|consultant|"
                              r"researcher|architect))\b"),
                   re.compile(f"(?:职业是|是一名|从事)([{_CJK}]{{2,6}}?)(?:[，,。；;\\s]|工作|$)"),
                   re.compile(f"[{_CJK}]{{2,3}}(后端|前端|开发|设计|教师|医生|护士|律师)")),
    "age": (re.compile(r"\b(\d{1,3})[- ]years?[- ]old\b"),
            re.compile(r"\buser's age is (\d{1,3})\b"),
            re.compile(r"(\d{1,3})岁")),
    "hobby": (re.compile(r"\b(?:loves|enjoys|likes|is into|hobby is|hobbies are|hobbies "
                         r"include)\s+([^.;]+?)(?=\s+and the user\b|[.;]|$)"),
              re.compile(f"(?:喜欢|爱好是?)([{_CJK}\\w]{{1,10}})")),
}


def attribute_of(field_name: str) -> str | None:
    """The attribute a field's name names, or None."""
    name = field_name.strip().lower()
    words = set(re.findall(r"[a-z]+", name))
    for attribute, synonyms in SYNONYMS.items():
        for synonym in synonyms:
            if synonym.isascii():
                if name == synonym or (" " not in synonym and synonym in words) \
                        or (" " in synonym and synonym in name):
                    return attribute
            elif synonym in name:
                return attribute
    return None


def value_in(attribute: str, memory: Memory) -> str | None:
    """The attribute's value as `memory` states it, or None."""
    if attribute == "preference":
        if memory.memory_type == MemoryType.preference and memory.polarity != "negative":
            return memory.memory_value.strip().rstrip(".。")
        return None
    for pattern in PATTERNS.get(attribute, ()):
        found = pattern.search(memory.memory_value)
        if found:
            return found.group(1).strip().rstrip(".。")
    return None


def derive(field_names: Sequence[str], memories: Sequence[Memory]
           ) -> dict[str, tuple[str, Memory]]:
    """For each field name that names an attribute: its value from the newest memory that
    states one, and that memory."""
    newest_first = sorted(memories, key=lambda m: -m.update_time)
    out: dict[str, tuple[str, Memory]] = {}
    for field_name in field_names:
        attribute = attribute_of(field_name)
        if attribute is None:
            continue
        for memory in newest_first:
            value = value_in(attribute, memory)
            if value:
                out[field_name] = (value, memory)
                break
    return out
