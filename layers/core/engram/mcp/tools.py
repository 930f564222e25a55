"""Engram's MCP tools, built on the official `mcp` SDK (MCPServer). Each tool builds the
/v1 request model, hands it to a backend (backends.py: the /v1 translator in-process, or
a running Engram's /v1 API over HTTP) and trims the answer for a model (models.py).

The same tools serve both transports; they differ in two things only:
- the backend (and so the tenant) of a call: `backend_for(ctx)`;
- files: the stdio server (`engram mcp`, on the user's machine) also reads a local path;
  over HTTP only URLs are taken, fetched by the server under its SSRF policy.

The user whose memories a call reads or writes is the `user_id` argument, or the
connection's default user (`default_user_for(ctx)`) when the model leaves it out.

No `from __future__ import annotations` here: the SDK reads each tool's signature, whose
annotations name values local to build_mcp (the file tool's description)."""

import base64
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, ValidationError

from engram.api.memos.models import (
    AddMessageRequest,
    DeleteMemoryRequest,
    GetMemoryRequest,
    SearchRequest,
    UpdateMemoryRequest,
)
from engram.mcp.backends import BackendError, MemosBackend
from engram.mcp.models import (
    AddResult,
    DeleteResult,
    MemoryList,
    MemoryRecord,
    SearchResult,
    TaskResult,
    add_result,
    memory_list,
    memory_record,
    search_result,
    task_result,
)

# A local file travels base64-encoded in one add (the API takes 10 MB bodies).
MAX_LOCAL_FILE_BYTES = 7 * 1024 * 1024
DEFAULT_CONVERSATION = "mcp"

INSTRUCTIONS = """\
Engram is long-term memory about the user (and their projects), kept across sessions.
- Before answering anything that may depend on what the user told you before (their
  preferences, plans, people, past decisions), call search_memories with a question.
- When the user states something durable about themselves or their work (a preference,
  a fact, a decision, a correction), call add_memory with it in plain words. Engram
  extracts, de-duplicates and supersedes by itself: do not search first to avoid repeats.
- Use update_memory / delete_memories only when the user asks to correct or forget
  something and you know the memory's id (from search_memories or list_memories).
Leave user_id out unless the user names whose memory to use."""

BackendFor = Callable[[Context], MemosBackend]
UserFor = Callable[[Context], str]

UserId = Annotated[str | None, Field(
    description="Whose memories. Leave it out to use this connection's "
                              "default user; set it only when asked for another user's.")]


def _run(call: Callable[[], Any]) -> Any:
    """A refusal of the API (or of a request model) as a tool error the model can read."""
    try:
        return call()
    except BackendError as error:
        raise ToolError(str(error)) from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                             for e in error.errors())
        raise ToolError(f"invalid argument: {problems}") from None


def build_mcp(backend_for: BackendFor, default_user_for: UserFor, *,
              local_files: bool) -> MCPServer:
    """The MCP server with Engram's tools (not yet bound to a transport)."""
    from engram import __version__

    # subscriptions=False: nothing here changes under a client's feet, and a listen
    # stream would hold an HTTP worker open for as long as the client stays
    mcp = MCPServer("engram", instructions=INSTRUCTIONS, version=__version__,
                    log_level="WARNING", subscriptions=False)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def who(ctx: Context, user_id: str | None) -> str:
        return user_id or default_user_for(ctx)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                          open_world_hint=False))
    def add_memory(
        text: Annotated[str, Field(min_length=1, description=(
            "What to remember, in plain words: a statement by the user (\"I moved to "
            "Porto in May\") or a short exchange. Up to 100,000 characters."))],
        ctx: Context,
        user_id: UserId = None,
        conversation_id: Annotated[str, Field(description=(
            "Groups what is added together (e.g. one chat or project); search slightly "
            "favours it."))] = DEFAULT_CONVERSATION,
        role: Annotated[Literal["user", "assistant"], Field(description=(
            "Who said the text: 'user' for what the user said or a fact about them, "
            "'assistant' for what you said."))] = "user",
        wait: Annotated[bool, Field(description=(
            "false (default): return at once; the text is searchable immediately and the "
            "extracted memories follow within seconds (see task_status). true: return "
            "when processing is done, with the ids of the memories added or updated."))]
        = False,
        tags: Annotated[list[str] | None, Field(description="Optional labels kept on the "
                                                            "memories")] = None,
    ) -> AddResult:
        """Remember something about the user: store a statement or a short exchange as
        memories. Engram extracts the facts and preferences, merges them with what it
        already knows (no duplicates) and lets newer facts supersede older ones, keeping
        the old value as history. Returns a task id (see task_status)."""
        return _run(lambda: add_result(backend_for(ctx).add_message(AddMessageRequest(
            user_id=who(ctx, user_id), conversation_id=conversation_id,
            messages=[{"role": role, "content": text}], tags=tags, async_mode=not wait))))

    if local_files:
        source_help = ("An http(s) URL (fetched by the Engram server), or the path of a "
                       "file on this computer (~ allowed; up to 7 MB).")
    else:
        source_help = ("An http(s) URL of the file, fetched by the Engram server (private "
                       "and local addresses are refused). Local paths are not read by "
                       "this server: use the `engram mcp` stdio server for those.")

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                          open_world_hint=True))
    def add_file(
        source: Annotated[str, Field(min_length=1, description=source_help)],
        ctx: Context,
        note: Annotated[str | None, Field(description=(
            "Optional words to store with the file: what it is, why it matters."))] = None,
        user_id: UserId = None,
        conversation_id: Annotated[str, Field(description=(
            "Groups what is added together."))] = DEFAULT_CONVERSATION,
    ) -> AddResult:
        """Remember the content of a document or an image (PDF, DOCX, TXT, Markdown,
        HTML, email, PNG/JPEG...): Engram reads it (text, OCR for scans and images) and
        extracts memories from it. Processing is always in the background: the result's
        task id tells, through task_status, when it is done or why it failed."""
        part = _run(lambda: _file_part(source, local_files))
        content: list[dict[str, Any]] = [{"type": "text", "text": note}] if note else []
        return _run(lambda: add_result(backend_for(ctx).add_message(AddMessageRequest(
            user_id=who(ctx, user_id), conversation_id=conversation_id,
            messages=[{"role": "user", "content": [*content, part]}]))))

    @mcp.tool(annotations=read_only)
    def search_memories(
        query: Annotated[str, Field(min_length=1, max_length=4000, description=(
            "A question or keywords, e.g. \"Which hotel did I pick in Guangzhou?\""))],
        ctx: Context,
        user_id: UserId = None,
        limit: Annotated[int, Field(ge=1, le=25, description="Most memories to return")]
        = 6,
        as_of: Annotated[str | None, Field(description=(
            "Optional date or datetime (ISO 8601): answer with memory as it stood then "
            "(older values of facts that changed since)."))] = None,
    ) -> SearchResult:
        """Find what Engram remembers about the user that is relevant to a question:
        facts (with a 0-1 relevance, best first), preferences, and a one-line summary
        of the preferences. Use it before answering anything that may depend on the
        user's past. Dates in the query ("last Saturday", "in May") are understood."""
        return _run(lambda: search_result(backend_for(ctx).search(SearchRequest(
            query=query, user_id=who(ctx, user_id), memory_limit_number=limit,
            preference_limit_number=limit, as_of=as_of))))

    @mcp.tool(annotations=read_only)
    def list_memories(
        ctx: Context,
        user_id: UserId = None,
        page: Annotated[int, Field(ge=1, description="Page number, from 1")] = 1,
        size: Annotated[int, Field(ge=1, le=50, description="Memories per page")] = 20,
    ) -> MemoryList:
        """List the user's current memories, newest first, a page at a time (with the
        total). Use it to review everything remembered; to answer a question, use
        search_memories instead."""
        return _run(lambda: memory_list(backend_for(ctx).get_memory(GetMemoryRequest(
            user_id=who(ctx, user_id), page=page, size=size, include_preference=False,
            include_tool_memory=False))))

    @mcp.tool(annotations=read_only)
    def get_memory(
        memory_id: Annotated[str, Field(min_length=1, description=(
            "A memory's id, from search_memories, list_memories or task_status"))],
        ctx: Context,
    ) -> MemoryRecord:
        """One memory by id, with its status, the messages it came from and its history
        (earlier values, each with when it held and why it changed)."""
        return _run(lambda: memory_record(backend_for(ctx).get_memory_by_id(memory_id)))

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                          idempotent_hint=True, open_world_hint=False))
    def update_memory(
        memory_id: Annotated[str, Field(min_length=1, description="The memory's id")],
        content: Annotated[str, Field(min_length=1, max_length=20000, description=(
            "The corrected text, in full"))],
        ctx: Context,
        user_id: UserId = None,
    ) -> MemoryRecord:
        """Correct one memory's text when the user says it is wrong or out of date. The
        old value is kept in the memory's history. (For a new fact that replaces an old
        one, add_memory also works: Engram supersedes by itself.) Returns the memory
        with its history."""
        def edit() -> MemoryRecord:
            backend = backend_for(ctx)
            backend.update_memory(UpdateMemoryRequest(
                memory_id=memory_id, content=content, user_id=who(ctx, user_id)))
            return memory_record(backend.get_memory_by_id(memory_id))  # with its history

        return _run(edit)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                          idempotent_hint=True, open_world_hint=False))
    def delete_memories(
        memory_ids: Annotated[list[str], Field(min_length=1, max_length=1000, description=(
            "The ids of the memories to forget"))],
        ctx: Context,
    ) -> DeleteResult:
        """Forget memories by id, when the user asks to: they leave search and lists
        (their history is kept). Returns how many were deleted."""
        return _run(lambda: DeleteResult(deleted=backend_for(ctx).delete_memory(
            DeleteMemoryRequest(memory_ids=memory_ids)).deleted))

    @mcp.tool(annotations=read_only)
    def task_status(
        task_id: Annotated[str, Field(min_length=1, description=(
            "The task id add_memory or add_file returned"))],
        ctx: Context,
    ) -> TaskResult:
        """Progress of an add: waiting, running, completed (with the ids of the
        memories added, updated or deleted) or failed (with the reason); for files,
        each file's state."""
        return _run(lambda: task_result(backend_for(ctx).task_status(task_id)))

    return mcp


def _file_part(source: str, local_files: bool) -> dict[str, Any]:
    """The /v1 content part for a file: its URL (the server fetches it under its SSRF
    policy), or a local file's bytes (stdio only)."""
    source = source.strip()
    if source.lower().startswith(("http://", "https://")):
        name = source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if _is_image(name):
            return {"type": "image_url", "image_url": {"url": source}}
        return {"type": "file", "file": {"file_data": source, "file_name": name or "file"}}
    if not local_files:
        raise BackendError(422, "source: give an http(s) URL; this server does not read "
                                "local paths")
    path = Path(source).expanduser()
    if not path.is_file():
        raise BackendError(404, f"source: no file at {path}")
    size = path.stat().st_size
    if size > MAX_LOCAL_FILE_BYTES:
        raise BackendError(413, f"source: {path} is {size} bytes; the limit for a local "
                                f"file is {MAX_LOCAL_FILE_BYTES} bytes")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    if _is_image(path.name):
        kind = mimetypes.guess_type(path.name)[0]
        return {"type": "image_url", "image_url": {"url": f"data:{kind};base64,{data}",
                                                   "file_name": path.name}}
    return {"type": "file", "file": {"file_data": data, "file_name": path.name}}


def _is_image(name: str) -> bool:
    kind = mimetypes.guess_type(name)[0] or ""
    return kind.startswith("image/")
