"""What a query asks for, beyond its words: whether it asks what the assistant said
("which app did you recommend?", "remind me of the number you gave me", "in our last
chat…"). Such a query favours the assistant's own answers (extraction/assistant.py), which
otherwise rank by their words alone, below the user's facts."""

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
