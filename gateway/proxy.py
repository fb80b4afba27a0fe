"""Forwarding one authorised request to its upstream and the answer back, streaming included.

- The body goes upstream as received; it is re-encoded only when a route renames the model or
  a stream needs ``stream_options.include_usage`` to report usage.
- The client's credential never goes upstream; the provider's is injected. Redirects are not
  followed. The URL comes from the route's provider only.
- Streams are passed through event by event as they arrive (:mod:`gateway.sse`). A client
  disconnect cancels the task running this code, which closes the upstream connection.
- Upstream failures become 502/504 in the client's dialect; upstream 4xx/5xx keep their status
  and message (with the provider's credential scrubbed). An upstream 401 means *Keygate's*
  provider credential was refused, so the client sees 502, not an authentication error about
  their own valid key.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from gateway.dialects import JSON_CONTENT_TYPE, Dialect, Headers, error_body
from gateway.exceptions import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.http import GatewayRequest, Send, base_headers
from gateway.providers import anthropic, demo, openai
from gateway.routing import RouteEntry, Upstream
from gateway.sse import SSETap, Usage

log = logging.getLogger(__name__)

SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
STREAM_USAGE_ENDPOINTS = frozenset({"chat/completions", "completions"})
BUILDERS = {"openai": openai.build, "anthropic": anthropic.build}


@dataclass(slots=True)
class Outcome:
    """What happened, for the usage record."""

    status: int = 0
    usage: Usage = field(default_factory=Usage)
    ttfb: float | None = None
    streamed: bool = False
    aborted: bool = False
    error_type: str = ""
    provider: str = ""
    events: int = 0
    saw_usage: bool = False


def prepare_body(request: GatewayRequest, route: RouteEntry) -> tuple[bytes, dict[str, Any], bool]:
    """The body to send upstream, its parsed form, and whether an injected usage chunk must be dropped."""
    payload = request.json
    assert payload is not None
    changed = False
    drop_injected_usage = False
    if route.upstream_model and payload.get("model") != route.upstream_model:
        payload = {**payload, "model": route.upstream_model}
        changed = True
    if request.stream and request.endpoint in STREAM_USAGE_ENDPOINTS:
        options = payload.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            options = options if isinstance(options, dict) else {}
            payload = {**payload, "stream_options": {**options, "include_usage": True}}
            changed = True
            drop_injected_usage = True
    return (orjson.dumps(payload) if changed else request.body), payload, drop_injected_usage


def _scrub(text: str, upstream: Upstream) -> str:
    if upstream.credential and len(upstream.credential) >= 8:
        text = text.replace(upstream.credential, "[redacted]")
    return text


def _upstream_message(body: bytes, status: int, upstream: Upstream) -> tuple[str, str | None, str | None]:
    """(message, type, code) from an upstream error body of either dialect."""
    message, kind, code = f"The upstream provider answered with HTTP {status}.", None, None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return message, kind, code
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        if isinstance(error.get("message"), str):
            message = error["message"]
        kind = error.get("type") if isinstance(error.get("type"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
    elif isinstance(error, str):
        message = error
    return _scrub(message, upstream)[:2000], kind, code


class Forwarder:
    """One per process: owns the pooled upstream client."""

    def __init__(self, *, max_response_bytes: int, connections: int = 2048) -> None:
        self.max_response_bytes = max_response_bytes
        self._connections = connections
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._connections,
            limit_per_host=0,
            ttl_dns_cache=300,
            keepalive_timeout=30,
            enable_cleanup_closed=True,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            timeout=aiohttp.ClientTimeout(total=None),
            read_bufsize=2**16,
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def forward(self, request: GatewayRequest, route: RouteEntry, send: Send, outcome: Outcome) -> None:
        body, payload, drop_injected_usage = prepare_body(request, route)
        if route.upstream.kind == "demo":
            await self._demo(request, payload, send, outcome, drop_injected_usage)
            return
        url, headers = BUILDERS[route.upstream.kind](route.upstream, request)
        upstream = route.upstream
        assert self.session is not None
        # No sock_read: aiohttp starts that clock when the request is sent, so it would also cut
        # the wait for the first byte at idle_timeout. The first byte is bounded by
        # first_byte_timeout below; idle_timeout bounds each read of the body (_read_some).
        timeout = _client_timeout(upstream.connect_timeout)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps the call in a task of its own.
            async with asyncio.timeout(upstream.first_byte_timeout):
                response = await self.session.post(
                    url, data=body, headers=headers, allow_redirects=False, timeout=timeout
                )
        except TimeoutError:
            raise UpstreamTimeout(
                f"The upstream provider '{upstream.name}' did not answer within {upstream.first_byte_timeout:g} s.",
                kind="upstream_timeout",
            ) from None
        except aiohttp.ClientConnectorError:
            raise UpstreamUnavailable(
                f"The upstream provider '{upstream.name}' could not be reached.", kind="upstream_unreachable"
            ) from None
        except aiohttp.ClientError as error:
            raise UpstreamUnavailable(
                f"The connection to the upstream provider '{upstream.name}' failed ({type(error).__name__}).",
                kind="upstream_connection_error",
            ) from None
        outcome.ttfb = time.perf_counter() - request.started
        async with response:
            await self._relay(request, upstream, response, send, outcome, drop_injected_usage)

    async def _relay(
        self,
        request: GatewayRequest,
        upstream: Upstream,
        response: aiohttp.ClientResponse,
        send: Send,
        outcome: Outcome,
        drop_injected_usage: bool,
    ) -> None:
        status = response.status
        if 300 <= status < 400:
            raise UpstreamUnavailable(
                f"The upstream provider '{upstream.name}' answered with a redirect ({status}); "
                "Keygate does not follow redirects.",
                kind="upstream_redirect",
            )
        if status == 401:
            raise UpstreamUnavailable(
                f"The upstream provider '{upstream.name}' refused Keygate's credential (401). "
                "An operator must fix the provider's API key.",
                kind="upstream_auth",
            )
        content_type = response.headers.get("content-type", "")
        if status < 400 and content_type.startswith("text/event-stream"):
            chunks = _upstream_chunks(response, upstream)
            await _relay_events(request, status, chunks, send, outcome, drop_injected_usage)
            return
        raw = await self._read_capped(response, upstream)
        if status >= 400:
            message, kind, code = _upstream_message(raw, status, upstream)
            outcome.status, outcome.error_type = status, f"upstream_{status}"
            headers = [JSON_CONTENT_TYPE, *base_headers(request)]
            retry_after = response.headers.get("retry-after")
            if retry_after and retry_after.isdigit():
                headers.append((b"retry-after", retry_after.encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send(
                {
                    "type": "http.response.body",
                    "body": error_body(
                        request.dialect,
                        status=status,
                        message=message,
                        error_type=kind,
                        code=code,
                        request_id=request.request_id,
                    ),
                }
            )
            return
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamUnavailable(
                f"The upstream provider '{upstream.name}' sent a response that is not valid JSON.",
                kind="upstream_invalid_json",
            ) from None
        outcome.usage.absorb_body(parsed)
        outcome.status = status
        headers = [
            (b"content-type", content_type.encode() or b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            *base_headers(request),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    async def _read_capped(self, response: aiohttp.ClientResponse, upstream: Upstream) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_response_bytes:
            raise UpstreamUnavailable(
                f"The upstream provider '{upstream.name}' sent a response larger than {self.max_response_bytes} bytes.",
                kind="upstream_too_large",
            )
        chunks, size = [], 0
        loop = asyncio.get_running_loop()
        try:
            # One timeout for the whole body, pushed back after every chunk: the idle timeout
            # without a timeout context per read.
            async with asyncio.timeout(upstream.idle_timeout or None) as deadline:
                while chunk := await response.content.readany():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise UpstreamUnavailable(
                            f"The upstream provider '{upstream.name}' sent a response larger than "
                            f"{self.max_response_bytes} bytes.",
                            kind="upstream_too_large",
                        )
                    chunks.append(chunk)
                    if upstream.idle_timeout:
                        deadline.reschedule(loop.time() + upstream.idle_timeout)
        except TimeoutError:
            raise UpstreamTimeout(
                f"The upstream provider '{upstream.name}' stopped sending its response.", kind="upstream_idle_timeout"
            ) from None
        except aiohttp.ClientError:
            raise UpstreamUnavailable(
                f"The upstream provider '{upstream.name}' broke the connection mid-response.", kind="upstream_reset"
            ) from None
        return b"".join(chunks)

    async def _demo(
        self, request: GatewayRequest, payload: dict[str, Any], send: Send, outcome: Outcome, drop_injected_usage: bool
    ) -> None:
        """The built-in demo provider, in process (no network): for the offline quickstart."""
        outcome.ttfb = time.perf_counter() - request.started
        if request.stream and request.endpoint in demo.STREAMING_ENDPOINTS:
            await _relay_events(
                request, 200, demo.stream(request.endpoint, payload), send, outcome, drop_injected_usage
            )
            return
        status, answer = demo.respond(request.endpoint, payload)
        outcome.status = status
        outcome.usage.absorb_body(answer)
        await send(
            {"type": "http.response.start", "status": status, "headers": [JSON_CONTENT_TYPE, *base_headers(request)]}
        )
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})


async def _relay_events(
    request: GatewayRequest,
    status: int,
    chunks: AsyncIterator[bytes],
    send: Send,
    outcome: Outcome,
    drop_injected_usage: bool,
) -> None:
    """Pass SSE bytes to the client event by event as they arrive, keeping usage (gateway.sse).
    A failure after the stream began ends it with a well-formed error event."""
    outcome.streamed, outcome.status = True, status
    tap = SSETap(drop_injected_usage=drop_injected_usage)
    await send({"type": "http.response.start", "status": status, "headers": [*SSE_HEADERS, *base_headers(request)]})
    failure: UpstreamError | None = None
    try:
        async for chunk in chunks:
            out = tap.feed(chunk)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
    except UpstreamError as error:
        failure = error
    finally:
        outcome.usage, outcome.events, outcome.saw_usage = tap.usage, tap.events, tap.saw_usage
    rest = tap.flush()
    if failure is not None:
        outcome.error_type = failure.kind
        rest += stream_error_event(request.dialect, failure, request.request_id)
    await send({"type": "http.response.body", "body": rest, "more_body": False})


async def _upstream_chunks(response: aiohttp.ClientResponse, upstream: Upstream) -> AsyncIterator[bytes]:
    """The upstream's body as it arrives; silence and broken connections become UpstreamErrors."""
    try:
        while chunk := await _read_some(response, upstream):
            yield chunk
    except TimeoutError:
        raise UpstreamTimeout(
            f"The upstream provider '{upstream.name}' stalled mid-stream for {upstream.idle_timeout:g} s.",
            kind="upstream_idle_timeout",
        ) from None
    except aiohttp.ClientError:
        raise UpstreamUnavailable(
            f"The upstream provider '{upstream.name}' broke the connection mid-stream.", kind="upstream_reset"
        ) from None


@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)


async def _read_some(response: aiohttp.ClientResponse, upstream: Upstream) -> bytes:
    """The next bytes of the body (``b""`` at its end); TimeoutError after ``idle_timeout`` of silence."""
    async with asyncio.timeout(upstream.idle_timeout or None):
        return await response.content.readany()


def stream_error_event(dialect: Dialect, error: UpstreamError, request_id: str) -> bytes:
    """A well-formed SSE error event for a failure after the stream began."""
    body = error_body(
        dialect, status=error.status_code, message=str(error.detail), code=error.kind, request_id=request_id
    )
    if dialect is Dialect.ANTHROPIC:
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"
