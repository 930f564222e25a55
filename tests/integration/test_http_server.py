"""`engram serve`'s HTTP layer over raw sockets: framing it must refuse (bad or negative
Content-Length, a body that stops arriving, a bad chunk), what it must accept (chunked
bodies, keep-alive, every method passed to the resolver, HEAD without a body), many
clients at once on a small worker pool, body caps answered before the body is read, and a
SIGTERM that answers the request in flight before the process exits."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from tests.conftest import API_KEY, EngramServer, server_env

pytestmark = pytest.mark.slow

TIMEOUT_S = 2  # ENGRAM_HTTP_TIMEOUT_SECONDS of this module's server
THREADS = 3  # ENGRAM_HTTP_THREADS: fewer workers than the clients below


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> EngramServer:
    engram = EngramServer(data_dir=tmp_path_factory.mktemp("http") / "data", env=server_env(
        ENGRAM_HTTP_TIMEOUT_SECONDS=str(TIMEOUT_S), ENGRAM_HTTP_THREADS=str(THREADS)))
    engram.start()
    yield engram
    engram.stop()


class Raw:
    """One TCP connection, bytes in and out, and a small HTTP/1.1 response reader."""

    def __init__(self, server: EngramServer, timeout: float = 10):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise ConnectionError(f"closed before a response: {self.buffer!r}")
        raw, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:])}
        length = 0 if head else int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            if not self._fill():
                break
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self) -> bool:
        """True when the server has closed its side (EOF, nothing more to read)."""
        try:
            return not self._fill()
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def request(method: str, path: str, body: bytes = b"", headers: dict | None = None,
            length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
             f"Authorization: Token {API_KEY}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def envelope(body: bytes) -> dict:
    data = json.loads(body)
    assert set(data) == {"code", "message", "data"}, data
    return data


SEARCH = json.dumps({"user_id": "http-u", "query": "tea"}).encode()


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "10, 20"])
def test_a_content_length_that_is_not_a_count_is_400_then_closed(server, value):
    conn = Raw(server)
    conn.send(request("POST", "/v1/search/memory", SEARCH, {"Content-Length": value},
                      length=False))
    status, headers, body = conn.response()
    assert status == 400 and headers["content-type"] == "application/json"
    assert "Content-Length" in envelope(body)["message"]
    assert conn.closed()


def test_a_body_shorter_than_its_content_length_is_408_within_the_timeout(server):
    conn = Raw(server, timeout=TIMEOUT_S + 10)
    started = time.monotonic()
    conn.send(request("POST", "/v1/search/memory", headers={"Content-Length": "100"},
                      length=False) + b'{"user_id":')
    status, _, body = conn.response()
    waited = time.monotonic() - started
    assert status == 408, body
    assert "11 of 100 bytes" in envelope(body)["message"]
    assert TIMEOUT_S - 0.5 <= waited <= TIMEOUT_S + 3
    assert conn.closed()


def test_a_stalled_request_line_is_closed_within_the_timeout(server):
    conn = Raw(server, timeout=TIMEOUT_S + 10)
    started = time.monotonic()
    conn.send(b"POST /v1/search/memory HTTP/1.1\r\nHost: x\r\n")  # headers never end
    assert conn.closed()
    assert time.monotonic() - started <= TIMEOUT_S + 3


def chunked(body: bytes, size: int) -> bytes:
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_a_chunked_json_body_reaches_the_resolver(server):
    add = json.dumps({"user_id": "chunked-u", "conversation_id": "c", "async_mode": False,
                      "messages": [{"role": "user", "content": "I keep bees on my roof"}]})
    conn = Raw(server)
    conn.send(request("POST", "/v1/add/message", headers={"Transfer-Encoding": "chunked"},
                      length=False) + chunked(add.encode(), 7))
    status, _, body = conn.response()
    assert status == 200 and envelope(body)["data"]["status"] == "completed", body
    messages = server.post("get/message", {"user_id": "chunked-u", "conversation_id": "c"})
    assert [m["content"] for m in messages.json()["data"]["message_detail_list"]] == [
        "I keep bees on my roof"]


def test_a_malformed_chunk_is_400(server):
    conn = Raw(server)
    conn.send(request("POST", "/v1/search/memory", headers={"Transfer-Encoding": "chunked"},
                      length=False) + b"zz\r\n{}\r\n0\r\n\r\n")
    status, _, body = conn.response()
    assert status == 400 and "chunk" in envelope(body)["message"]


def test_two_requests_share_one_keep_alive_connection(server):
    conn = Raw(server)
    for _ in range(2):
        conn.send(request("POST", "/v1/search/memory", SEARCH))
        status, headers, body = conn.response()
        assert status == 200 and envelope(body)["code"] == 0
        assert headers.get("connection", "").lower() != "close"
    conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.response()[0] == 200


@pytest.mark.parametrize("method", ["PATCH", "OPTIONS", "TRACE", "PUT", "DELETE"])
def test_every_method_is_answered_by_the_resolver_in_json(server, method):
    conn = Raw(server)
    conn.send(request(method, "/v1/search/memory", SEARCH if method != "TRACE" else b""))
    status, headers, body = conn.response()
    assert 400 <= status < 500 and status != 501, (status, body)
    assert headers["content-type"] == "application/json"
    assert envelope(body)["code"] == status


def test_head_sends_headers_only_and_keeps_the_connection(server):
    conn = Raw(server)
    for path in ("/health", "/v1/search/memory"):
        conn.send(request("HEAD", path))
        status, headers, _ = conn.response(head=True)
        assert status != 501 and int(headers["content-length"]) > 0
    # Had a body followed, these bytes would not start a new response.
    conn.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = conn.response()
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_health_allows_get_and_head_only(server):
    response = requests.post(f"{server.root_url}/health", timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
    assert response.json()["code"] == 405


def test_many_clients_on_a_small_pool_are_all_answered_while_slow_ones_wait(server):
    # Ten connections that never finish their request hold no worker.
    stalled = [Raw(server) for _ in range(10)]
    for conn in stalled:
        conn.send(request("POST", "/v1/search/memory", headers={"Content-Length": "50"},
                          length=False) + b"{")

    def client(n: int) -> list[int]:
        with requests.Session() as s:
            return [s.post(f"{server.base_url}/search/memory", timeout=30,
                           headers=server.headers(),
                           json={"user_id": f"many-{n}", "query": "tea"}).status_code
                    for _ in range(5)]

    with ThreadPoolExecutor(32) as pool:
        statuses = [s for batch in pool.map(client, range(32)) for s in batch]
    assert statuses == [200] * 160
    for conn in stalled:
        conn.close()


def test_an_api_body_over_the_cap_is_413_before_the_body_is_sent(server):
    conn = Raw(server)
    conn.send(request("POST", "/v1/add/message", headers={"Content-Length": "20000000"},
                      length=False))  # and no body: the answer must not wait for it
    status, _, body = conn.response()
    assert status == 413 and "limit is 10485760" in envelope(body)["message"]
    assert conn.closed()


def test_an_upload_over_the_cap_is_refused_with_s3s_xml_before_the_body(server):
    conn = Raw(server)
    conn.send(b"POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 900000000\r\n"
              b"Content-Type: multipart/form-data; boundary=b\r\n"
              b"Expect: 100-continue\r\n\r\n")
    status, headers, body = conn.response()
    assert status == 400 and headers["content-type"] == "application/xml"
    assert b"<Code>EntityTooLarge</Code>" in body
    assert conn.closed()


def test_a_chunked_upload_is_refused_like_s3_before_the_body(server):
    conn = Raw(server)
    conn.send(b"POST /uploads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
    status, headers, body = conn.response()
    assert status == 411 and headers["content-type"] == "application/xml"
    assert b"<Code>MissingContentLength</Code>" in body


def test_sigterm_answers_the_request_in_flight_then_exits(tmp_path):
    engram = EngramServer(data_dir=tmp_path / "data", env=server_env())
    engram.start()
    try:
        turns = [{"role": "user", "content": f"On day {i} I walked {i} km along the river "
                  f"and saw {i} herons near the old mill"} for i in range(300)]
        answered: dict = {}

        def add() -> None:
            response = engram.post("add/message", {"user_id": "term", "conversation_id": "c",
                                                   "async_mode": False, "messages": turns})
            answered.update(status=response.status_code, at=time.monotonic(),
                            data=response.json()["data"])

        sender = threading.Thread(target=add)
        sender.start()
        time.sleep(0.5)
        signalled = time.monotonic()
        engram.process.send_signal(signal.SIGTERM)
        sender.join(60)
        assert answered["status"] == 200 and answered["data"]["status"] == "completed"
        assert answered["at"] > signalled, "the add finished before the signal: make it longer"
        assert engram.process.wait(timeout=30) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{engram.root_url}/health", timeout=5)
    finally:
        engram.stop()
