"""Forwarding one authorised request to its upstream and the answer back, streaming included.

The boundary between the pipeline and the provider adapters (:mod:`gateway.providers`):

- :meth:`Forwarder.plan` decides, before any limit is taken, how a request reaches its routed
  provider: **pass-through** when the provider speaks the client's endpoint natively, else
  **translated** through :mod:`gateway.translate` (OpenAI Chat ⇄ Anthropic Messages ⇄ Responses),
  else a 400 that names the endpoint to use.
- Pass-through (the fast path): the body goes upstream as received; it is re-encoded only when a
  route renames the model or a stream needs ``stream_options.include_usage``. Streams pass event
  by event as they arrive, not re-encoded (:mod:`gateway.sse`).
- The client's credential never goes upstream; the provider's is injected. Redirects are not
  followed. The URL comes from the route's provider only. The client's query string goes along.
- Upstream failures become 502/504 in the client's dialect; upstream 4xx/5xx keep their status
  and message (with the provider's credential scrubbed). An upstream 401 means *Keygate's*
  provider credential was refused, so the client sees 502, not an authentication error about
  their own valid key. A client disconnect cancels the task running this code, which closes
  the upstream connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from gateway import translate
from gateway.exceptions import BadRequest, GatewayError, UpstreamError, UpstreamUnavailable
from gateway.http import GatewayRequest, Send, base_headers
from gateway.models import ProviderKind
from gateway.providers import adapter
from gateway.providers.base import (
    CHAT,
    ENDPOINT_OF_PROTOCOL,
    MESSAGES,
    PROTOCOL_OF_ENDPOINT,
    RESPONSES,
    Provider,
    UpstreamReply,
    passed_back_headers,
)
from gateway.routing import RouteEntry, Upstream
from gateway.sse import SSEParser, SSETap, Usage
from gateway.wire import (
    JSON_CONTENT_TYPE,
    SSE_HEADERS,
    Response,
    StreamResponse,
    error_body,
    mask_echo,
    stream_error_event,
)

log = logging.getLogger(__name__)

STREAM_USAGE_ENDPOINTS = frozenset({"chat/completions", "completions"})
# Which native protocol a translated request is sent in, in order of preference.
_TARGET_PREFERENCE = (CHAT, MESSAGES, RESPONSES)


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


@dataclass(frozen=True, slots=True)
class Plan:
    """How one request reaches its provider: ``endpoint`` upstream, and for a translated request
    the client's protocol (``source``) and the one the provider speaks (``target``)."""

    provider: Provider
    endpoint: str
    source: str = ""
    target: str = ""

    @property
    def translated(self) -> bool:
        return bool(self.target)


def prepare_body(request: GatewayRequest, route: RouteEntry) -> tuple[bytes, dict[str, Any], bool]:
    """The body to send upstream, its parsed form, and whether an injected usage chunk must be dropped."""
    payload = request.json
    assert payload is not None
    changed = False
    upstream_model = route.upstream_name(payload.get("model", ""))
    if payload.get("model") != upstream_model:
        payload = {**payload, "model": upstream_model}
        changed = True
    payload, injected = _with_stream_usage(payload, request.stream, request.endpoint)
    return (orjson.dumps(payload) if changed or injected else request.body), payload, injected


def _with_stream_usage(payload: dict[str, Any], stream: bool, endpoint: str) -> tuple[dict[str, Any], bool]:
    """Ask an OpenAI-compatible stream to report usage; True when the client did not ask itself."""
    if not (stream and endpoint in STREAM_USAGE_ENDPOINTS):
        return payload, False
    options = payload.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return payload, False
    options = options if isinstance(options, dict) else {}
    return {**payload, "stream_options": {**options, "include_usage": True}}, True


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

    # --- the adapter boundary ----------------------------------------------------------------

    def plan(self, request: GatewayRequest, route: RouteEntry) -> Plan:
        """How ``request`` reaches ``route``'s provider, or a 400 when it cannot (before any limit)."""
        provider = adapter(route.upstream.kind)
        if provider.speaks(request.endpoint):
            return Plan(provider, request.endpoint)
        source = PROTOCOL_OF_ENDPOINT.get(request.endpoint, "")
        targets = [p for p in _TARGET_PREFERENCE if p in provider.protocols]
        if translate is not None and source and targets:
            return Plan(provider, ENDPOINT_OF_PROTOCOL[targets[0]], source=source, target=targets[0])
        other = "/v1/chat/completions" if route.upstream.kind == ProviderKind.OPENAI else "/v1/messages"
        raise BadRequest(
            f"The model '{mask_echo(request.model or '')}' is served by an "
            f"{ProviderKind(route.upstream.kind).label} provider; call it through {other}.",
            param="model",
        )

    async def forward(
        self, request: GatewayRequest, route: RouteEntry, send: Send, outcome: Outcome, plan: Plan | None = None
    ) -> None:
        plan = plan or self.plan(request, route)
        if plan.translated:
            await self._translated(request, route, plan, send, outcome)
            return
        body, payload, drop_injected_usage = prepare_body(request, route)
        reply = await plan.provider.open(self.session, route.upstream, request, plan.endpoint, body, payload)
        outcome.ttfb = time.perf_counter() - request.started
        try:
            await self._relay(request, route.upstream, reply, send, outcome, drop_injected_usage)
        finally:
            reply.close()

    async def _relay(
        self,
        request: GatewayRequest,
        upstream: Upstream,
        reply: UpstreamReply,
        send: Send,
        outcome: Outcome,
        drop_injected_usage: bool,
    ) -> None:
        status = _checked_status(reply, upstream)
        content_type = reply.content_type
        passed = passed_back_headers(reply.headers, _own_names(request))
        if status < 400 and content_type.startswith("text/event-stream"):
            tap = SSETap(drop_injected_usage=drop_injected_usage)
            await _relay_events(request, status, reply.chunks(), send, outcome, tap.feed, tap.flush, tap, passed)
            return
        raw = await reply.read(self.max_response_bytes)
        if status >= 400:
            message, kind, code = _upstream_message(raw, status, upstream)
            outcome.status, outcome.error_type = status, f"upstream_{status}"
            body = error_body(
                request.dialect,
                status=status,
                message=message,
                error_type=kind,
                code=code,
                request_id=request.request_id,
            )
            await Response(status, [JSON_CONTENT_TYPE, *passed, *base_headers(request)], body).send(send)
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
            *passed,
            *base_headers(request),
        ]
        await Response(status, headers, raw).send(send)

    # --- translation (issue #11), against gateway.translate's contract -----------------------
    # Direction: ``source`` is always the protocol of the data handed in, ``target`` the one
    # wanted out — the client's protocol → the provider's for the request, the reverse for the
    # response, the stream and errors.

    async def _translated(
        self, request: GatewayRequest, route: RouteEntry, plan: Plan, send: Send, outcome: Outcome
    ) -> None:
        assert translate is not None and request.json is not None
        client, provider = plan.source, plan.target
        if request.endpoint == "messages/count_tokens":
            tokens = translate.count_tokens(request.json, protocol=translate.Protocol(client))
            outcome.status = 200
            await Response.json(200, {"input_tokens": tokens}, base_headers(request)).send(send)
            return
        try:
            payload = translate.translate_request(
                request.json, source=translate.Protocol(client), target=translate.Protocol(provider)
            )
        except translate.TranslationError as error:
            raise BadRequest(error.message, param=error.param) from None
        payload["model"] = route.upstream_name(request.model or "")
        payload, _ = _with_stream_usage(payload, request.stream, plan.endpoint)
        body = orjson.dumps(payload)
        reply = await plan.provider.open(self.session, route.upstream, request, plan.endpoint, body, payload)
        outcome.ttfb = time.perf_counter() - request.started
        try:
            await self._relay_translated(request, route.upstream, plan, reply, send, outcome)
        finally:
            reply.close()

    async def _relay_translated(
        self,
        request: GatewayRequest,
        upstream: Upstream,
        plan: Plan,
        reply: UpstreamReply,
        send: Send,
        outcome: Outcome,
    ) -> None:
        assert translate is not None
        upstream_protocol, client = translate.Protocol(plan.target), translate.Protocol(plan.source)
        status = _checked_status(reply, upstream)
        passed = passed_back_headers(reply.headers, _own_names(request))
        model = request.model or ""
        if status < 400 and reply.content_type.startswith("text/event-stream"):
            translator = translate.StreamTranslator(source=upstream_protocol, target=client, model=model)
            parser = SSEParser()

            def feed(chunk: bytes) -> bytes:
                return b"".join(translator.feed(event, data) for event, data in parser.feed(chunk))

            def tail() -> bytes:
                rest = b"".join(translator.feed(event, data) for event, data in parser.flush())
                return rest + translator.close()

            await _relay_events(request, status, reply.chunks(), send, outcome, feed, tail, None, passed)
            outcome.usage = Usage(
                input_tokens=translator.input_tokens + translator.cache_read_tokens + translator.cache_creation_tokens,
                output_tokens=translator.output_tokens,
            )
            outcome.saw_usage = bool(translator.input_tokens or translator.output_tokens)
            outcome.events = parser.events
            return
        raw = await reply.read(self.max_response_bytes)
        if status >= 400:
            outcome.error_type = f"upstream_{status}"
            status, error = translate.translate_error(status, raw, source=upstream_protocol, target=client)
            outcome.status = status
            await Response.json(status, error, [*passed, *base_headers(request)]).send(send)
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
        try:
            answer = translate.translate_response(parsed, source=upstream_protocol, target=client, model=model)
        except translate.TranslationError as error:
            raise UpstreamUnavailable(
                f"The upstream provider '{upstream.name}' sent an answer Keygate cannot translate: {error.message}",
                kind="upstream_untranslatable",
            ) from None
        await Response.json(status, answer, [*passed, *base_headers(request)]).send(send)


def _checked_status(reply: UpstreamReply, upstream: Upstream) -> int:
    status = reply.status
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
    return status


def _own_names(request: GatewayRequest) -> frozenset[bytes]:
    """Header names Keygate sets itself on this response: its own limit headers win."""
    return frozenset(name for name, _ in request.extra_headers) if request.extra_headers else frozenset()


async def _relay_events(
    request: GatewayRequest,
    status: int,
    chunks: AsyncIterator[bytes],
    send: Send,
    outcome: Outcome,
    feed: Any,
    tail: Any,
    tap: SSETap | None,
    passed: list[tuple[bytes, bytes]],
) -> None:
    """Send SSE bytes to the client as they arrive (``feed`` maps upstream bytes to client bytes:
    the tap's pass-through, or a translator). A failure after the stream began ends it with a
    well-formed error event in the client's dialect."""
    outcome.streamed, outcome.status = True, status
    response = StreamResponse(send, status, [*SSE_HEADERS, *passed, *base_headers(request)])
    await response.start()
    failure: GatewayError | None = None
    try:
        async for chunk in chunks:
            out = feed(chunk)
            if out:
                await response.write(out)
    except UpstreamError as error:
        failure = error
    finally:
        if tap is not None:
            outcome.usage, outcome.events, outcome.saw_usage = tap.usage, tap.events, tap.saw_usage
    rest = tail()
    if failure is not None:
        outcome.error_type = failure.kind
        rest += stream_error_event(request.dialect, failure, request.request_id)
    await response.end(rest)
