"""The built-in demo upstream: answers both protocols offline.

Keygate's quickstart must work without an OpenAI or Anthropic account, so when no
provider is configured this module answers every proxied endpoint with a plausible,
deterministic reply and plausible usage. It is pure: no Django, no I/O besides
``asyncio.sleep`` between streamed events. :class:`DemoProvider` (at the end) makes it an
ordinary provider adapter (:mod:`gateway.providers.base`).

The payloads follow the public wire formats closely enough that the official
``openai`` and ``anthropic`` SDKs parse them, streaming helpers included
(``tests/support/test_upstream.py`` proves it):

- ``chat/completions`` and ``completions``: ``data: {chunk}`` events, an optional
  usage chunk (``stream_options.include_usage``) and ``data: [DONE]``;
- ``responses``: ``event: response.*`` events from ``response.created`` to
  ``response.completed`` (which carries usage);
- ``messages``: ``message_start``, ``content_block_start``, ``ping``,
  ``content_block_delta`` x N, ``content_block_stop``, ``message_delta`` (usage),
  ``message_stop``.

Token counts are an estimate (``len(text) / 4``, at least 1) computed once per
request, so streaming and non-streaming answers report the same usage.

This package's ``__init__`` holds the public functions, the endpoint tables and the
provider; one submodule per concern holds the rest: :mod:`.answers` (what to say, shared
helpers), :mod:`.openai_chat`, :mod:`.openai_embeddings`, :mod:`.openai_images`,
:mod:`.openai_responses`, :mod:`.anthropic_messages` and :mod:`.with_skills` (tool calls
and thinking on top of the plain answers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from gateway.providers.base import Provider, UpstreamReply
from gateway.providers.demo.answers import (
    _answer,
    _anthropic_error,
    _named_event,
    _openai_error,
    _openai_event,
    _split,
    estimate_tokens,
)
from gateway.providers.demo.anthropic_messages import _count_tokens
from gateway.providers.demo.openai_chat import _completion, _stream_completion
from gateway.providers.demo.openai_embeddings import DEFAULT_EMBEDDING_DIMENSIONS, _embeddings
from gateway.providers.demo.openai_images import _images
from gateway.providers.demo.with_skills import (
    _chat_with_skills,
    _message_with_skills,
    _responses_with_skills,
    _stream_chat_with_skills,
    _stream_message_with_skills,
    _stream_responses_with_skills,
)

__all__ = [
    "DEFAULT_EMBEDDING_DIMENSIONS",
    "DEMO_MODELS",
    "ENDPOINTS",
    "PROVIDER",
    "STREAMING_ENDPOINTS",
    "STREAM_DELAY_SECONDS",
    "DemoProvider",
    "estimate_tokens",
    "respond",
    "stream",
    "stream_events",
]

DEMO_MODELS: tuple[str, ...] = (
    "demo-gpt",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1-mini",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "gpt-image-1",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-opus-4-6",
)

#: Every endpoint :func:`respond` answers (paths relative to ``/v1/``).
ENDPOINTS: frozenset[str] = frozenset(
    {
        "chat/completions",
        "completions",
        "embeddings",
        "images/generations",
        "responses",
        "messages",
        "messages/count_tokens",
    }
)

#: The endpoints :func:`stream` answers with a real event stream.
STREAMING_ENDPOINTS: frozenset[str] = frozenset({"chat/completions", "completions", "responses", "messages"})

#: Pause between two streamed events, so streaming is visible in a terminal.
#: Read at each pause: tests may set it to 0.
STREAM_DELAY_SECONDS: float = 0.015


# --------------------------------------------------------------------------- public


def respond(endpoint: str, body: dict) -> tuple[int, dict]:
    """Answer one non-streaming request: ``(http_status, json_body)``.

    ``endpoint`` is a path relative to ``/v1/`` (``"chat/completions"``, ``"messages"``,
    …). Never raises on odd input: a missing or malformed field yields a generic
    but well-formed answer. An unknown endpoint gives ``404`` with an OpenAI-style
    error body.
    """
    body = body if isinstance(body, dict) else {}
    handler = _RESPONDERS.get(endpoint)
    if handler is None:
        return 404, _openai_error(f"Unknown endpoint: /v1/{endpoint}", "invalid_request_error", "not_found")
    return 200, handler(body)


def stream_events(endpoint: str, body: dict, *, pieces: Sequence[str] | None = None) -> list[bytes]:
    """Render the whole event stream for one request, without any pause.

    Each item is one complete SSE event (``b"data: …\\n\\n"`` or
    ``b"event: …\\ndata: …\\n\\n"``). ``pieces`` overrides the reply text, one text
    delta per piece (the test upstream uses it to shape slow streams). An endpoint
    that cannot stream yields a single error event in its dialect.
    """
    body = body if isinstance(body, dict) else {}
    renderer = _STREAMERS.get(endpoint)
    if renderer is None:
        message = f"Streaming is not supported on /v1/{endpoint}"
        if endpoint.startswith("messages"):
            return [_named_event("error", _anthropic_error(message, "invalid_request_error"))]
        return [_openai_event(_openai_error(message, "invalid_request_error", None))]
    answer = _answer(endpoint, body, pieces)
    return renderer(body, answer, list(pieces) if pieces is not None else _split(answer.reply))


async def stream(endpoint: str, body: dict) -> AsyncIterator[bytes]:
    """Answer one streaming request as raw SSE bytes, one event per chunk.

    Events are spaced by :data:`STREAM_DELAY_SECONDS` so the stream is visible.
    """
    for index, event in enumerate(stream_events(endpoint, body)):
        if index and STREAM_DELAY_SECONDS > 0:
            await asyncio.sleep(STREAM_DELAY_SECONDS)
        yield event


_RESPONDERS = {
    "chat/completions": _chat_with_skills,
    "completions": _completion,
    "embeddings": _embeddings,
    "images/generations": _images,
    "responses": _responses_with_skills,
    "messages": _message_with_skills,
    "messages/count_tokens": _count_tokens,
}

_STREAMERS = {
    "chat/completions": _stream_chat_with_skills,
    "completions": _stream_completion,
    "responses": _stream_responses_with_skills,
    "messages": _stream_message_with_skills,
}


# ------------------------------------------------------------------ as a provider


class _DemoReply(UpstreamReply):
    """The demo's answer in the shape of an upstream's."""

    def __init__(
        self, status: int, content_type: str, body: bytes = b"", events: AsyncIterator[bytes] | None = None
    ) -> None:
        self.status = status
        self.headers = {"content-type": content_type}
        self._body = body
        self._events = events

    async def read(self, limit: int) -> bytes:
        return self._body

    def chunks(self) -> AsyncIterator[bytes]:
        assert self._events is not None
        return self._events


class DemoProvider(Provider):
    """The built-in demo as an ordinary provider: it speaks every endpoint, in process."""

    kind = "demo"
    endpoints = ENDPOINTS

    def default_models(self) -> tuple[str, ...]:
        return DEMO_MODELS

    async def open(
        self, session: Any, upstream: Any, request: Any, endpoint: str, body: bytes, payload: dict[str, Any]
    ) -> UpstreamReply:
        if payload.get("stream") is True and endpoint in STREAMING_ENDPOINTS:
            return _DemoReply(200, "text/event-stream", events=stream(endpoint, payload))
        status, answer = respond(endpoint, payload)
        return _DemoReply(status, "application/json", json.dumps(answer).encode())


PROVIDER = DemoProvider()
