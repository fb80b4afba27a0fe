"""Keygate's own CPU per streamed chunk on the pass-through path (issue #16), without a network.

    .venv/bin/python bench/chunks.py [--chunks 2000] [--rounds 15]
    .venv/bin/python /path/to/other-tree/bench/chunks.py     # the same figure for another tree

A real LLM answer streams hundreds of chunks, so what the relay does per chunk outweighs its
per-request work on long answers. This drives ``gateway.relay._relay_events`` with the
``SSETap`` (the pass-through relay loop: usage watch, final-event check, one ASGI send per
chunk) over prebuilt chunks of an OpenAI and an Anthropic stream, into a send that does
nothing, and prints the loop-thread CPU per chunk (median of the rounds). The chunks come
through the reply's own read loop (``_HTTPReply.chunks``: the upstream's idle limit, the async
generator) from a stand-in for aiohttp's stream reader that has each chunk ready: aiohttp's
read and the network are not included (``bench/run.py``'s streaming CPU has them).
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


class _Ready:
    """What ``_HTTPReply`` uses of an aiohttp response, with every chunk already received."""

    status, headers = 200, {"content-type": "text/event-stream"}

    def __init__(self, chunks: list[bytes]) -> None:
        self.content = self
        self._next = iter(chunks).__next__

    async def readany(self) -> bytes:
        try:
            return self._next()
        except StopIteration:
            return b""

    def release(self) -> None:
        pass


async def per_chunk(chunk: bytes, last: bytes, count: int) -> float:
    from gateway import relay
    from gateway.dialects import Dialect
    from gateway.http import GatewayRequest
    from gateway.providers.base import _HTTPReply
    from gateway.routing import Upstream
    from gateway.sse import SSETap

    upstream = Upstream(1, "bench", "openai", "http://127.0.0.1/v1", None, 10.0, 120.0, 60.0)
    reply = _HTTPReply(_Ready([chunk] * count + [last]), upstream)

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
    await relay._relay_events(request, 200, reply.chunks(), send, relay.Outcome(), tap.feed, tap.flush, tap, [])
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
    print(
        f"{ROOT}: the reply's read loop and the pass-through relay loop, loop-thread CPU per chunk "
        f"(median of {args.rounds} × {args.chunks})"
    )
    for name, (chunk, last) in STREAMS.items():
        figures = [asyncio.run(per_chunk(chunk, last, args.chunks)) for _ in range(args.rounds)]
        print(f"  {name:22s} {statistics.median(figures):5.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
