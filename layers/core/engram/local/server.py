"""`engram serve`: a threaded HTTP server in front of the same REST resolver the API
Lambda runs. Each request becomes an API Gateway REST (proxy) event; the API key is
checked here, as the Lambda authorizer does on AWS, and the tenant travels in
`requestContext.authorizer`, where the routes read it."""

from __future__ import annotations

import json
import logging
import queue
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from engram.adapters.local_uploads import LocalUploadReceiver, UploadRefused
from engram.api.app import EVEROS_PREFIX, PREFIX
from engram.api.memos.models import ErrorEnvelope
from engram.errors import BadRequest, EngramError, PayloadTooLarge
from engram.services.keys import ApiKeyService

log = logging.getLogger(__name__)
PUBLIC_PATHS = (f"{PREFIX}/docs", f"{PREFIX}/openapi.json")
UPLOAD_PATH = "/uploads"  # where object/sign's forms post files (S3's role locally)


class LambdaContext:
    """The few attributes Powertools reads from a Lambda context."""

    function_name = "engram-local"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:engram-local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())


class ResolverPool:
    """Powertools resolvers keep the current event on the instance, so each request
    borrows a resolver of its own instead of sharing one across threads."""

    def __init__(self, factory: Callable[[], APIGatewayRestResolver]):
        self._factory = factory
        self._idle: queue.SimpleQueue[APIGatewayRestResolver] = queue.SimpleQueue()

    def resolve(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            app = self._idle.get_nowait()
        except queue.Empty:
            app = self._factory()
        try:
            return app.resolve(event, LambdaContext())
        finally:
            self._idle.put(app)


def proxy_event(method: str, raw_path: str, headers: dict[str, str], body: str | None,
                tenant_id: str | None, client_ip: str) -> dict[str, Any]:
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
        "isBase64Encoded": False,
    }


def make_handler(pool: ResolverPool, keys: ApiKeyService, max_body_bytes: int,
                 uploads: LocalUploadReceiver | None = None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "engram"

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def log_message(self, fmt: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def _handle(self) -> None:
            path = urlsplit(self.path).path
            if path == "/health":
                return self._send(200, {"Content-Type": "application/json"},
                                  json.dumps({"status": "ok"}))
            if path == UPLOAD_PATH and uploads is not None:
                return self._upload()
            try:
                body = self._read_body()
                tenant = None
                if path.startswith((PREFIX, EVEROS_PREFIX)) and not path.startswith(PUBLIC_PATHS):
                    tenant = keys.tenant_for_header(self.headers.get("Authorization"))
            except EngramError as error:
                return self._send_error(error.status_code, error.message)
            headers = {k: v for k, v in self.headers.items()}
            event = proxy_event(self.command, self.path, headers, body, tenant,
                                self.client_address[0])
            response = pool.resolve(event)
            out_headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
            out_headers.update(response.get("headers") or {})
            self._send(response["statusCode"], out_headers, response.get("body") or "")

        def _upload(self) -> None:
            """A signed form's file: no API key (the policy's signature is the grant)."""
            if self.command != "POST":
                return self._send(405, {"Content-Type": "application/xml", "Allow": "POST"},
                                  UploadRefused(405, "MethodNotAllowed",
                                                "uploads are POSTed").xml())
            length = self.headers.get("Content-Length")
            try:
                key = uploads.receive(self.headers.get("Content-Type", ""),
                                      int(length) if length and length.isdigit() else None,
                                      self.rfile)
            except UploadRefused as refused:
                if not refused.body_read:  # the client may still be sending: hang up after
                    self.close_connection = True
                log.info("upload refused: %s", refused)
                return self._send(refused.status, {"Content-Type": "application/xml"},
                                  refused.xml())
            log.info("uploaded %s", key)
            self._send(204, {}, "")

        def _read_body(self) -> str | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > max_body_bytes:
                self.close_connection = True
                raise PayloadTooLarge(
                    f"request body is {length} bytes; the limit is {max_body_bytes}")
            if not length:
                return None
            raw = self.rfile.read(length)
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("request body is not UTF-8") from None

        def _send_error(self, status: int, message: str) -> None:
            self._send(status, {"Content-Type": "application/json"},
                       ErrorEnvelope(code=status, message=message).model_dump_json())

        def _send(self, status: int, headers: dict[str, str], body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            if status != 204:  # a 204 has no body and no Content-Length
                self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

    return Handler


class EngramHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(host: str, port: int, pool: ResolverPool, keys: ApiKeyService,
                max_body_bytes: int, uploads: LocalUploadReceiver | None = None
                ) -> EngramHTTPServer:
    return EngramHTTPServer((host, port), make_handler(pool, keys, max_body_bytes, uploads))
