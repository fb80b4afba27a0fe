"""The one shape of every upstream kind: a :class:`Provider` adapter.

An adapter declares the endpoints (and so the protocols) its upstreams speak natively and
implements the three steps of an exchange:

- ``build_request(upstream, request, endpoint)`` → URL and headers (the provider's credential,
  never the client's; the client's query string; the few client headers worth forwarding);
- ``open(session, upstream, request, endpoint, body)`` → an :class:`UpstreamReply` (status,
  headers, then either ``read()`` the whole body or iterate ``chunks()`` of a stream);
- the reply's ``read()`` / ``chunks()`` bound the body's size and silences, and map transport
  failures through one table (:data:`TRANSPORT_ERRORS`).

HTTP upstreams (``openai``, ``anthropic``) share :class:`HTTPProvider`; the ``demo`` provider
answers in process with the same reply shape, so the forwarder has no special case for it.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import aiohttp

from gateway.deadlines import deadline, idle_limit
from gateway.exceptions import UpstreamError, UpstreamTimeout, UpstreamUnavailable

if TYPE_CHECKING:
    from gateway.http import GatewayRequest
    from gateway.routing import Upstream

# The client protocols translation knows (gateway.translate.Protocol has the same values).
CHAT, MESSAGES, RESPONSES = "chat", "messages", "responses"
PROTOCOL_OF_ENDPOINT: dict[str, str] = {
    "chat/completions": CHAT,
    "messages": MESSAGES,
    "messages/count_tokens": MESSAGES,
    "responses": RESPONSES,
}
ENDPOINT_OF_PROTOCOL: dict[str, str] = {CHAT: "chat/completions", MESSAGES: "messages", RESPONSES: "responses"}

# Upstream response headers a client may use (OpenAI and Anthropic SDKs read them); the
# upstream's request id goes back as x-upstream-request-id. Never set-cookie, never hop-by-hop.
PASSED_BACK = ("openai-processing-ms", "retry-after-ms", "x-should-retry", "retry-after")
PASSED_BACK_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
UPSTREAM_REQUEST_ID = ("x-request-id", "request-id")

#: (exception, phase) → (Keygate error, kind, message): every aiohttp/timeout failure of an
#: exchange, mapped in one place. ``{name}`` is the provider, ``{timeout}`` the limit that hit.
#: Looked up in order, so subclasses (ClientConnectorError) precede their bases (ClientError).
TRANSPORT_ERRORS: tuple[tuple[type[BaseException], str, type[UpstreamError], str, str], ...] = (
    (TimeoutError, "open", UpstreamTimeout, "upstream_timeout",
     "The upstream provider '{name}' did not answer within {timeout:g} s."),
    (aiohttp.ClientConnectorError, "open", UpstreamUnavailable, "upstream_unreachable",
     "The upstream provider '{name}' could not be reached."),
    (aiohttp.ClientError, "open", UpstreamUnavailable, "upstream_connection_error",
     "The connection to the upstream provider '{name}' failed ({error})."),
    (TimeoutError, "read", UpstreamTimeout, "upstream_idle_timeout",
     "The upstream provider '{name}' stopped sending its response."),
    (aiohttp.ClientError, "read", UpstreamUnavailable, "upstream_reset",
     "The upstream provider '{name}' broke the connection mid-response."),
    (TimeoutError, "stream", UpstreamTimeout, "upstream_idle_timeout",
     "The upstream provider '{name}' stalled mid-stream for {timeout:g} s."),
    (aiohttp.ClientError, "stream", UpstreamUnavailable, "upstream_reset",
     "The upstream provider '{name}' broke the connection mid-stream."),
)  # fmt: skip


class transport_errors:  # lower case: used like the function it replaced, ``with transport_errors(...)``
    """Turn a transport failure during ``phase`` into the Keygate error :data:`TRANSPORT_ERRORS` names.

    A class, not a ``contextlib.contextmanager``: the generator behind one cost ~1 µs a use, and
    every forwarded request uses two (issue #16)."""

    __slots__ = ("phase", "timeout", "upstream")

    def __init__(self, upstream: Upstream, phase: str, timeout: float = 0.0) -> None:
        self.upstream, self.phase, self.timeout = upstream, phase, timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, error: BaseException | None, tb: Any) -> bool:
        if error is None or isinstance(error, UpstreamError):
            return False
        if isinstance(error, (TimeoutError, aiohttp.ClientError)):
            for error_type, when, cls, kind, message in TRANSPORT_ERRORS:
                if when == self.phase and isinstance(error, error_type):
                    text = message.format(name=self.upstream.name, timeout=self.timeout, error=type(error).__name__)
                    raise cls(text, kind=kind) from None
        return False


class UpstreamReply:
    """An upstream's answer: status and headers, then the body whole or as chunks."""

    status: int
    headers: Mapping[str, str]

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    async def read(self, limit: int) -> bytes:
        raise NotImplementedError

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection (a no-op for in-process replies)."""


class Provider:
    """An upstream kind. Subclasses set ``kind`` and ``endpoints`` (paths under /v1/ they serve
    natively) and implement :meth:`open`."""

    kind: ClassVar[str] = ""
    endpoints: ClassVar[frozenset[str]] = frozenset()

    @property
    def protocols(self) -> frozenset[str]:
        """The client protocols this kind speaks natively (``chat``, ``messages``, ``responses``)."""
        return frozenset(PROTOCOL_OF_ENDPOINT[e] for e in self.endpoints if e in PROTOCOL_OF_ENDPOINT)

    def speaks(self, endpoint: str) -> bool:
        return endpoint in self.endpoints

    def default_models(self) -> tuple[str, ...]:
        """Model names a catch-all route of this kind lists when the operator named none."""
        return ()

    async def list_models(self, session: aiohttp.ClientSession | None, upstream: Upstream) -> tuple[str, ...]:
        """The model ids the upstream itself lists (its /v1/models); () when it has no such list."""
        return ()

    async def open(
        self,
        session: aiohttp.ClientSession | None,
        upstream: Upstream,
        request: GatewayRequest,
        endpoint: str,
        body: bytes,
        payload: dict[str, Any],
    ) -> UpstreamReply:
        raise NotImplementedError


class _HTTPReply(UpstreamReply):
    def __init__(self, response: aiohttp.ClientResponse, upstream: Upstream) -> None:
        self._response = response
        self._upstream = upstream
        self.status = response.status
        self.headers = response.headers

    async def read(self, limit: int) -> bytes:
        upstream = self._upstream
        declared = self._response.content_length
        if declared is not None and declared > limit:
            raise _too_large(upstream, limit)
        with transport_errors(upstream, "read"):
            content = self._response.content
            if content.is_eof():  # the whole body arrived with the headers: no wait, so no timer
                body = content.read_nowait()
                if len(body) > limit:
                    raise _too_large(upstream, limit)
                return body
            # One idle limit for the whole body, not a timeout context per read.
            chunks, size = [], 0
            with idle_limit(upstream.idle_timeout or None) as idle:
                while True:
                    idle.waiting()
                    chunk = await content.readany()
                    idle.resting()
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(upstream, limit)
                    chunks.append(chunk)
        return b"".join(chunks)

    async def chunks(self) -> AsyncIterator[bytes]:
        upstream = self._upstream
        content = self._response.content
        errors = transport_errors(upstream, "stream", upstream.idle_timeout)
        # One idle limit for the whole stream, counting only the waits for the next chunk, not
        # the time the relay takes to send one on (issue #16: ~2 µs a chunk less than a
        # deadline entered around every read).
        with errors, idle_limit(upstream.idle_timeout or None) as idle:
            while True:
                idle.waiting()
                chunk = await content.readany()
                idle.resting()
                if not chunk:
                    return
                yield chunk

    def close(self) -> None:
        self._response.release()


#: Query parameters that reach the upstream: Claude Code and the Anthropic SDKs' ``beta.*``
#: call ``/v1/messages?beta=true``. Nothing else (a ``base_url=`` or ``api-version=`` in the
#: query never steers the upstream request: tests/security/test_ssrf.py).
FORWARDED_QUERY = frozenset({"beta"})


def _forwarded_query(query: bytes) -> str:
    return urlencode([(k, v) for k, v in parse_qsl(query.decode("latin-1")) if k in FORWARDED_QUERY])


def _too_large(upstream: Upstream, limit: int) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"The upstream provider '{upstream.name}' sent a response larger than {limit} bytes.",
        kind="upstream_too_large",
    )


@functools.lru_cache(maxsize=64)  # one per configured connect timeout, not one per request
def _client_timeout(connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)


class HTTPProvider(Provider):
    """An upstream reached over HTTP: the URL and headers come from :meth:`build_request`."""

    #: Client headers worth forwarding; everything else (cookies, the client's credential,
    #: hop-by-hop headers, forwarding headers) stays behind.
    forwarded_headers: ClassVar[tuple[str, ...]] = ()

    def url(self, upstream: Upstream, endpoint: str) -> str:
        raise NotImplementedError

    async def list_models(self, session: aiohttp.ClientSession | None, upstream: Upstream) -> tuple[str, ...]:
        """GET the upstream's ``models`` list (OpenAI and Anthropic share the ``data[].id`` shape).
        Raises UpstreamError on failure; the caller logs it and keeps the previous list."""
        assert session is not None
        headers = {"accept": "application/json", "user-agent": "Keygate", **self.credential_headers(upstream, None)}
        with transport_errors(upstream, "open", upstream.first_byte_timeout):
            with deadline(upstream.first_byte_timeout):
                async with session.get(
                    self.url(upstream, "models"),
                    headers=headers,
                    allow_redirects=False,
                    timeout=_client_timeout(upstream.connect_timeout),
                ) as response:
                    if response.status != 200:
                        raise UpstreamUnavailable(
                            f"The upstream provider '{upstream.name}' answered {response.status} to GET models.",
                            kind=f"upstream_{response.status}",
                        )
                    payload = await response.json(content_type=None)
        data = payload.get("data") if isinstance(payload, dict) else None
        names = [item.get("id") for item in data or () if isinstance(item, dict)]
        return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and 0 < len(n) <= 256))[:1000]

    def credential_headers(self, upstream: Upstream, request: GatewayRequest | None) -> dict[str, str]:
        raise NotImplementedError

    def build_request(
        self, upstream: Upstream, request: GatewayRequest, endpoint: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """The URL (with the client's query string when ``endpoint`` is the client's) and headers for
        ``endpoint`` (default: the client's)."""
        headers = {
            "content-type": "application/json",
            "accept": request.headers.get("accept", "application/json, text/event-stream"),
            "accept-encoding": "identity",
            "user-agent": "Keygate",
            "x-request-id": request.request_id,
        }
        for name in self.forwarded_headers:
            if name in request.headers:
                headers[name] = request.headers[name]
        headers.update(self.credential_headers(upstream, request))
        url = self.url(upstream, endpoint or request.endpoint)
        query = request.scope.get("query_string", b"")
        # The query belongs to the client's protocol: a translated request (Claude Code's
        # /v1/messages?beta=true sent on as Chat Completions) goes without it.
        if query and endpoint in (None, request.endpoint):
            kept = _forwarded_query(query)
            if kept:
                url = f"{url}?{kept}"
        return url, headers

    async def open(
        self,
        session: aiohttp.ClientSession | None,
        upstream: Upstream,
        request: GatewayRequest,
        endpoint: str,
        body: bytes,
        payload: dict[str, Any],
    ) -> UpstreamReply:
        assert session is not None
        url, headers = self.build_request(upstream, request, endpoint)
        # No sock_read: aiohttp starts that clock when the request is sent, so it would also cut
        # the wait for the first byte at idle_timeout. The first byte is bounded by
        # first_byte_timeout here; idle_timeout bounds each read of the body.
        with transport_errors(upstream, "open", upstream.first_byte_timeout):
            # Not wait_for (on 3.11 it wraps the call in a task of its own), nor asyncio.timeout
            # (a timer handle made and cancelled per request): gateway.deadlines.
            with deadline(upstream.first_byte_timeout):
                response = await session.post(
                    url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=_client_timeout(upstream.connect_timeout),
                )
        return _HTTPReply(response, upstream)


def passed_back_headers(headers: Mapping[str, str], own: frozenset[bytes] = frozenset()) -> list[tuple[bytes, bytes]]:
    """The upstream response headers a client may use, minus those Keygate sets itself (``own``)."""
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        lower = name.lower()
        if lower in PASSED_BACK or lower.startswith(PASSED_BACK_PREFIXES):
            encoded = lower.encode()
            if encoded not in own:
                kept.append((encoded, value.encode("latin-1", "replace")))
        elif lower in UPSTREAM_REQUEST_ID:
            kept.append((b"x-upstream-request-id", value.encode("latin-1", "replace")))
    return kept
