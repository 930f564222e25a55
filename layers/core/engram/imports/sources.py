"""What `engram import FILE` sends, read from the file: an Engram export (records written
back as they were), a LoCoMo or LongMemEval file, or an OpenAI ChatGPT export
(`conversations.json`) — conversations cut into adds of at most `batch` turns.

Batches are deterministic: the same file and options always make the same adds, each
message with the id its source gave it (a ChatGPT node id, a LoCoMo dia_id, a LongMemEval
`<session>#<i>`). Sent again, an add whose messages carry ids is recognised by the API
(message ids + content hash) and answers its first task, so an import cut short and run
again adds nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engram.imports import locomo, longmemeval
from engram.models.exports import EXPORT_FORMAT, ExportedMemory, ExportHeader

FORMATS = ("auto", "engram", "locomo", "longmemeval", "chatgpt")
ROLES = ("user", "assistant")
MAX_RECORDS = 200  # import/memory takes at most this many records a request


class ImportFormatError(ValueError):
    """The file is not in the format asked for (or in none that is known)."""


@dataclass
class AddBatch:
    """One add/message request: turns of one conversation, in order."""

    user_id: str
    conversation_id: str
    messages: list[dict[str, Any]]

    @property
    def size(self) -> int:
        return len(self.messages)


@dataclass
class RecordBatch:
    """Export records for import/memory."""

    records: list[dict[str, Any]] = field(default_factory=list)
    user_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.records)


def detect(path: Path) -> str:
    """engram (a JSONL whose first line is an export header), chatgpt (a list of
    conversations with a `mapping`), locomo (samples with `conversation`), longmemeval
    (questions with `haystack_sessions`, or a directory of them)."""
    if path.is_dir():
        return "longmemeval"
    with path.open("rb") as f:
        first = f.readline()
    try:
        head = json.loads(first)
        if isinstance(head, dict) and head.get("format") == EXPORT_FORMAT:
            return "engram"
    except ValueError:
        pass
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ImportFormatError(f"{path}: neither an Engram export (JSON Lines with a "
                                f"header) nor a JSON file ({exc})") from None
    sample = data[0] if isinstance(data, list) and data else data
    if isinstance(sample, dict):
        if "mapping" in sample:
            return "chatgpt"
        if "conversation" in sample and "qa" in sample:
            return "locomo"
        if "haystack_sessions" in sample:
            return "longmemeval"
    raise ImportFormatError(f"{path}: not a format engram import knows (an Engram export, "
                            "LoCoMo, LongMemEval, or ChatGPT's conversations.json)")


def read(path: Path, fmt: str, batch: int, user: str | None) -> list[AddBatch | RecordBatch]:
    fmt = detect(path) if fmt == "auto" else fmt
    if fmt == "engram":
        return list(engram_batches(path, min(batch, MAX_RECORDS), user))
    if fmt == "locomo":
        return list(locomo_batches(path, batch, user))
    if fmt == "longmemeval":
        return list(longmemeval_batches(path, batch, user))
    if fmt == "chatgpt":
        if not user:
            raise ImportFormatError("a ChatGPT export names no user: pass --user")
        return list(chatgpt_batches(path, batch, user))
    raise ImportFormatError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- Engram's own export -------------------------------------------------------------

def engram_batches(path: Path, batch: int, user: str | None) -> Iterator[RecordBatch]:
    with path.open(encoding="utf-8") as f:
        try:
            ExportHeader.model_validate_json(f.readline())
        except ValueError as exc:
            raise ImportFormatError(f"{path}: line 1 is not an export header ({exc})") from None
        pending: list[dict[str, Any]] = []
        for number, line in enumerate(f, start=2):
            if not line.strip():
                continue
            try:  # checked here so a bad line is named by its number, before anything is sent
                record = ExportedMemory.model_validate_json(line)
            except ValueError as exc:
                raise ImportFormatError(f"{path}: line {number}: {exc}") from None
            pending.append(record.model_dump(mode="json"))
            if len(pending) == batch:
                yield RecordBatch(pending, user)
                pending = []
        if pending:
            yield RecordBatch(pending, user)


# --- LoCoMo and LongMemEval (the benchmark readers) ------------------------------------

def locomo_batches(path: Path, batch: int, user: str | None) -> Iterator[AddBatch]:
    """Each conversation is a user (its sample_id, or `user` for all), each session a
    conversation; turns go as the user's, with the speaker's name, as bench/locomo.py
    sends them."""
    for conv in locomo.load(path):
        owner = user or conv.sample_id
        for number, session in conv.sessions:
            messages = [{"role": "user", "content": t.text, "name": t.speaker,
                         "chat_time": t.chat_time, "message_id": f"{conv.sample_id}:{t.dia_id}"}
                        for t in session]
            for chunk in _chunks(messages, batch):
                yield AddBatch(owner, f"{conv.sample_id}-session_{number}", chunk)


def longmemeval_batches(path: Path, batch: int, user: str | None) -> Iterator[AddBatch]:
    """Each question's haystack is a user (the question id, or `user` for all), each
    session a conversation. A session shared by several questions is sent once per user."""
    for q in longmemeval.load(path):
        owner = user or q.question_id
        for s in q.sessions:
            messages = [{"role": t.role, "content": t.text, "chat_time": s.chat_time,
                         "message_id": t.message_id}
                        for t in s.turns if t.role in ROLES and t.text.strip()]
            for chunk in _chunks(messages, batch):
                yield AddBatch(owner, s.session_id, chunk)


# --- OpenAI ChatGPT export (conversations.json) ---------------------------------------

def chatgpt_batches(path: Path, batch: int, user: str) -> Iterator[AddBatch]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ImportFormatError(f"{path}: a ChatGPT export is a list of conversations")
    for i, conversation in enumerate(data):
        if not isinstance(conversation, dict) or not isinstance(
                conversation.get("mapping"), dict):
            raise ImportFormatError(f"{path}: conversation {i} has no `mapping`")
        conversation_id = str(conversation.get("conversation_id") or conversation.get("id")
                              or f"chatgpt-{i}")
        for chunk in _chunks(chatgpt_messages(conversation), batch):
            yield AddBatch(user, conversation_id, chunk)


def chatgpt_messages(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation as it was last shown: from `current_node` up its parents to the
    root (edits and regenerations leave other branches in the tree, not shown), then in
    order; user and assistant text only: hidden system context, tool output and an
    assistant's calls to its tools are left out."""
    mapping: dict[str, Any] = conversation["mapping"]
    node_id = conversation.get("current_node")
    if node_id not in mapping:  # no current node: the last leaf in the file
        leaves = [k for k, v in mapping.items() if not v.get("children")]
        node_id = leaves[-1] if leaves else None
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    while node_id is not None and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        path.append(node)
        node_id = node.get("parent")
    messages = []
    fallback = conversation.get("create_time")
    for node in reversed(path):
        message = node.get("message") or {}
        role = (message.get("author") or {}).get("role")
        metadata = message.get("metadata") or {}
        if role not in ROLES or metadata.get("is_visually_hidden_from_conversation") \
                or message.get("recipient", "all") != "all":  # a call addressed to a tool
            continue
        text = _chatgpt_text(message.get("content") or {})
        if not text.strip():
            continue
        when = message.get("create_time") or fallback
        entry: dict[str, Any] = {"role": role, "content": text,
                                 "message_id": str(message.get("id") or node.get("id"))}
        if isinstance(when, int | float):
            entry["chat_time"] = float(when)  # epoch seconds, as the export writes them
            fallback = when
        messages.append(entry)
    return messages


def _chatgpt_text(content: dict[str, Any]) -> str:
    """The text of a message: `parts` (strings; images and files in multimodal parts are
    not in the export's JSON and are left out), or `text` (code, tool output)."""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(p for p in parts if isinstance(p, str)).strip()
    text = content.get("text")
    return text.strip() if isinstance(text, str) else ""
