"""CORS for browser apps calling /v1/ directly (off unless ``KEYGATE_CORS_ORIGINS`` is set).

A preflight ``OPTIONS`` from an allowed origin is answered 204 with the methods and the headers
the OpenAI and Anthropic browser SDKs send; other responses to an allowed origin carry
``Access-Control-Allow-Origin`` and expose the headers clients read (request id, limits). A key
is still required on every real request: CORS only lets the browser read the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.wire import Response

ALLOWED_HEADERS = (
    "authorization, x-api-key, anthropic-version, anthropic-beta, content-type, openai-beta, "
    "x-request-id, request-id, anthropic-dangerous-direct-browser-access, x-stainless-arch, "
    "x-stainless-lang, x-stainless-os, x-stainless-package-version, x-stainless-retry-count, "
    "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout, x-stainless-async, "
    "x-stainless-helper-method, x-stainless-poll-helper, x-stainless-custom-poll-interval"
)
EXPOSED_HEADERS = (
    b"x-request-id, request-id, x-upstream-request-id, retry-after, retry-after-ms, x-should-retry, "
    b"openai-processing-ms, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    b"x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, "
    b"x-ratelimit-reset-tokens"
)


class CORS:
    """The CORS policy of one process, from ``KEYGATE_CORS_ORIGINS``."""

    def __init__(self, origins: Sequence[str]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")
        self.enabled = self.any or bool(self.origins)

    def allowed(self, origin: str | None) -> bool:
        return bool(origin) and (self.any or origin in self.origins)

    def _origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        return [(b"access-control-allow-origin", b"*" if self.any else origin.encode()), (b"vary", b"origin")]

    def preflight(self, origin: str, requested: str | None) -> Response:
        # Echo what was asked when it is all allowed-shaped (x-stainless-* grows with SDK versions).
        names = ALLOWED_HEADERS
        if requested and all(_allowed_header(h.strip().lower()) for h in requested.split(",") if h.strip()):
            names = requested
        headers = [
            *self._origin_headers(origin),
            (b"access-control-allow-methods", b"GET, POST, HEAD, OPTIONS"),
            (b"access-control-allow-headers", names.encode("latin-1")),
            (b"access-control-max-age", b"600"),
        ]
        return Response(204, headers)

    def wrap(self, origin: str, send: Any) -> Any:
        extra = [*self._origin_headers(origin), (b"access-control-expose-headers", EXPOSED_HEADERS)]

        async def cors_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *extra]}
            await send(message)

        return cors_send


_ALLOWED = frozenset(h.strip() for h in ALLOWED_HEADERS.split(","))


def _allowed_header(name: str) -> bool:
    return name in _ALLOWED or name.startswith("x-stainless-")
