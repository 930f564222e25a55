"""What a query asks for, beyond its words.

- Whether it asks what the assistant said ("which app did you recommend?", "remind me of
  the number you gave me", "in our last chat…"). Such a query favours the assistant's own
  answers (extraction/assistant.py), which otherwise rank by their words alone, below the
  user's facts.
- Whether it asks someone's age ("how old…", "how many years will I be when…"), which
  memories state with no word in common (extraction/rules/ages.py).
- Whether it asks for what was first said ("what did I originally say…", "at first",
  "最初"): a memory changed since answers with its first version (services/search.py)."""

from __future__ import annotations

import re

# a second-person verb of telling, or a reference to an earlier conversation
_ASKS_ASSISTANT = re.compile(
    r"\byou(?:'ve| have| had)?\s+(?:\w+\s+)?(?:mention|recommend|suggest|sa(?:y|id)|t(?:ell|old)|"
    r"provid|gave|give|list|shar|describ|explain|wr(?:ote|ite)|propos|advis|nam|point(?:ed)? out|"
    r"c(?:a|o)me up with)\w*"
    r"|\bremind me\b"
    r"|\b(?:our|the|that) (?:previous|last|earlier|past) (?:chat|conversation|discussion)\b"
    r"|你(?:之前|上次|刚才)?(?:说|提到|推荐|建议|告诉)|提醒我|我们(?:之前|上次)的(?:对话|聊天)",
    re.I)


def asks_what_the_assistant_said(query: str) -> bool:
    return bool(_ASKS_ASSISTANT.search(query))


# "first"/"originally" next to a verb of saying or planning, or "at first", "initially"
_ASKS_FIRST = re.compile(
    r"\b(?:originally|initially|at first|at the start|in the beginning)\b"
    r"|\bfirst\s+(?:\w+\s+)?(?:sa(?:y|id)|t(?:ell|old)|mention|want|plan|cho(?:o)?s|pick|"
    r"decid|set|ask|think|thought|prefer|like)\w*"
    r"|最初|起初|一开始|原本|本来",
    re.I)


def asks_what_was_first_said(query: str) -> bool:
    return bool(_ASKS_FIRST.search(query))


# "how old", "how many years will I be/turn", "my age"; 多大 only with 了/年纪 (alone it
# also asks how big)
_ASKS_AGE = re.compile(
    r"\bhow old\b|\bwhat age\b|\b(?:my|your|his|her|their) age\b"
    r"|\bhow many years (?:old )?(?:will|would|am|was|is|are|were|shall) \w+ (?:be|turn)\b"
    r"|几岁|多大(?:了|年纪|岁数)|年龄|年纪|岁数",
    re.I)


def asks_an_age(query: str) -> bool:
    return bool(_ASKS_AGE.search(query))
