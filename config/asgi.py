"""ASGI entry point: `uvicorn config.asgi:application`.

Requests under /v1/ go straight to the gateway's ASGI app (the proxy hot path: no Django
middleware, no per-request thread hops); everything else (dashboard, admin, REST API) goes to
Django's ASGI handler. Lifespan events start and stop the gateway's per-process resources
(upstream connection pool, usage writer) so a clean shutdown flushes usage.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# Imported unguarded: a gateway that fails to import stops start-up loudly; it never turns
# every /v1/ request into one of Django's 404 pages.
from gateway.asgi import GatewayApp  # noqa: E402
from gateway.views import MISSING_V1, gateway_path  # noqa: E402
from gateway.wire import Response  # noqa: E402

gateway_application = GatewayApp()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await gateway_application.startup()
            except Exception as error:  # report and refuse to start rather than serve half-configured
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            _freeze_start_up_heap()
            _collect_less_often()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await gateway_application.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _freeze_start_up_heap() -> None:
    """Move everything built so far out of the cyclic garbage collector's reach.

    Django's apps, URL conf, templates, the routing table: start-up objects that live as long as
    the process. The collector runs every few hundred allocations, and every full collection
    walked all of them again (~40 ms each on this heap: the p99 of a saturated worker). Frozen,
    they are never scanned; what requests allocate is collected as before (issue #16:
    +12 % throughput, p99 39 → 9 ms, ``bench/ab.py``).
    """
    gc.collect()
    gc.freeze()


#: Net new container objects between two collections of the youngest generation (Python's
#: default: 700). See _collect_less_often.
YOUNG_COLLECTION_THRESHOLD = 20_000


def _collect_less_often() -> None:
    """Run the cyclic garbage collector after tens of thousands of new objects, not hundreds.

    A busy worker always holds a few thousand young objects: the tasks, coroutines and buffers of
    the requests in flight (the collector's count stayed between ~2,700 and ~5,700 at 64
    concurrent requests). With Python's default of 700 the collector ran every ~14 requests,
    walked all of them and found next to nothing: requests leave almost no cyclic garbage
    (~300 objects collected in a minute of 254,000 requests). That was 18,700 collections a minute
    and ~17 µs of the loop's CPU a request (issue #16, timed with ``gc.callbacks``). With 10,000 a
    saturated worker ran no collection in a minute and its memory grew as with the default;
    20,000 leaves room for more requests in flight. Cyclic garbage is still collected, later, and
    one collection walks about that many objects (~0.5 ms for 20,000 small ones).
    """
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http" and (gateway_path(scope["path"]) is not None or scope["path"].rstrip("/") in MISSING_V1):
        # /v1/…, the few /api/v1/ endpoint aliases, and endpoint paths called without /v1 (a
        # JSON 404 naming the base URL to use, never Django's HTML page).
        await gateway_application(scope, receive, send)
    elif kind == "http" and scope["path"] == "/metrics":
        from gateway.metrics import serve

        await serve(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
    elif kind == "http":
        await _django_with_body_cap(scope, receive, send)
    else:
        await django_application(scope, receive, send)


async def _django_with_body_cap(scope: Scope, receive: Receive, send: Send) -> None:
    """Django reads a whole request body (spooling it to disk) before any view, CSRF check or
    authentication runs. Refuse a declared body over ``KEYGATE_MAX_PAGE_BODY_BYTES`` with 413
    before reading it, and cut an undeclared (chunked) one off at the same size."""
    limit = settings.KEYGATE_MAX_PAGE_BODY_BYTES
    for name, value in scope["headers"]:
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            body = b"Request body too large.\n"
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            await Response(413, headers, body).send(send)
            return
    received = 0

    async def capped_receive() -> MutableMapping[str, Any]:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            return {"type": "http.disconnect"}  # Django stops reading and answers nothing
        return message

    await django_application(scope, capped_receive, send)
