"""engram serve | add | search | status | mcp | export | import."""

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
    app = create_app(services)
    app.include_now()  # a server, not a cold start: every route before the first request
    server = make_server(options, app, services.keys, runtime.uploads, mcp=mcp_http)
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


def export(args: argparse.Namespace) -> int:
    """Page through POST export/memory and write the JSONL file: the header, then one line
    per current memory (newest first)."""
    from engram.client import EngramClientError

    client = _client(args)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    count, cursor = 0, None
    try:
        while True:
            body = {"user_id": args.user, "limit": args.page_size}
            if cursor:
                body["cursor"] = cursor
            page = client.post("export/memory", body)
            if count == 0 and cursor is None:
                out.write(json.dumps(page["header"], ensure_ascii=False) + "\n")
            for record in page["records"]:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += len(page["records"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    except EngramClientError as exc:
        sys.exit(f"export failed: {exc}")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.out:
        print(f"exported {count} memories of {args.user} to {args.out}", file=sys.stderr)
    return 0


def import_file(args: argparse.Namespace) -> int:
    from engram.client import EngramClientError
    from engram.imports.runner import run_import, wait_for_tasks
    from engram.imports.sources import ImportFormatError, read

    path = Path(args.file)
    if not path.exists():
        sys.exit(f"no such file: {path}")
    try:
        batches = read(path, args.format, args.batch_size, args.user)
    except ImportFormatError as exc:
        sys.exit(str(exc))
    client = _client(args)
    try:
        report = run_import(client, batches, async_mode=not args.sync)
        ended = wait_for_tasks(client, report.task_ids) if args.wait and report.task_ids \
            else None
    except (EngramClientError, KeyboardInterrupt, OSError) as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        sys.exit(f"import stopped: {reason}\nrun the same command again to resume: what "
                 "was sent already is recognised and not added twice")
    if report.adds:
        print(f"imported {report.turns} turns in {report.adds} adds "
              f"({len(report.conversations)} conversations)", file=sys.stderr)
    if report.written or report.skipped:
        print(f"restored {report.written} memories ({report.skipped} already there)",
              file=sys.stderr)
    if ended is not None:
        print(f"tasks: {ended['completed']} completed, {ended['failed']} failed",
              file=sys.stderr)
        return 1 if ended["failed"] else 0
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

    p = sub.add_parser("export", help="write a user's memories (with history) as JSON Lines")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--format", default="jsonl", choices=["jsonl"])
    p.add_argument("--out", default=None, help="the file to write (default: stdout)")
    p.add_argument("--page-size", type=int, default=200, help="memories per request (≤500)")
    p.set_defaults(func=export)

    p = sub.add_parser("import", help="import an export, LoCoMo, LongMemEval or a ChatGPT "
                                      "conversations.json")
    client_args(p)
    p.add_argument("file")
    p.add_argument("--format", default="auto",
                   choices=["auto", "engram", "locomo", "longmemeval", "chatgpt"])
    p.add_argument("--user", default=None, help="the user to import into (required for "
                   "ChatGPT; default: each record's or conversation's own)")
    p.add_argument("--batch-size", type=int, default=50,
                   help="turns (or records) per request (≤200 records, ≤500 turns)")
    p.add_argument("--sync", action="store_true",
                   help="each add waits for its memories (default: async, as the API)")
    p.add_argument("--wait", action="store_true",
                   help="after sending, wait until every add's task has been processed")
    p.set_defaults(func=import_file)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("ENGRAM_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
