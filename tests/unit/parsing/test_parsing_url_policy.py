"""The URL policy as the fetcher applies it, and data: URLs, with no network at all:
resolution is a stub, and any connection attempt fails the test."""

from __future__ import annotations

import base64
import ipaddress
import socket

import pytest

from engram.adapters.url_fetcher import FetchFailed, FetchRefused, SafeFetcher
from engram.errors import Unprocessable
from engram.services.url_policy import SsrfPolicy, address_refusal, decode_data_url


@pytest.fixture(autouse=True)
def no_connections(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a refused URL was connected to: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.170.2", "a cloud metadata address"),
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.9", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("240.0.0.1", "a reserved address"),
        ("::ffff:127.0.0.1", "a loopback address (as IPv6 ::ffff:7f00:1)"),
        ("::ffff:169.254.169.254", "a cloud metadata address (as IPv6 ::ffff:a9fe:a9fe)"),
        ("64:ff9b::10.0.0.1", "a private address (as IPv6 64:ff9b::a00:1)"),
        ("2002:a00:1::", "a private address (as IPv6 2002:a00:1::)"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:93.184.216.34", None),
    ],
)
def test_address_policy(address, reason):
    assert address_refusal(ipaddress.ip_address(address)) == reason


def stub_resolver(table: dict[str, list[str]]):
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return table[host]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/",
         "refused: 169.254.169.254 is a cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/", "refused: fd00:ec2::254 is a cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/",
         "refused: metadata.google.internal is a cloud metadata host"),
        ("http://10.0.0.7:8080/admin", "refused: 10.0.0.7 is a private address"),
        ("https://127.0.0.1/", "refused: 127.0.0.1 is a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "refused: ::ffff:a00:1 is a private address (as IPv6"),
        ("http://intranet.example/", "refused: intranet.example resolves to 10.9.8.7, which is "
                                     "a private address"),
        ("http://mixed.example/", "refused: mixed.example resolves to 192.168.0.2, which is a "
                                  "private address"),
        ("ftp://files.example/x", "refused: only http and https URLs are fetched, not ftp"),
        ("file:///etc/passwd", "refused: only http and https URLs are fetched, not file"),
        ("http://user:pw@files.example/", "refused: URLs with credentials in them"),
        ("http:///nohost", "refused: the URL names no host"),
        ("http://files.example:99999/", "refused: not a valid URL"),
    ],
)
def test_refusals_happen_before_any_connection(url, message):
    fetcher = SafeFetcher(SsrfPolicy(), resolve=stub_resolver({
        "intranet.example": ["10.9.8.7"],
        "mixed.example": ["93.184.216.34", "192.168.0.2"],  # one bad address is enough
        "files.example": ["93.184.216.34"],
    }))
    with pytest.raises(FetchRefused) as refused:
        fetcher.fetch(url)
    assert str(refused.value).startswith(message)


def test_allow_list_lets_a_named_private_host_through_but_never_metadata():
    fetcher = SafeFetcher(
        SsrfPolicy(["intranet.example", "10.0.0.7:8080", "169.254.169.254"]),
        resolve=stub_resolver({"intranet.example": ["10.9.8.7"]}),
    )
    # allowed: they get as far as connecting (which this test forbids)
    for url in ("http://intranet.example/a", "http://10.0.0.7:8080/a"):
        with pytest.raises(AssertionError, match="was connected to"):
            fetcher.fetch(url)
    with pytest.raises(FetchRefused, match="10.0.0.7 is a private address"):
        fetcher.fetch("http://10.0.0.7:9090/")  # same host, another port: not on the list
    with pytest.raises(FetchRefused, match="cloud metadata"):
        fetcher.fetch("http://169.254.169.254/")


def test_resolution_failure_is_a_failed_fetch():
    def broken(host, port):
        raise socket.gaierror(-2, "Name or service not known")

    with pytest.raises(FetchFailed, match="could not resolve nowhere.invalid"):
        SafeFetcher(SsrfPolicy(), resolve=broken).fetch("http://nowhere.invalid/")


# --- data: URLs (decoded when the add arrives, never fetched) ------------------------------

def test_data_url_base64_image():
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    url = "data:image/png;base64," + base64.b64encode(png).decode()

    assert decode_data_url(url, "x") == (png, "image/png")


def test_the_fetcher_takes_no_data_urls():
    with pytest.raises(FetchRefused, match="only http and https URLs are fetched, not data"):
        SafeFetcher(SsrfPolicy()).fetch("data:,Hello%2C%20World")


def test_malformed_data_urls():
    with pytest.raises(Unprocessable, match="must be data:<type>;base64,<content>"):
        decode_data_url("data:image/png;base64", "x")
    with pytest.raises(Unprocessable, match="must be data:<type>;base64,<content>"):
        decode_data_url("data:,Hello%2C%20World", "x")
    with pytest.raises(Unprocessable, match="is not base64"):
        decode_data_url("data:image/png;base64,@@@@", "x")


# --- one policy, at accept time and at fetch time ----------------------------------------

def test_metadata_inside_ipv6_is_refused_even_for_an_allow_listed_name():
    fetcher = SafeFetcher(SsrfPolicy(["files.example", "::ffff:169.254.169.254"]),
                          resolve=stub_resolver({"files.example": ["::ffff:169.254.169.254"]}))
    with pytest.raises(FetchRefused, match="^refused: files.example resolves to .* metadata"):
        fetcher.fetch("http://files.example/")
    with pytest.raises(FetchRefused, match="cloud metadata address"):
        fetcher.fetch("http://[::ffff:169.254.169.254]/")


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:8080/a.png", "is refused: 127.0.0.1 is a loopback address (ENGRAM_FETCH_"
                                    "ALLOW_HOSTS names hosts that may be fetched anyway)"),
    ("http://localhost/a.png", "is refused: localhost is the local machine (ENGRAM_FETCH_"),
    ("http://169.254.169.254/", "is refused: 169.254.169.254 is a cloud metadata address"),
    ("http://user:pw@files.example/", "is refused: URLs with credentials in them"),
    ("https://files.example/a.png", None),
])
def test_an_add_is_told_the_same_reasons(url, message):
    refusal = SsrfPolicy().accept_refusal(url)
    assert refusal == message if message is None else refusal.startswith(message), refusal
    if message and "metadata" in message:
        assert "ENGRAM_FETCH_ALLOW_HOSTS" not in refusal  # the allow-list cannot help there
