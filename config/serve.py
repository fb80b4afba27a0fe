"""Serve Keygate with uvicorn: `python -m config.serve` (what `make run` does).

Reads HOST (default 127.0.0.1), PORT (8000) and WORKERS (1) from the environment or `.env`,
and the connection bounds that keep slow or idle clients from holding the server
(SECURITY.md, "Slow clients and connection limits"):

- ``KEYGATE_HEADER_TIMEOUT`` (10 s): a new connection must deliver its request line and headers
  within this time, and a request begun on a kept-alive connection must finish its head within
  this time of its first byte; otherwise it gets ``408 Request Timeout`` and is closed (a new
  connection that sent nothing is just closed). uvicorn itself waits for a request head forever.
- ``KEYGATE_MAX_HEADER_BYTES`` (64 KiB): a request line plus headers larger than this gets
  ``431 Request Header Fields Too Large`` and is closed (uvicorn's httptools has no limit).
- ``KEYGATE_KEEPALIVE_TIMEOUT`` (5 s): an idle keep-alive connection is closed after this.
- ``KEYGATE_LIMIT_CONCURRENCY`` (2000 per worker): past this many open connections or running
  requests, a new request is answered ``503 Service Unavailable`` at once instead of queueing.
  Above the 1,000 concurrent streams one process is built to hold.
"""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path
from typing import Any

import environ
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from config.env import env_bool, env_choice, env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent


@functools.cache
def _head_limits() -> tuple[float, int]:
    """(header timeout, max header bytes), read once per process (each worker reads its own)."""
    return (
        env_float("KEYGATE_HEADER_TIMEOUT", 10.0, minimum=0.1),
        env_int("KEYGATE_MAX_HEADER_BYTES", 64 * 1024, minimum=1024),
    )


def _refusal(status: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _ResponseWriter:
    """What a request's cycle writes through: a response's head leaves with its body, in one
    ``writev``, instead of in two writes (uvicorn writes the head as soon as the app starts the
    response). One system call and one TCP segment fewer a request, for the server and its client.

    The first write after ``hold`` is set (the head, or a ``100 Continue``) is held; the next write
    goes out with it in one ``writelines`` call. If none comes in the same turn of the event loop,
    the head goes out alone at the end of that turn: a streamed answer's head never waits for its
    first chunk. Later writes go straight through. What is held is written before anything later
    and before the connection is closed, so bytes never change order.
    """

    __slots__ = ("_held", "_loop", "_transport", "hold")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self.hold = False

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif self.hold:
            self.hold = False
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class KeygateHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit for each request head.

    One timer per connection, not one per request: a request records when its head began (a
    float), and finishing the head clears it. The timer, when it fires, re-arms itself for a head
    that began later, closes the connection for one still unfinished past its deadline, and
    lapses when no head is pending (the next request arms it again). A busy kept-alive
    connection so pays one timer every ``KEYGATE_HEADER_TIMEOUT`` seconds rather than a timer
    set and cancelled per request (issue #16: ~2 µs a request).

    Each request's responses are written through the connection's :class:`_ResponseWriter`, so a
    head and its body leave together.
    """

    _head_timer: asyncio.TimerHandle | None = None
    _head_since: float | None = None  # when the pending head began (the connection, for its first)
    _head_bytes = 0
    _head_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._writer = _ResponseWriter(transport, self.loop)
        self._head_timeout, self._head_limit = _head_limits()
        self._head_since = self.loop.time()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        self._head_begun = True
        if self._head_since is None:  # a request on a kept-alive connection
            self._head_since = self.loop.time()
        if self._head_timer is None:
            self._arm_head_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self._head_limit:
            self._head_too_large()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._head_limit:
            self._head_too_large()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_since = None
        self._head_begun = False
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # the new request's (not on an upgrade)
            cycle.transport = self._writer  # type: ignore[assignment]
            self._writer.hold = True

    # uvicorn's own writes on the connection go after anything held.

    def send_400_response(self, msg: str) -> None:
        self._writer.flush()
        super().send_400_response(msg)

    def shutdown(self) -> None:
        self._writer.flush()
        super().shutdown()

    # --- the bounds ---------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        assert self._head_since is not None
        self._head_timer = self.loop.call_at(self._head_since + self._head_timeout, self._head_timer_fired)

    def _head_timer_fired(self) -> None:
        self._head_timer = None
        if self._head_since is None or self.transport.is_closing():
            return  # no head pending: the next request arms the timer again
        if self.loop.time() < self._head_since + self._head_timeout:
            self._arm_head_timer()  # a head that began after the timer was set
            return
        self._writer.flush()
        if self._head_begun:
            self.transport.write(_refusal(b"408 Request Timeout"))
        self.transport.close()

    def _head_too_large(self) -> None:
        if not self.transport.is_closing():
            self._head_since = None
            self._writer.flush()
            self.transport.write(_refusal(b"431 Request Header Fields Too Large"))
            self.transport.close()


def server_options() -> dict[str, Any]:
    """uvicorn's keyword arguments, from the environment (read through the strict helpers)."""
    _head_limits()  # a bad value stops start-up here, not at the first connection
    return {
        "host": env_str("HOST", "127.0.0.1"),
        "port": env_int("PORT", 8000, minimum=0),
        "workers": env_int("WORKERS", 1, minimum=1),
        "loop": "uvloop",
        "http": KeygateHttpProtocol,
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": env_bool("PROXY_HEADERS", False),
        "forwarded_allow_ips": env_str("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "timeout_graceful_shutdown": env_int("GRACEFUL_TIMEOUT", 10),
        "timeout_keep_alive": env_int("KEYGATE_KEEPALIVE_TIMEOUT", 5, minimum=1),
        "limit_concurrency": env_int("KEYGATE_LIMIT_CONCURRENCY", 2000, minimum=1),
        "log_level": env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")),
    }


def main() -> None:
    env_file = Path(os.environ.get("KEYGATE_ENV_FILE") or BASE_DIR / ".env")  # as config/settings.py reads it
    if env_file.is_file():
        environ.Env.read_env(env_file, overwrite=False)
    options = server_options()
    workers = options["workers"]
    plural = "s" if workers != 1 else ""
    print(f"Keygate listening on http://{options['host']}:{options['port']} ({workers} worker{plural})", flush=True)
    uvicorn.run("config.asgi:application", **options)


if __name__ == "__main__":
    main()
