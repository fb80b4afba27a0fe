"""Helpers for the hardening suite: raw HTTP (what clients would normalise away), signing in to a
live server, reading its log, and finding secrets in text."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any

import httpx

from keys import crypto

# A Keygate key of the default prefix anywhere in a text; a match is a leak only if its checksum holds.
KEY_RE = re.compile(r"sk-kg-[0-9A-Za-z]{50}")
# Signs that the server failed rather than refused.
FAILURE_MARKERS = ("Traceback (most recent call last)", "Exception in ASGI application", "internal error")


@dataclass(frozen=True)
class RawResponse:
    """What came back on a raw socket: the status (None if the server closed without answering)."""

    status: int | None
    head: bytes
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None


def raw_request(port: int, data: bytes, *, timeout: float = 10.0, source: str | None = None) -> RawResponse:
    """Send ``data`` as is on a new connection and read until the server closes it."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    ) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse before reading everything; what it answered still counts
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    response = RawResponse(int(match.group(1)) if match else None, head, body)
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        response = RawResponse(response.status, head, _dechunk(body))
    return response


def _dechunk(data: bytes) -> bytes:
    out, position = b"", 0
    while True:
        end = data.find(b"\r\n", position)
        if end < 0:
            return out
        size = int(data[position:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return out
        out += data[end + 2 : end + 2 + size]
        position = end + 2 + size + 2


def http_request(
    method: bytes,
    path: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    content_length: bool = True,
) -> bytes:
    """An HTTP/1.1 request, byte for byte, with ``Connection: close``."""
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    if content_length and (body or method in (b"POST", b"PUT", b"PATCH")):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def log_since(log: str, offset: int) -> str:
    return log[offset:]


def failures_in(log: str) -> list[str]:
    """Lines of ``log`` that show the server failing (a stack trace, an unexpected error)."""
    return [line for line in log.splitlines() if any(marker in line for marker in FAILURE_MARKERS)]


def leaked_keys(text: str, prefix: str = "sk-kg") -> list[str]:
    """Every well-formed Keygate key (checksum included) in ``text``."""
    return [match for match in KEY_RE.findall(text) if crypto.parse_key(match, prefix) is not None]


def secret_windows(key: str, width: int = 8) -> list[str]:
    """Every ``width``-character window of the key's secret part (what must never be stored or shown)."""
    secret = key[len("sk-kg-") + crypto.PUBLIC_ID_LENGTH :][: crypto.SECRET_LENGTH]
    return [secret[i : i + width] for i in range(len(secret) - width + 1)]


def sign_in(base_url: str, username: str, password: str, *, path: str = "/accounts/login/") -> httpx.Client:
    """An httpx client holding a signed-in session on a live server (dashboard or admin sign-in)."""
    client = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
    page = client.get(path)
    token = csrf_token(page.text)
    response = client.post(
        path,
        data={"username": username, "password": password, "csrfmiddlewaretoken": token, "next": "/"},
        headers={"Referer": base_url + path},
    )
    assert response.status_code == 302, f"sign-in as {username} failed: {response.status_code}"
    return client


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_post(client: httpx.Client, path: str, data: dict[str, Any], *, page: str | None = None) -> httpx.Response:
    """POST a form the way a browser would: the CSRF token from the form's page, a same-origin Referer."""
    html = client.get(page or path).text
    token = csrf_token(html)
    return client.post(
        path, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": str(client.base_url) + path}
    )
