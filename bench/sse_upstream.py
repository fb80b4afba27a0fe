"""A small, fast OpenAI-shaped streaming upstream for bench/ (aiohttp on uvloop).

``POST /v1/chat/completions`` with ``"stream": true`` answers ``text/event-stream``:
one role frame, ``chunks`` content frames ``delay_ms`` apart, a ``finish_reason`` frame,
a usage frame (``choices: []``, as OpenAI sends for ``stream_options.include_usage``) and
``data: [DONE]``. Without ``"stream": true`` it answers a fixed ``chat.completion`` JSON.

Every frame carries its send time as ``"system_fingerprint": "t<unix ns>"`` so a client on
the same machine can tell how long each chunk took to reach it through a proxy (buffering
shows up as a lag that grows with the chunk's index).

Stream shape, first match wins (so it can be set through proxies that drop one channel):
  query string   ?chunks=20&delay_ms=10&first_ms=0
  headers        x-bench-chunks, x-bench-delay-ms, x-bench-first-ms
  body           {"metadata": {"bench_chunks": "20", "bench_delay_ms": "10", "bench_first_ms": "0"}}
  command line   --chunks, --delay-ms, --first-ms (the defaults)

``GET /stats`` reports streams open / finished / abandoned by the client, so a test can
check that a proxy closes its upstream request when its own client goes away.

    python bench/sse_upstream.py --port 18081 [--chunks 20 --delay-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web

FIXED_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the mock upstream."},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16},
    },
    separators=(",", ":"),
).encode()

_PARAMS = (("chunks", 20), ("delay_ms", 10.0), ("first_ms", 0.0))
_STATS = {"open": 0, "finished": 0, "abandoned": 0, "plain": 0}


def _frame(model: str, created: int, choices: str, usage: str = "") -> bytes:
    # Hand-built JSON: json.dumps per chunk would make the mock, not the proxy, the bottleneck.
    tail = f',"usage":{usage}' if usage else ""
    return (
        f'data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":{created},'
        f'"model":"{model}","system_fingerprint":"t{time.time_ns()}","choices":{choices}{tail}}}\n\n'
    ).encode()


def _stream_params(request: web.Request, payload: dict, defaults: dict) -> dict:
    metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    params = {}
    for name, _ in _PARAMS:
        header = "x-bench-" + name.replace("_", "-")
        raw = request.query.get(name) or request.headers.get(header) or metadata.get("bench_" + name)
        try:
            params[name] = float(raw) if raw is not None else defaults[name]
        except ValueError:
            params[name] = defaults[name]
    params["chunks"] = max(0, int(params["chunks"]))
    return params


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    if not payload.get("stream"):
        _STATS["plain"] += 1
        return web.Response(body=FIXED_COMPLETION, content_type="application/json")

    p = _stream_params(request, payload, request.app["defaults"])
    model = str(payload.get("model") or "gpt-4o").replace('"', "")
    created = int(time.time())
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    _STATS["open"] += 1
    try:
        await response.prepare(request)
        if p["first_ms"] > 0:
            await asyncio.sleep(p["first_ms"] / 1000)
        await response.write(
            _frame(model, created, '[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]')
        )
        for i in range(p["chunks"]):
            if p["delay_ms"] > 0:
                await asyncio.sleep(p["delay_ms"] / 1000)
            await response.write(
                _frame(model, created, f'[{{"index":0,"delta":{{"content":"tok{i} "}},"finish_reason":null}}]')
            )
        await response.write(_frame(model, created, '[{"index":0,"delta":{},"finish_reason":"stop"}]'))
        n = p["chunks"]
        await response.write(
            _frame(model, created, "[]", f'{{"prompt_tokens":9,"completion_tokens":{n},"total_tokens":{9 + n}}}')
        )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        _STATS["finished"] += 1
    except ConnectionResetError:  # the client (or the proxy in front) hung up: expected
        _STATS["abandoned"] += 1
    except asyncio.CancelledError:
        _STATS["abandoned"] += 1
        raise
    finally:
        _STATS["open"] -= 1
    return response


async def stats(request: web.Request) -> web.Response:
    return web.json_response(_STATS)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(chunks: int, delay_ms: float, first_ms: float) -> web.Application:
    app = web.Application()
    app["defaults"] = {"chunks": chunks, "delay_ms": delay_ms, "first_ms": first_ms}
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/stats", stats)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--first-ms", type=float, default=0.0)
    args = parser.parse_args()
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(
        make_app(args.chunks, args.delay_ms, args.first_ms),
        host=args.host,
        port=args.port,
        access_log=None,
        backlog=4096,
        print=None,
        loop=loop,
    )


if __name__ == "__main__":
    main()
