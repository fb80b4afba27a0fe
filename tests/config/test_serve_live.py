"""config/serve.py's connection bounds on a real uvicorn process (`python -m config.serve`):
a slow request head gets 408, an oversized one 431, an idle keep-alive connection is closed,
and past KEYGATE_LIMIT_CONCURRENCY a request gets 503 at once (issue #10, finding 10)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import KeygateServer

pytestmark = pytest.mark.live

BOUNDS = {
    "KEYGATE_HEADER_TIMEOUT": "0.5",
    "KEYGATE_KEEPALIVE_TIMEOUT": "1",
    "KEYGATE_MAX_HEADER_BYTES": "4096",
    "KEYGATE_LIMIT_CONCURRENCY": "4",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # KeygateServer starts `python -m config.serve`, the entry point under test.
    env = {**BOUNDS, "LOG_LEVEL": "info"}
    with KeygateServer(tmp_path_factory.mktemp("serve"), env=env) as server:
        yield server.url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_request_head_that_arrives_too_slowly_gets_408_and_is_closed(served: str) -> None:
    with contextlib.closing(_connect(served)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its head
        started = time.monotonic()
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3


def test_a_connection_that_sends_nothing_is_closed(served: str) -> None:
    with contextlib.closing(_connect(served)) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""
    assert time.monotonic() - started < 3


def test_a_slow_head_on_a_kept_alive_connection_gets_408(served: str) -> None:
    with contextlib.closing(_connect(served)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status": "ok"}'):
            first += sock.recv(65536)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the second request never finishes its head
        rest = _read_all(sock)
    assert first.startswith(b"HTTP/1.1 200 ") and rest.startswith(b"HTTP/1.1 408 ")


def test_a_head_begun_on_a_kept_alive_connection_gets_its_whole_timeout(served: str) -> None:
    # The connection's timer was set when it opened; a head begun 0.3 s later still gets the full
    # 0.5 s from its own first byte, not what was left of the connection's.
    with contextlib.closing(_connect(served)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status": "ok"}'):
            first += sock.recv(65536)
        time.sleep(0.3)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        begun = time.monotonic()
        rest = _read_all(sock)
        waited = time.monotonic() - begun
    assert rest.startswith(b"HTTP/1.1 408 ")
    assert waited >= 0.45


def test_an_oversized_request_head_gets_431(served: str) -> None:
    with contextlib.closing(_connect(served)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 431 ")


def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(served: str) -> None:
    with contextlib.closing(_connect(served)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        answer = _read_all(sock)  # returns when the server closes the connection
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1
    assert time.monotonic() - started < 3


def test_past_the_concurrency_limit_a_request_gets_503_at_once(served: str) -> None:
    held = [_connect(served) for _ in range(4)]
    try:
        time.sleep(0.1)  # let the server accept them (no response is awaited from these)
        started = time.monotonic()
        response = httpx.get(served + "/healthz", timeout=5)
        assert response.status_code == 503
        assert time.monotonic() - started < 1
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, requests are served again.
    deadline = time.monotonic() + 3
    while httpx.get(served + "/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_each_response_arrives_whole_in_one_segment(served: str) -> None:
    # The head and the body go out in one write (config/serve.py, _ResponseWriter), so the first
    # read of each answer on a kept-alive connection holds all of it. Written apart, as uvicorn
    # does, a reader woken by the head would often see the head alone.
    with contextlib.closing(_connect(served)) as sock:
        for _ in range(20):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status": "ok"}')
