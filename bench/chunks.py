"""Keygate's own CPU per streamed chunk on the pass-through path (issue #16), without a network.

    .venv/bin/python bench/chunks.py [--chunks 2000] [--rounds 15]
    .venv/bin/python /path/to/other-tree/bench/chunks.py     # the same figure for another tree

A real LLM answer streams hundreds of chunks, so what the relay does per chunk outweighs its
per-request work on long answers. This drives ``gateway.relay._relay_events`` with the
``SSETap`` (the pass-through relay loop: usage watch, final-event check, one ASGI send per
chunk) over prebuilt chunks of an OpenAI and an Anthropic stream, into a send that does
nothing, and prints the loop-thread CPU per chunk (median of the rounds). Reading the upstream
(aiohttp, the idle-timeout deadline) is not included: see ``bench/run.py``'s streaming figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STREAMS = {
    "OpenAI chat chunk": (
        b'data: {"id":"chatcmpl-abc123","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",'
        b'"system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,'
        b'"finish_reason":null}]}\n\n',
        b"data: [DONE]\n\n",
    ),
    "Anthropic delta event": (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":" word"}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ),
}


async def per_chunk(chunk: bytes, last: bytes, count: int) -> float:
    from gateway import relay
    from gateway.dialects import Dialect
    from gateway.http import GatewayRequest
    from gateway.sse import SSETap

    async def chunks():
        for _ in range(count):
            yield chunk
        yield last

    async def send(message: dict) -> None:
        pass

    request = GatewayRequest(
        scope={},
        method="POST",
        path="/",
        headers={},
        client_ip=None,
        request_id="r",
        dialect=Dialect.OPENAI,
        endpoint="",
    )
    tap = SSETap()
    started = time.thread_time_ns()
    await relay._relay_events(request, 200, chunks(), send, relay.Outcome(), tap.feed, tap.flush, tap, [])
    return (time.thread_time_ns() - started) / 1000 / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "true"})
    os.environ.setdefault("KEYGATE_ENV_FILE", os.devnull)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    print(f"{ROOT}: the pass-through relay loop, loop-thread CPU per chunk (median of {args.rounds} × {args.chunks})")
    for name, (chunk, last) in STREAMS.items():
        figures = [asyncio.run(per_chunk(chunk, last, args.chunks)) for _ in range(args.rounds)]
        print(f"  {name:22s} {statistics.median(figures):5.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
