"""Every prompt Engram sends to an LLM, each with the pydantic schema its reply must follow.

The schema is sent as `response_format` (JSON schema) and the reply validated against it;
a reply that does not validate is sent back once with the validation error to repair.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# --- extraction: messages → facts, preferences, tool memory ---------------------------

EXTRACTION_SYSTEM = """\
You turn a conversation into memories for an assistant's long-term memory of its user.

The messages come one JSON object a line, oldest first: id, role, name (the speaker, when \
known), time (UTC) and weekday, text. An assistant turn may carry tool_calls (id, name, \
arguments); a tool turn answers one (tool_call_id, tool_name).

Kinds of memory:
- UserMemory: a fact about the user (or a named speaker): who they are, what they did, \
have, plan or feel.
- LongTermMemory: a fact about the world, other people or an event.
- PreferenceMemory: a like, dislike or habit. preference_type "explicit" when stated, \
"implicit" when inferred from what they do or choose; polarity "positive" (likes) or \
"negative" (dislikes); reasoning: one sentence saying why.
- ToolSchemaMemory: one per tool used: what it does and its parameters.
- ToolTrajectoryMemory: one per task attempted with tools: what was called with what, \
what came back, whether it worked (tool_succeeded).

Each memory:
- says one thing and makes sense alone: third person, with the speaker's name or "the \
user" ("用户" in Chinese), never "I", "he" or "it" that only the conversation explains;
- rewrites relative dates ("yesterday", "next Friday", "上周") as absolute dates, counted \
from the time of the message it came from (weeks start on Monday);
- is written in the language of its messages (Chinese stays Chinese), named in language;
- cites the ids of the messages it came from in source_message_ids.

Keep only what the messages say. An assistant's suggestion is not a fact about the user \
unless the user takes it up. Skip greetings, small talk and questions that state nothing. \
When nothing is worth remembering, answer {"memories": []}."""

EXTRACTION_USER = "Messages:\n{messages}"


class ExtractedMemory(BaseModel):
    """One memory, citing the messages it came from."""

    model_config = ConfigDict(str_strip_whitespace=True)

    memory_type: Literal["LongTermMemory", "UserMemory", "PreferenceMemory",
                         "ToolSchemaMemory", "ToolTrajectoryMemory"]
    memory_key: str = Field(min_length=1, description="a short title")
    memory_value: str = Field(min_length=1, description="the memory, self-contained")
    # Bounds are told to the model but not enforced: the extractor clips and clamps rather
    # than spend a repair call on a sixth tag.
    tags: list[str] = Field(default=[], description="up to 5 keywords",
                            json_schema_extra={"maxItems": 5})
    confidence: float = Field(description="how sure, 0 to 1",
                              json_schema_extra={"minimum": 0, "maximum": 1})
    source_message_ids: list[str] = Field(min_length=1)
    preference_type: Literal["explicit", "implicit"] | None = Field(
        None, description="PreferenceMemory: stated (explicit) or inferred (implicit)")
    polarity: Literal["positive", "negative"] | None = Field(
        None, description="PreferenceMemory: likes or dislikes")
    reasoning: str | None = Field(None, description="PreferenceMemory: why, in one sentence")
    tool_succeeded: bool | None = Field(
        None, description="ToolTrajectoryMemory: whether the task worked")
    language: str | None = Field(None, description='ISO 639-1 code, e.g. "en", "zh"')

    @model_validator(mode="after")
    def _preference_has_type(self) -> ExtractedMemory:
        if self.memory_type == "PreferenceMemory" and self.preference_type is None:
            raise ValueError("a PreferenceMemory needs preference_type: explicit or implicit")
        return self


class ExtractionOutput(BaseModel):
    """What is worth remembering from the messages."""

    memories: list[ExtractedMemory]


# --- conflict resolution: new candidates vs the nearest existing memories --------------

RESOLUTION_SYSTEM = """\
You keep an assistant's long-term memory of its user up to date. You get new candidate \
memories, numbered, each followed by the existing memories nearest to it, named by alias \
(E1, E2, ...) with the date since which each holds.

For each candidate choose:
- add: it is new information that no existing memory says.
- update: an existing memory is about the same subject and the candidate is newer, more \
precise or contradicts it. target: its alias; value: the merged current statement, keeping \
what still holds. E.g. "The user likes spicy food" + "The user doesn't really like heavy \
oil, such as spicy hot pot" → "The user likes spicy food but not heavy, oily dishes such \
as spicy hot pot".
- delete: the candidate says an existing memory no longer holds and there is nothing new \
to store. target: its alias.
- noop: it is already known (target: the memory that says it) or repeats an earlier \
candidate.

Give every candidate an operation (several only when it changes several memories) and a \
short reason. Use only the aliases shown. Write values in the language of the memories."""

# Appended to the system prompt for a feedback task (add/feedback).
RESOLUTION_FEEDBACK = """\
Feedback mode: the candidates are the user's corrections of what is remembered. Update \
the memory a correction is about, or delete the memory the user asks to forget."""

RESOLUTION_USER = "Candidates, each with its nearest existing memories:\n{candidates}"


class ResolutionOperation(BaseModel):
    """What to do with one candidate."""

    model_config = ConfigDict(str_strip_whitespace=True)

    op: Literal["add", "update", "delete", "noop"]
    candidate: int = Field(description="the candidate's number in the list")
    target: str | None = Field(None, description='an existing memory\'s alias, e.g. "E1"')
    value: str | None = Field(None, description="update: the memory's merged current value")
    # Required, but an empty one is not worth a repair call.
    reason: str = Field(description="why, in a few words")

    @model_validator(mode="after")
    def _has_what_the_op_needs(self) -> ResolutionOperation:
        if self.op in ("update", "delete") and not self.target:
            raise ValueError(f"{self.op} needs target: the alias of an existing memory")
        if self.op == "update" and not self.value:
            raise ValueError("update needs value: the memory's merged current value")
        return self


class ResolutionOutput(BaseModel):
    """The operations for the candidates, in their order."""

    operations: list[ResolutionOperation]
