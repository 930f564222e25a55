"""Profile fields filled by the LLM (when one is configured): the profile's updatable
fields and the user's current memories go in one request; the reply gives a value for
each field the memories state, citing the memories. Unlike the name-based filling of
profile_fields.py this reads any field a template defines ("Favourite team", "性格标签")."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from engram.extraction.structured import ask
from engram.models.domain import Memory, TokenUsage
from engram.ports import LanguageModel

PROFILE_SYSTEM = """\
You keep a structured profile of a user up to date from what is remembered about them. \
You get the profile's fields, each by its path (category, then field), with its current \
value, and the user's memories, each with its id.

For each field the memories state a value for, give that value: short (a name, a place, \
a few words), in the language of the memories, from the memories only, never guessed. \
When memories disagree, the newest holds. Cite the ids of the memories the value comes \
from. Leave out fields no memory states. Answer {"fields": []} when there is none."""

PROFILE_USER = "Fields:\n{fields}\n\nMemories (newest first):\n{memories}"


class FilledValue(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    path: list[str] = Field(min_length=1, description="the field's path, as given")
    value: str = Field(min_length=1)
    memory_ids: list[str] = Field(min_length=1, description="the memories it comes from")


class ProfileFill(BaseModel):
    """The fields the memories state a value for."""

    fields: list[FilledValue]


def fill_with_llm(llm: LanguageModel, fields: Sequence[tuple[tuple[str, ...], str]],
                  memories: Sequence[Memory]
                  ) -> tuple[dict[tuple[str, ...], tuple[str, Memory]], TokenUsage]:
    """For each field (path, current value) the memories state: its value and the newest
    memory it cites. A path or memory id the request did not name is dropped."""
    if not fields or not memories:
        return {}, TokenUsage()
    by_id = {m.id: m for m in memories}
    reply, usage = ask(llm, PROFILE_SYSTEM, PROFILE_USER.format(
        fields="\n".join(json.dumps({"path": list(p), "value": v}, ensure_ascii=False)
                         for p, v in fields),
        memories="\n".join(json.dumps({"id": m.id, "memory": m.memory_value},
                                      ensure_ascii=False)
                           for m in sorted(memories, key=lambda m: -m.update_time))),
        ProfileFill)
    asked = {p for p, _ in fields}
    out: dict[tuple[str, ...], tuple[str, Memory]] = {}
    for filled in reply.fields:
        path = tuple(filled.path)
        cited = [by_id[i] for i in filled.memory_ids if i in by_id]
        if path in asked and cited:
            out[path] = (filled.value, max(cited, key=lambda m: m.update_time))
    return out, usage
