"""ASGI entry point: `uvicorn config.asgi:application`.

Requests under /v1/ go straight to the gateway's ASGI app (the proxy hot path: no Django
middleware, no per-request thread hops); everything else (dashboard, admin, REST API) goes to
Django's ASGI handler. Lifespan events start and stop the gateway's per-process resources
(upstream connection pool, usage writer) so a clean shutdown flushes usage.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _load_gateway() -> Any:
    try:
        from gateway.asgi import GatewayApp
    except ImportError:
        return None
    return GatewayApp()


gateway_application = _load_gateway()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                if gateway_application is not None:
                    await gateway_application.startup()
            except Exception as error:  # report and refuse to start rather than serve half-configured
                await send({"type": "lifespan.startup.failed", "message": str(error)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if gateway_application is not None:
                await gateway_application.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "http" and gateway_application is not None and scope["path"].startswith("/v1/"):
        await gateway_application(scope, receive, send)
    elif kind == "http" and scope["path"] == "/metrics":
        from gateway.metrics import serve

        await serve(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
    else:
        await django_application(scope, receive, send)
