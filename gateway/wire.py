"""Keygate's own answers on the wire — the one module that knows their shapes — and the small
response objects that write every ASGI response of the gateway.

- Errors: OpenAI ``{"error": {"message", "type", "param", "code"}}``
  (https://platform.openai.com/docs/guides/error-codes); Anthropic
  ``{"type": "error", "error": {"type", "message"}, "request_id"}``
  (https://docs.anthropic.com/en/api/errors). The SDKs pick their exception class from the
  status, so the status matters most; the body gives a message people can act on.
- Headers Keygate adds: ``WWW-Authenticate`` on 401, ``x-should-retry: false`` on 401/403 (the
  SDKs otherwise retry a bad key), ``Allow`` on 405, ``Retry-After`` on 429.
- Mid-stream errors: one well-formed SSE error event in the stream's dialect.
- Model lists in the OpenAI shape or Anthropic's.
- Echoed client input (model names, request ids) is masked if it looks like a key.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import APIException

from gateway.exceptions import GatewayError, Headers
from keys import crypto

__all__ = [
    "JSON_CONTENT_TYPE",
    "SSE_HEADERS",
    "Dialect",
    "Headers",
    "Response",
    "StreamResponse",
    "error_body",
    "mask_echo",
    "model_list",
    "render_error",
    "stream_error_event",
]


class Dialect(enum.Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


JSON_CONTENT_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
NO_RETRY = (b"x-should-retry", b"false")

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
    502: "api_error",
    503: "api_error",
    504: "api_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# DRF's generic codes, in the words OpenAI clients know.
_OPENAI_CODES = {
    "authentication_failed": "invalid_api_key",
    "not_authenticated": "missing_api_key",
    "permission_denied": "permission_denied",
    "throttled": "rate_limit_exceeded",
    "method_not_allowed": "method_not_allowed",
}


def mask_echo(text: str) -> str:
    """``text`` as Keygate may repeat it (errors, usage records, logs): anything shaped like a
    key is masked after its public id."""
    return crypto.redact(text, settings.KEYGATE_KEY_PREFIX)


# --- errors ---------------------------------------------------------------------------------


def error_body(
    dialect: Dialect,
    *,
    status: int,
    message: str,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    request_id: str = "",
) -> bytes:
    """The JSON error body for ``status`` in ``dialect``."""
    if dialect is Dialect.ANTHROPIC:
        kind = (
            error_type
            if error_type in _ANTHROPIC_TYPES.values()
            else _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        )
        payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
        if request_id:
            payload["request_id"] = request_id
        return orjson.dumps(payload)
    kind = error_type or _OPENAI_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    error: dict[str, Any] = {"message": message, "type": kind, "param": param, "code": _OPENAI_CODES.get(code, code)}
    if request_id:
        error["request_id"] = request_id
    return orjson.dumps({"error": error})


def _message(exc: APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list | tuple):
        return " ".join(str(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {value}" for key, value in detail.items())
    return str(detail)


def render_error(dialect: Dialect, exc: APIException, request_id: str) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)`` for a gateway failure (or any DRF exception), in ``dialect``."""
    error = GatewayError.adopt(exc)
    status = error.status_code
    codes = error.get_codes()
    code = codes if isinstance(codes, str) and codes not in ("invalid_request_error", "error") else None
    body = error_body(
        dialect,
        status=status,
        message=_message(error),
        error_type=error.error_type,
        code=code,
        param=error.param,
        request_id=request_id,
    )
    headers: Headers = [JSON_CONTENT_TYPE]
    if status == 401:
        realm = b'Bearer realm="keygate"' if dialect is Dialect.OPENAI else b'x-api-key realm="keygate"'
        headers.append((b"www-authenticate", realm))
    if status in (401, 403):
        headers.append(NO_RETRY)
    if status == 405 and error.allowed:
        headers.append((b"allow", ", ".join(error.allowed).encode()))
    if status in (429, 503) and error.wait is not None:
        headers.append((b"retry-after", str(max(1, int(error.wait + 0.999))).encode()))
    headers.extend(error.extra_headers)
    return status, headers, body


def stream_error_event(dialect: Dialect, error: GatewayError, request_id: str) -> bytes:
    """A well-formed SSE error event for a failure after the stream began."""
    body = error_body(
        dialect, status=error.status_code, message=str(error.detail), code=error.kind or None, request_id=request_id
    )
    if dialect is Dialect.ANTHROPIC:
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + body + b"\n\n"


# --- model lists ----------------------------------------------------------------------------


def model_object(name: str, owner: str, created: int, *, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        return {"type": "model", "id": name, "display_name": name, "created_at": stamp}
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


def model_list(models: Iterable[tuple[str, str]], created: int, *, anthropic: bool) -> dict[str, Any]:
    """``GET /v1/models`` for ``(name, owner)`` pairs, in the OpenAI shape or Anthropic's."""
    data = [model_object(name, owner, created, anthropic=anthropic) for name, owner in models]
    if anthropic:
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    return {"object": "list", "data": data}


# --- responses ------------------------------------------------------------------------------


class Response:
    """One complete ASGI response: ``await Response(200, headers, body).send(send)``."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Headers, body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @classmethod
    def json(cls, status: int, payload: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> Response:
        return cls(status, [JSON_CONTENT_TYPE, *headers], orjson.dumps(payload))

    @classmethod
    def error(
        cls, dialect: Dialect, exc: APIException, request_id: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Response:
        status, error_headers, body = render_error(dialect, exc, request_id)
        return cls(status, [*error_headers, *headers], body)

    async def send(self, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class StreamResponse:
    """A response whose body is written piece by piece (SSE): ``start``, ``write`` …, ``end``."""

    __slots__ = ("_send", "headers", "status")

    def __init__(self, send: Any, status: int, headers: Headers) -> None:
        self._send = send
        self.status = status
        self.headers = headers

    async def start(self) -> None:
        await self._send({"type": "http.response.start", "status": self.status, "headers": self.headers})

    async def write(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": False})
