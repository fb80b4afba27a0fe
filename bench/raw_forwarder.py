"""The floor for any Python hop: a raw-ASGI app that forwards each request to one upstream.

No framework, no auth, no parsing: read the body, send it upstream through one shared
aiohttp session (pooled keep-alive connections), answer with the upstream's status and
body. ``text/event-stream`` answers are passed through chunk by chunk as they arrive.
Whatever Keygate costs above this is the price of Django + its own work.

    UPSTREAM=http://127.0.0.1:18080 uvicorn bench.raw_forwarder:app \\
        --host 127.0.0.1 --port 18090 --loop uvloop --http httptools --no-access-log
"""

import asyncio
import os

import aiohttp

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:18080").rstrip("/")
_session: aiohttp.ClientSession | None = None


def _new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60),
        auto_decompress=False,
    )


async def _lifespan(receive, send) -> None:
    global _session
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _session = _new_session()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send) -> None:
    global _session
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "http":
        return
    if _session is None:  # served without lifespan events
        _session = _new_session()
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    url = UPSTREAM + scope["path"]
    headers = {"Content-Type": "application/json"}
    async with _session.request(scope["method"], url, data=body, headers=headers) as upstream:
        content_type = upstream.headers.get("Content-Type", "application/json").encode()
        if content_type.startswith(b"text/event-stream"):
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status,
                    "headers": [(b"content-type", content_type), (b"cache-control", b"no-cache")],
                }
            )
            # Stop reading upstream as soon as our client hangs up (closes the upstream request).
            pump = asyncio.ensure_future(_pump(upstream, send))
            watch = asyncio.ensure_future(_disconnected(receive))
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
            for task in (pump, watch):
                task.cancel()
        else:
            data = await upstream.read()
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(data)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": data})


async def _pump(upstream: aiohttp.ClientResponse, send) -> None:
    async for chunk in upstream.content.iter_any():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
