"""engram serve | add | search | status | mcp."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000/v1"


def serve(args: argparse.Namespace) -> int:
    from engram.api.app import create_app
    from engram.config import Settings
    from engram.local.runtime import build_local_runtime, stored_api_key
    from engram.local.server import ServerOptions, make_server

    given = {"host": args.host, "port": args.port, "data_dir": args.data_dir}  # over ENGRAM_*
    settings = Settings(**{name: value for name, value in given.items() if value is not None})
    runtime = build_local_runtime(settings)
    services = runtime.services
    options = ServerOptions(
        host=settings.host, port=settings.port, threads=settings.http.threads,
        timeout=settings.http.timeout_seconds, max_body_bytes=settings.limits.max_body_bytes,
        max_upload_bytes=max(settings.limits.max_image_bytes,
                             settings.limits.max_document_bytes, settings.limits.max_media_bytes))
    mcp_http = mcp_app(services, settings)
    server = make_server(options, create_app(services), services.keys, runtime.uploads,
                         mcp=mcp_http)
    resumed = runtime.resume_unfinished()

    url = f"http://{settings.host}:{server.port}/v1"
    key = runtime.new_api_key or stored_api_key(settings.data_dir)
    print(f"Engram is serving {url}  (data: {settings.data_dir.resolve()})", flush=True)
    if runtime.new_api_key:
        print(f"Created an API key (kept in {settings.data_dir / 'api_key'}):\n  {key}")
    elif settings.api_keys:
        print("API keys: from ENGRAM_API_KEYS")
    if key:
        print("Try it:\n"
              f"  curl -s {url}/add/message -H 'Authorization: Token {key}' "
              "-H 'Content-Type: application/json' \\\n"
              "    -d '{\"user_id\":\"u1\",\"conversation_id\":\"c1\",\"async_mode\":false,"
              "\"messages\":[{\"role\":\"user\",\"content\":\"I like green tea\"}]}'\n"
              f"  curl -s {url}/search/memory -H 'Authorization: Token {key}' "
              "-H 'Content-Type: application/json' \\\n"
              "    -d '{\"user_id\":\"u1\",\"query\":\"What do I like to drink?\"}'")
    if resumed:
        print(f"Resumed {resumed} unfinished task(s)")
    print(f"API docs: {url}/docs", flush=True)
    if mcp_http is not None:
        print(f"MCP (streamable HTTP): http://{settings.host}:{server.port}/mcp  "
              "(header 'Authorization: Bearer <key>')", flush=True)

    def stop(*_: object) -> None:  # requests already read are answered, then we exit
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.run()
    finally:
        if mcp_http is not None:
            mcp_http.close()
        runtime.close()  # running pipeline tasks finish; queued ones resume on next start
    return 0


def mcp_app(services, settings):
    """`/mcp` beside the REST API, or None (with a line saying why) when the `mcp` extra
    is not installed."""
    try:
        from engram.local.mcp_http import McpHttpApp
    except ImportError as error:
        print(f"MCP at /mcp: off ({error.name} is not installed: pip install "
              "'engram[mcp]')", flush=True)
        return None
    from engram.api.app import memos_translator

    return McpHttpApp(memos_translator(services), settings.mcp_user_id, settings.host)


def mcp(args: argparse.Namespace) -> int:
    """The MCP tools over stdio, for a desktop agent, calling a running Engram's API."""
    from engram.mcp.backends import HttpMemos
    from engram.mcp.tools import build_mcp

    key = _api_key(args)
    logging.getLogger().setLevel(logging.WARNING)  # stdout is the protocol: logs go to stderr
    backend = HttpMemos(args.url, key)
    server = build_mcp(lambda _ctx: backend, lambda _ctx: args.user_id, local_files=True)
    server.run("stdio")
    return 0


def _api_key(args: argparse.Namespace) -> str:
    from engram.local.runtime import stored_api_key

    key = args.api_key or os.environ.get("ENGRAM_API_KEY") or stored_api_key(Path(args.data_dir))
    if not key:
        sys.exit("no API key: pass --api-key, set ENGRAM_API_KEY, or run `engram serve` first")
    return key


def _client(args: argparse.Namespace):
    from engram.client import EngramClient

    return EngramClient(args.url, _api_key(args))


def add(args: argparse.Namespace) -> int:
    client = _client(args)
    result = client.add_message(args.user, args.conversation,
                                [{"role": args.role, "content": args.text}])
    if args.wait:
        result = client.wait(result["task_id"])
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def search(args: argparse.Namespace) -> int:
    result = _client(args).search(args.query, args.user, memory_limit_number=args.limit)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    for item in result["memory_detail_list"]:
        print(f"{item['relativity']:.3f}  [{item['memory_type']}] {item['memory_value']}")
    for item in result["preference_detail_list"]:
        print(f"{item['relativity']:.3f}  [preference] {item['preference']}")
    return 0


def status(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).get_status(args.task_id), ensure_ascii=False, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engram", description="Engram memory layer")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the API on this machine")
    p.add_argument("--host", default=None, help="default 127.0.0.1 (ENGRAM_HOST)")
    p.add_argument("--port", type=int, default=None, help="default 8000 (ENGRAM_PORT)")
    p.add_argument("--data-dir", default=None, help="default ./.engram (ENGRAM_DATA_DIR)")
    p.set_defaults(func=serve)

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=os.environ.get("ENGRAM_URL", DEFAULT_URL))
        p.add_argument("--api-key", default=None)
        p.add_argument("--data-dir", default=os.environ.get("ENGRAM_DATA_DIR", ".engram"),
                       help="where `engram serve` keeps its generated key")

    p = sub.add_parser("add", help="add one message")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--conversation", default="cli")
    p.add_argument("--role", default="user", choices=["user", "assistant", "system", "tool"])
    p.add_argument("--wait", action="store_true", help="wait until the task is processed")
    p.add_argument("text")
    p.set_defaults(func=add)

    p = sub.add_parser("search", help="search a user's memories")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--json", action="store_true")
    p.add_argument("query")
    p.set_defaults(func=search)

    p = sub.add_parser("status", help="show a task's status")
    client_args(p)
    p.add_argument("task_id")
    p.set_defaults(func=status)

    p = sub.add_parser("mcp", help="the MCP tools over stdio (for Claude Code, Cursor...), "
                                   "calling the Engram API at --url")
    client_args(p)
    p.add_argument("--user-id", default=os.environ.get("ENGRAM_MCP_USER_ID", "default"),
                   help="the user whose memories the tools use when a call names none "
                        "(ENGRAM_MCP_USER_ID; default 'default')")
    p.set_defaults(func=mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("ENGRAM_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
