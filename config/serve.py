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


class KeygateHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit for each request head."""

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _head_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        self._head_begun = True
        if self._head_timer is None:
            self._arm_head_timer()  # a request on a kept-alive connection
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        self._head_begun = False
        super().on_headers_complete()

    # --- the bounds ---------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(_head_limits()[0], self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request is being answered: its head arrived
        if self._head_begun:
            self.transport.write(_refusal(b"408 Request Timeout"))
        self.transport.close()

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > _head_limits()[1] and not self.transport.is_closing():
            self._disarm_head_timer()
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
