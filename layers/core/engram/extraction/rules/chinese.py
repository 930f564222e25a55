"""Chinese: what a user turn's sentences state, in the first person, and that statement
rewritten in the third person. Sentences → fillers, questions and requests dropped
(keeping the declarative clauses) → 我/我们 rewritten as the subject."""

from __future__ import annotations

import re

from engram.extraction.rules.subject import Subject

# --- sentences ------------------------------------------------------------------------

_ZH_SENTENCE = re.compile(r"[^。！？!?；;]+[。！？!?；;]*")
_ZH_CLAUSE_BREAK = re.compile(r"[，,]")


def split_sentences_zh(line: str) -> list[str]:
    return [s.strip() for s in _ZH_SENTENCE.findall(line) if s.strip()]


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
ZH_PUNCTUATION = re.compile(r"[。！？!?；;，,、：:\s~～…]+")


def declarative_part_zh(sentence: str) -> tuple[str | None, list[str]]:
    """The declarative clauses of a sentence, and the question/request clauses dropped.
    '我暑假定好去广州旅游，住宿的话有哪些连锁酒店可选？' → ('我暑假定好去广州旅游', [...])."""
    asks = sentence.rstrip().endswith(("？", "?"))
    clauses = [c.strip() for c in _ZH_CLAUSE_BREAK.split(sentence.rstrip("。！？!?；; "))]
    clauses = [c for c in clauses if c and ZH_PUNCTUATION.sub("", c) not in _ZH_FILLERS]
    asked = [c for c in clauses if _is_question_zh(c, asks) or _ZH_REQUEST_START.match(c)]
    if asks and not asked and clauses:
        asked = clauses[-1:]  # a question mark with no question word: the last clause asks
    kept = [c for c in clauses if c not in asked]
    return ("，".join(kept) or None), asked


def _is_question_zh(clause: str, sentence_asks: bool) -> bool:
    return bool(
        _ZH_QUESTION_END.search(clause) or (sentence_asks and _ZH_QUESTION_WORD.search(clause))
    )


# --- statements -----------------------------------------------------------------------

ZH_SENTENCE_END = re.compile(r"[\s!?;,:.。！？；，：~～…]+$")
_ZH_CONTRAST_PARTICLE = re.compile(r"^((?:我们|我))[又却]")
_ZH_CONTENT_FREE = re.compile(r"[我你他她它们是的了吗呢啊呀吧也都还就好嗯对不没有这样那样一样]")


def statement_zh(sentence: str) -> tuple[str | None, list[str]]:
    """What a sentence states, in the first person (None when it states nothing), and the
    question/request clauses dropped from it."""
    declarative, asked = declarative_part_zh(sentence)
    if not declarative:
        return None, asked
    contrast = _ZH_CONTRAST.match(declarative)
    text = _ZH_LEADING_CONJUNCTION.sub("", declarative)
    if contrast:
        text = _ZH_CONTRAST_PARTICLE.sub(r"\1", text)  # 但我又不太喜欢 → 我不太喜欢
    if not _ZH_CONTENT_FREE.sub("", ZH_PUNCTUATION.sub("", text)):
        return None, asked
    return text, asked


# --- first person → third person ------------------------------------------------------

_ZH_FIRST_PERSON = re.compile(r"我们|咱们|(?<!自)我")


def third_person_zh(text: str, subject: Subject) -> tuple[str, bool]:
    mentioned = False

    def replace(m: re.Match[str]) -> str:
        nonlocal mentioned
        mentioned = True
        return subject.name if m.group(0) == "我" else subject.group

    return _ZH_FIRST_PERSON.sub(replace, text), mentioned
