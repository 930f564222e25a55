"""SafeFetcher against a real HTTP(S) server on 127.0.0.1: allowed by the allow-list,
refused without it; redirects, size and time caps, pinned addresses with Host and SNI.
Every connection is checked to go to the loopback address and nowhere else."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
import time

import pytest
from tests import fixtures_docs as docs

from engram.adapters.url_fetcher import FetchFailed, FetchRefused, SafeFetcher
from engram.services.url_policy import SsrfPolicy

PNG = docs.text_png(["Order 4711"])
BIG = b"x" * (2 * 2**20)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path
        if path == "/image.png":
            self.send(200, PNG, {"Content-Type": "image/png"})
        elif path == "/download?id=7":
            self.send(200, b"%PDF-1.4", {"Content-Disposition": 'attachment; filename="r.pdf"'})
        elif path == "/host":
            self.send(200, self.headers["Host"].encode())
        elif path == "/big":
            self.send(200, BIG)
        elif path == "/big-unannounced":  # no Content-Length: read until the cap, then stop
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(64):
                    chunk = b"y" * 65536
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the fetcher hung up once over its cap
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"z")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        elif path.startswith("/to/"):
            self.send(302, headers={"Location": path[len("/to/"):].replace("!", "://", 1)})
        elif path == "/loop":
            self.send(302, headers={"Location": "/loop"})
        else:
            self.send(404, b"nope")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] in ("127.0.0.1", "::1"), f"connection to {address} attempted"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


def serve(tls: ssl.SSLContext | None = None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def origin():
    server = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def allowed(**kwargs) -> SafeFetcher:
    return SafeFetcher(SsrfPolicy(["127.0.0.1"]), **kwargs)


def test_allow_listed_loopback_host_is_fetched(origin):
    content = allowed().fetch(f"{origin}/image.png")

    assert content.data == PNG and content.content_type == "image/png"
    assert content.name == "image.png" and content.url == f"{origin}/image.png"


def test_the_same_url_without_the_allow_list_is_refused(origin):
    with pytest.raises(FetchRefused, match="^refused: 127.0.0.1 is a loopback address$"):
        SafeFetcher(SsrfPolicy()).fetch(f"{origin}/image.png")


def test_allow_list_entry_with_a_port_matches_only_that_port(origin):
    port = int(origin.rsplit(":", 1)[1])
    assert SafeFetcher(SsrfPolicy([f"127.0.0.1:{port}"])).fetch(f"{origin}/host").data
    with pytest.raises(FetchRefused):
        SafeFetcher(SsrfPolicy([f"127.0.0.1:{port + 1}"])).fetch(f"{origin}/host")


def test_file_name_from_content_disposition(origin):
    assert allowed().fetch(f"{origin}/download?id=7").name == "r.pdf"


def test_redirects_are_followed_and_each_hop_is_checked(origin):
    assert allowed().fetch(f"{origin}/to//image.png").data == PNG
    with pytest.raises(FetchRefused, match="^refused: 10.1.2.3 is a private address$"):
        allowed().fetch(f"{origin}/to/http!10.1.2.3/internal")
    with pytest.raises(FetchRefused, match="^refused: 169.254.169.254 is a cloud metadata"):
        allowed().fetch(f"{origin}/to/http!169.254.169.254/latest/meta-data/")
    with pytest.raises(FetchRefused, match="only http and https"):
        allowed().fetch(f"{origin}/to/file!/etc/passwd")
    with pytest.raises(FetchFailed, match=r"^too many redirects \(the limit is 5\)$"):
        allowed().fetch(f"{origin}/loop")


def test_http_errors_are_failures(origin):
    with pytest.raises(FetchFailed, match="^HTTP 404 Not Found from 127.0.0.1$"):
        allowed().fetch(f"{origin}/missing")


def test_size_cap_announced_and_unannounced(origin):
    with pytest.raises(FetchRefused, match="^refused: the response is 2 MB; the limit is 1 MB$"):
        allowed(max_bytes=2**20).fetch(f"{origin}/big")
    with pytest.raises(FetchRefused, match="^refused: the response is over the limit of 1 MB$"):
        allowed(max_bytes=2**20).fetch(f"{origin}/big-unannounced")
    assert len(allowed().fetch(f"{origin}/big-unannounced").data) == 64 * 65536


def test_total_time_is_capped_even_while_bytes_trickle_in(origin):
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="^timed out: the fetch took longer than 1 s$"):
        allowed(timeout_s=1.0).fetch(f"{origin}/slow")
    assert time.monotonic() - started < 2.5


def test_connects_to_the_checked_address_with_the_urls_host_header(origin):
    port = origin.rsplit(":", 1)[1]
    resolved = []

    def resolve(host, port_):
        resolved.append(host)
        return ["127.0.0.1"]

    fetcher = SafeFetcher(SsrfPolicy(["files.test"]), resolve=resolve)
    content = fetcher.fetch(f"http://files.test:{port}/host")

    assert content.data == f"files.test:{port}".encode()  # no real DNS knows files.test
    assert resolved == ["files.test"]  # resolved once, by the fetcher, and pinned


# --- HTTPS: SNI and the certificate check use the URL's host, the socket the pinned IP ---

def certificate_authority():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, issuer, public_key, signing_key, *, ca, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = cert("Test CA", "Test CA", ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = cert("files.test", "Test CA", key.public_key(), ca_key, ca=False, san="files.test")
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return ca_cert.public_bytes(pem), leaf.public_bytes(pem) + key_pem


@pytest.fixture(scope="module")
def https_origin(tmp_path_factory):
    ca_pem, leaf_pem = certificate_authority()
    leaf_file = tmp_path_factory.mktemp("tls") / "leaf.pem"
    leaf_file.write_bytes(leaf_pem)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(leaf_file)
    server = serve(server_tls)
    client_tls = ssl.create_default_context(cadata=ca_pem.decode())
    yield server.server_address[1], client_tls
    server.shutdown()
    server.server_close()


def test_https_to_a_pinned_address_verifies_the_urls_host(https_origin):
    port, client_tls = https_origin
    fetcher = SafeFetcher(SsrfPolicy(["files.test", "other.test"]), tls_context=client_tls,
                          resolve=lambda host, port_: ["127.0.0.1"])

    assert fetcher.fetch(f"https://files.test:{port}/host").data == f"files.test:{port}".encode()
    with pytest.raises(FetchFailed, match="^TLS with other.test failed: .*certificate verify"):
        fetcher.fetch(f"https://other.test:{port}/host")  # the certificate names files.test
