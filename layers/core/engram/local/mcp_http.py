"""`/mcp` on `engram serve`: the MCP tools over streamable HTTP, beside the REST API.

The SDK serves streamable HTTP as an ASGI app; `engram serve` is a WSGI server (waitress,
see server.py). a2wsgi's ASGIMiddleware runs the ASGI app on an event loop in one
background thread and hands each request and answer across. The server has checked the
API key before a request gets here and put the tenant in the WSGI environ (a2wsgi
passes the environ on in the ASGI scope, where the tools read it).

The transport is stateless with JSON answers: every POST is answered whole, no session
lives in this process (a restart or a second replica loses nothing), and no SSE stream
is held open on a waitress worker. The tools run in the SDK's worker threads, not on the
event loop, so a slow add does not hold up the other MCP requests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

from a2wsgi import ASGIMiddleware
from mcp.server.mcpserver import Context

from engram.api.memos.translate import MemosTranslator
from engram.local.server import HOP_BY_HOP, MCP_PATH, TENANT_ENVIRON
from engram.mcp.backends import BackendError, InProcessMemos
from engram.mcp.tools import build_mcp

USER_HEADER = "x-engram-user-id"  # a connection's default user, over the server's
NO_STREAM = (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Method Not '
             b'Allowed: this server offers no SSE stream; POST JSON-RPC messages"}}')


def _scope_environ(ctx: Context) -> dict[str, Any]:
    request = ctx.request_context.request
    environ = getattr(request, "scope", {}).get("wsgi_environ") if request else None
    if not environ or not environ.get(TENANT_ENVIRON):
        raise BackendError(401, "request was not authenticated")  # never served unchecked
    return environ


class McpHttpApp:
    """A WSGI app answering `/mcp` with the SDK's streamable-HTTP app; `close()` stops it."""

    def __init__(self, memos: MemosTranslator, default_user: str, host: str):
        def backend_for(ctx: Context) -> InProcessMemos:
            return InProcessMemos(memos, _scope_environ(ctx)[TENANT_ENVIRON])

        def default_user_for(ctx: Context) -> str:
            headers = getattr(ctx.request_context.request, "headers", None) or {}
            return headers.get(USER_HEADER) or default_user

        server = build_mcp(backend_for, default_user_for, local_files=False)
        # host: the SDK checks Host/Origin (DNS rebinding) when bound to loopback
        app = server.streamable_http_app(streamable_http_path=MCP_PATH, json_response=True,
                                         stateless_http=True, host=host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="engram-mcp",
                                        daemon=True)
        self._thread.start()
        ready = threading.Event()
        self._stop: asyncio.Event | None = None
        # The session manager's task group must run for as long as the server does (what
        # an ASGI server's lifespan would do).
        self._running = asyncio.run_coroutine_threadsafe(
            self._serve(server.session_manager, ready), self._loop)
        if not ready.wait(10):
            raise RuntimeError("the MCP session manager did not start")
        self._wsgi = ASGIMiddleware(app, loop=self._loop)

    async def _serve(self, manager: Any, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        async with manager.run():
            ready.set()
            await self._stop.wait()

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            # No standalone SSE stream (the spec's alternative is this 405): one would
            # hold a waitress worker for as long as the client stayed connected.
            body = NO_STREAM if environ["REQUEST_METHOD"] == "GET" else b""
            start_response("405 Method Not Allowed", [
                ("Content-Type", "application/json"), ("Allow", "POST, DELETE"),
                ("Content-Length", str(len(NO_STREAM)))])
            return [body]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # hop-by-hop headers (the SDK's "Connection") are the server's to set
            return start_response(status, [(k, v) for k, v in headers
                                           if k.lower() not in HOP_BY_HOP], exc_info)

        return self._wsgi(environ, start)

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        try:
            self._running.result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
