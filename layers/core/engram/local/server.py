"""`engram serve`: waitress in front of the same REST resolver the API Lambda runs. Each
request becomes an API Gateway REST (proxy) event; the API key is checked here, as the
Lambda authorizer does on AWS, and the tenant travels in `requestContext.authorizer`,
where the routes read it.

Why waitress: the core is synchronous (the Powertools resolver, SQLite, onnxruntime), so
a WSGI server with a bounded thread pool runs it as it is, with no async bridge. Waitress
is pure Python and maintained; it validates Content-Length, de-chunks bodies, reads each
request whole in its I/O thread before a worker sees it (a slow or stalled client never
holds a worker), closes connections on which nothing moved for `timeout` seconds, keeps
connections alive, and refuses a body over its cap from the headers, before reading it.

Three small hooks on waitress's classes keep the answers this server gave before: the
body caps are per route (10 MB for the API, the media cap for `/uploads`) and refusals
the I/O thread makes itself (bad framing, a body over its cap) come as the JSON envelope,
or S3's XML on `/uploads`, instead of waitress's text page."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import Error, RequestEntityTooLarge

from engram.adapters.local_uploads import FORM_OVERHEAD_BYTES, LocalUploadReceiver, UploadRefused
from engram.api.app import EVEROS_PREFIX, EVEROS_V2_PREFIX, PREFIX, error_response
from engram.api.streaming import stream_slot
from engram.errors import EngramError
from engram.services.keys import ApiKeyService

log = logging.getLogger(__name__)
PUBLIC_PATHS = (f"{PREFIX}/docs", f"{PREFIX}/openapi.json")
UPLOAD_PATH = "/uploads"  # where object/sign's forms post files (S3's role locally)
HEALTH_PATH = "/health"
MCP_PATH = "/mcp"  # the MCP tools over streamable HTTP (local/mcp_http.py)
TENANT_ENVIRON = "engram.tenant_id"  # where an authenticated /mcp request's tenant goes
HEALTH_METHODS = ("GET", "HEAD")
# Hop-by-hop headers are the server's to set (PEP 3333); the resolver's are dropped.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailers", "transfer-encoding", "upgrade", "content-length"})
# A request waiting for a worker is the bounded pool doing its job, not a warning each time.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)

# A body is bytes, or chunks sent as they come (a streamed answer: chat's events).
Response = tuple[int, list[tuple[str, str]], bytes | Iterable[bytes]]
# Requests that start ingestion: they wait behind every other request (see LaneDispatcher).
INGEST_ROUTES = frozenset({f"{PREFIX}/add/message", f"{PREFIX}/add/feedback",
                           f"{EVEROS_PREFIX}/memories", f"{EVEROS_PREFIX}/memories/group",
                           f"{EVEROS_PREFIX}/memories/agent", f"{EVEROS_V2_PREFIX}/memory/add"})


def is_ingest(method: str, path: str) -> bool:
    return method == "POST" and path.rstrip("/") in INGEST_ROUTES


class LambdaContext:
    """The few attributes Powertools reads from a Lambda context."""

    function_name = "engram-local"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:engram-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())


def proxy_event(method: str, raw_path: str, headers: dict[str, str], body: str | None,
                tenant_id: str | None, client_ip: str,
                base64_encoded: bool = False) -> dict[str, Any]:
    split = urlsplit(raw_path)
    multi_query = parse_qs(split.query, keep_blank_values=True)
    return {
        "resource": split.path,
        "path": split.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "authorizer": {"tenant_id": tenant_id} if tenant_id else None,
            "httpMethod": method,
            "path": split.path,
            "resourcePath": split.path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": client_ip},
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def json_error(status: int, message: str, path: str = "") -> Response:
    """The API's own error shape for `path` (the envelope, MMS's on the object routes)."""
    response = error_response(status, message, path)
    body = response.body if isinstance(response.body, bytes) else str(response.body).encode()
    return status, [("Content-Type", "application/json")], body


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status Python does not name
        return "Status"


def xml_error(refused: UploadRefused) -> Response:
    return refused.status, [("Content-Type", "application/xml")], refused.xml().encode()


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers under their usual names (WSGI upper-cases them)."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key
        else:
            continue
        headers["-".join(part.capitalize() for part in name.split("_"))] = value
    return headers


class EngramApp:
    """The WSGI application: `/health`, `/uploads`, and every other request, whatever its
    method, as a proxy event to the resolver (which answers unknown routes and methods)."""

    def __init__(self, resolver: APIGatewayRestResolver, keys: ApiKeyService,
                 max_body_bytes: int, uploads: LocalUploadReceiver | None = None,
                 mcp: Callable | None = None):
        # one resolver for every worker thread: it keeps each request's state apart
        # (engram/api/resolver.py)
        self._resolver, self._keys, self._uploads = resolver, keys, uploads
        self._max_body = max_body_bytes
        self._mcp = mcp  # the MCP tools' WSGI app (local/mcp_http.py), at MCP_PATH

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        # The resolver gets the path as sent (as before); the server's own routes are
        # matched on the decoded path, as waitress's parser applied the body caps to it.
        raw_path = environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        path = environ.get("PATH_INFO", "/")
        if self._mcp is not None and path == MCP_PATH:
            try:  # the REST API's key check; the tenant goes on in the environ
                environ[TENANT_ENVIRON] = self._keys.tenant_for_header(
                    environ.get("HTTP_AUTHORIZATION"))
            except EngramError as error:
                status, headers, body = json_error(error.status_code, error.message, path)
                start_response(f"{status} {reason(status)}",
                               [*headers, ("Content-Length", str(len(body)))])
                return [body]
            return self._mcp(environ, start_response)
        try:
            status, headers, body = self._handle(method, raw_path, path, environ)
        except Exception:
            log.exception("%s %s failed", method, path)
            status, headers, body = json_error(500, "internal error", path)
        streamed = not isinstance(body, bytes)
        if status not in (204, 304) and not streamed:
            headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {reason(status)}", headers)
        if streamed:  # no length: waitress sends it chunked, each piece as it comes
            return body  # type: ignore[return-value]
        return [] if method == "HEAD" or status in (204, 304) else [body]

    def _handle(self, method: str, raw_path: str, path: str,
                environ: dict[str, Any]) -> Response:
        if path == HEALTH_PATH:
            if method not in HEALTH_METHODS:
                allowed = ", ".join(HEALTH_METHODS)
                status, headers, body = json_error(405, f"{path} allows {allowed}", path)
                return status, [*headers, ("Allow", allowed)], body
            return 200, [("Content-Type", "application/json")], b'{"status": "ok"}'
        if path == UPLOAD_PATH and self._uploads is not None:
            return self._upload(method, environ)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self._max_body:  # the parser refuses these first; kept as the rule
            return json_error(413, f"request body is {length} bytes; the limit is "
                                   f"{self._max_body}", path)
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = request_headers(environ)
        # A form upload's files are bytes: handed on base64-encoded, as API Gateway does
        # with a binary media type (template.yaml BinaryMediaTypes).
        form = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower() \
            == "multipart/form-data"
        try:
            body = (base64.b64encode(raw).decode("ascii") if form else raw.decode("utf-8")) \
                if raw else None
        except UnicodeDecodeError:
            return json_error(400, "request body is not UTF-8", path)
        tenant = None
        api_path = urlsplit(raw_path).path
        if api_path.startswith((PREFIX, EVEROS_PREFIX, EVEROS_V2_PREFIX, "/v2/", "/v3/")) and \
                not api_path.startswith(PUBLIC_PATHS):
            try:
                tenant = self._keys.tenant_for_header(headers.get("Authorization"))
            except EngramError as error:
                return json_error(error.status_code, error.message, path)
        event = proxy_event(method, raw_path, headers, body, tenant,
                            environ.get("REMOTE_ADDR", ""), base64_encoded=form)
        with stream_slot() as slot:
            response = self._response(self._resolver.resolve(event, LambdaContext()))
        if slot.chunks is not None and response[0] == 200:
            return response[0], response[1], (chunk.encode() for chunk in slot.chunks)
        return response

    @staticmethod
    def _response(response: dict[str, Any]) -> Response:
        merged: dict[str, list[str]] = {k: list(v) for k, v in
                                        (response.get("multiValueHeaders") or {}).items()}
        merged.update({k: [v] for k, v in (response.get("headers") or {}).items()})
        headers = [(k, str(v)) for k, values in merged.items() for v in values
                   if k.lower() not in HOP_BY_HOP]
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        return int(response["statusCode"]), headers, data

    def _upload(self, method: str, environ: dict[str, Any]) -> Response:
        """A signed form's file: no API key (the policy's signature is the grant)."""
        if method != "POST":
            status, headers, body = xml_error(
                UploadRefused(405, "MethodNotAllowed", "uploads are POSTed"))
            return status, [*headers, ("Allow", "POST")], body
        length = environ.get("CONTENT_LENGTH")
        try:
            key = self._uploads.receive(environ.get("CONTENT_TYPE", ""),
                                        int(length) if length and length.isdigit() else None,
                                        environ["wsgi.input"])
        except UploadRefused as refused:
            log.info("upload refused: %s", refused)
            return xml_error(refused)
        log.info("uploaded %s", key)
        return 204, [], b""


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    threads: int = 8  # requests run at once; more wait in waitress's queue
    ingest_slots: int = 1  # of which adds (see LaneDispatcher)
    timeout: int = 30  # seconds without a byte moving before a connection is closed
    max_body_bytes: int = 10 * 1024 * 1024  # the API's cap
    max_upload_bytes: int = 500 * 1024 * 1024  # the largest file a signed form allows
    connection_limit: int = 100


class RequestTimeout(Error):
    code = 408
    reason = "Request Timeout"


class LengthRequired(Error):
    code = 411
    reason = "Length Required"


class EngramErrorTask(ErrorTask):
    """What waitress answers itself (framing it cannot parse, a body over its cap, an
    error past the app) in the API's shape: the envelope, or S3's XML on `/uploads`."""

    def execute(self) -> None:
        error = self.request.error
        path = getattr(self.request, "path", "")
        if path == UPLOAD_PATH:
            if isinstance(error, RequestEntityTooLarge):
                refused = UploadRefused(400, "EntityTooLarge",
                                        "Your proposed upload exceeds the maximum allowed size")
            elif isinstance(error, LengthRequired):
                refused = UploadRefused(411, "MissingContentLength",
                                        "You must provide the Content-Length HTTP header.")
            else:
                refused = UploadRefused(error.code, error.reason.replace(" ", ""), error.body)
            _, headers, body = xml_error(refused)
            status = refused.status
        else:
            status, headers, body = json_error(error.code, f"{error.reason}: {error.body}",
                                               path)
        self.status = f"{status} {reason(status)}"
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        if getattr(self.request, "command", "") != "HEAD":
            self.write(body)


class LaneDispatcher(ThreadedTaskDispatcher):
    """waitress's worker pool with two lanes. Requests that start ingestion (adds) are
    taken only when no other request waits, and at most `ingest_slots` of them run at
    once; every other request (searches, reads) is taken first come, first served. Under
    load the wait falls on the adds (acknowledged in the background anyway), not on the
    searches: with adds free to run side by side, 8 clients' search p95 was about twice
    as long (bench/load.py). An add running longer than `hold` seconds (a large sync add)
    stops counting against the slots, so it cannot hold the lane shut."""

    def __init__(self, ingest_slots: int = 1, hold: float = 1.0):
        super().__init__()
        self.ingest_slots, self.hold = ingest_slots, hold
        self.ingest_queue: deque = deque()
        self.ingest_started: dict[int, float] = {}  # worker → when its add started

    def add_task(self, task: Any) -> None:
        try:
            request = task.requests[0]
            ingest = request.error is None and is_ingest(request.command, request.path)
        except (AttributeError, IndexError):
            ingest = False
        with self.lock:
            (self.ingest_queue if ingest else self.queue).append(task)
            self.queue_cv.notify()

    def _ingest_open(self) -> bool:
        since = time.monotonic() - self.hold
        return sum(t > since for t in self.ingest_started.values()) < self.ingest_slots

    def handler_thread(self, thread_no: int) -> None:  # waitress's loop, with the lanes
        while True:
            with self.lock:
                while not (self.queue or (self.ingest_queue and self._ingest_open())) \
                        and self.stop_count == 0:
                    self.active_count -= 1
                    # a held lane opens by itself after `hold`: look again then
                    self.queue_cv.wait(self.hold if self.ingest_queue else None)
                    self.active_count += 1
                if self.stop_count > 0:
                    self.active_count -= 1
                    self.stop_count -= 1
                    self.threads.discard(thread_no)
                    self.thread_exit_cv.notify()
                    break
                ingest = not self.queue
                if ingest:
                    self.ingest_started[thread_no] = time.monotonic()
                    task = self.ingest_queue.popleft()
                else:
                    task = self.queue.popleft()
            try:
                task.service()
            except BaseException:
                self.logger.exception("Exception when servicing %r", task)
            finally:
                if ingest:
                    with self.lock:
                        del self.ingest_started[thread_no]
                        self.queue_cv.notify()

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        with self.lock:  # waitress cancels what is left in `queue`
            self.queue.extend(self.ingest_queue)
            self.ingest_queue.clear()
        return super().shutdown(cancel_pending, timeout)


def server_class(options: ServerOptions) -> type[TcpWSGIServer]:
    """waitress's TCP server with the per-route body caps and the envelope errors."""
    upload_cap = options.max_upload_bytes + FORM_OVERHEAD_BYTES

    class Parser(HTTPRequestParser):
        def received(self, data: bytes) -> int:
            consumed = super().received(data)
            if self.error is None and self.headers_finished and not self.empty:
                upload = self.path == UPLOAD_PATH
                limit = upload_cap if upload else options.max_body_bytes
                size = self.body_bytes_received if self.chunked else self.content_length
                if upload and self.chunked:  # S3 wants the length up front; so do we
                    self._refuse(LengthRequired("uploads need a Content-Length"))
                elif size > limit:
                    told = "is over" if self.chunked else f"is {size} bytes;"
                    self._refuse(RequestEntityTooLarge(
                        f"request body {told} the limit is {limit}"))
            if self.error is not None:
                # Answer now, without inviting the body (waitress would send 100 Continue
                # and then read on).
                self.expect_continue = False
            return consumed

        def _refuse(self, error: Error) -> None:
            self.error = error
            self.completed = True

    class Channel(HTTPChannel):
        parser_class = Parser
        error_task_class = EngramErrorTask

    class Server(TcpWSGIServer):
        channel_class = Channel

        def maintenance(self, now: float) -> None:
            """A request whose body stopped arriving is answered 408 (then closed), not
            just dropped; waitress closes every other connection idle this long."""
            cutoff = now - self.adj.channel_timeout
            for channel in list(self.active_channels.values()):
                request = channel.request
                if (channel.requests or channel.last_activity >= cutoff or request is None
                        or not request.headers_finished or request.completed):
                    continue
                expected = "" if request.chunked else f" of {request.content_length}"
                request.error = RequestTimeout(
                    f"the request body stopped arriving ({request.body_bytes_received}"
                    f"{expected} bytes, then nothing for {self.adj.channel_timeout} s)")
                request.completed = True
                # The loop's own thread, and no task holds this channel (requests is
                # empty): hand the request over as waitress's channel.received() does.
                with channel.requests_lock:
                    channel.requests.append(request)
                    channel.request = None
                channel.last_activity = now
                self.add_task(channel)
            super().maintenance(now)

    return Server


class EngramServer:
    """waitress's loop with a graceful stop: stop() (a signal handler may call it) closes
    the listening sockets; requests already read are answered, idle connections closed,
    and run() returns once none is left or `grace` seconds have passed."""

    def __init__(self, app: Callable, options: ServerOptions):
        self.adj = Adjustments(
            host=options.host, port=options.port, threads=options.threads,
            channel_timeout=options.timeout, cleanup_interval=1,
            connection_limit=options.connection_limit, ident="engram",
            max_request_body_size=max(options.max_body_bytes, options.max_upload_bytes
                                      + FORM_OVERHEAD_BYTES) + 1,
            clear_untrusted_proxy_headers=False, expose_tracebacks=False)
        self.map: dict = {}
        self.dispatcher = LaneDispatcher(options.ingest_slots)
        self.dispatcher.set_thread_count(self.adj.threads)
        cls = server_class(options)
        self.servers = [cls(app, self.map, dispatcher=self.dispatcher, adj=self.adj,
                            sockinfo=info) for info in self.adj.listen]
        self._stopping = False

    @property
    def port(self) -> int:
        return int(self.servers[0].effective_port)

    def stop(self) -> None:
        self._stopping = True

    def run(self, grace: float = 20.0) -> None:
        loop = {"timeout": 0.2, "map": self.map, "use_poll": True, "count": 1}
        while not self._stopping:
            wasyncore.loop(**loop)
        for server in self.servers:  # no new connections; the wake-up trigger stays open
            server.accepting = False
            wasyncore.dispatcher.close(server)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            channels = [c for s in self.servers for c in list(s.active_channels.values())]
            if not channels:
                break
            for channel in channels:
                if not channel.requests and not channel.total_outbufs_len:
                    channel.will_close = True  # idle, or between requests
            wasyncore.loop(**loop)
        self.dispatcher.shutdown(timeout=max(1.0, deadline - time.monotonic()))
        wasyncore.close_all(self.map)


def make_server(options: ServerOptions, resolver: APIGatewayRestResolver, keys: ApiKeyService,
                uploads: LocalUploadReceiver | None = None,
                mcp: Callable | None = None) -> EngramServer:
    return EngramServer(EngramApp(resolver, keys, options.max_body_bytes, uploads, mcp),
                        options)
