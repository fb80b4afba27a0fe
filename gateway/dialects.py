"""Errors and headers in each protocol's own dialect — the one place that knows both shapes.

- OpenAI: ``{"error": {"message", "type", "param", "code"}}``
  (https://platform.openai.com/docs/guides/error-codes)
- Anthropic: ``{"type": "error", "error": {"type", "message"}, "request_id"}``
  (https://docs.anthropic.com/en/api/errors)

The SDKs pick their exception class from the HTTP status, so the status is what matters most;
the body gives people a message they can act on. 401s carry ``WWW-Authenticate``.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson
from rest_framework.exceptions import APIException

Headers = list[tuple[bytes, bytes]]


class Dialect(enum.Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


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

JSON_CONTENT_TYPE = (b"content-type", b"application/json")


def _message(exc: APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list | tuple):
        return " ".join(str(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {value}" for key, value in detail.items())
    return str(detail)


def _code(exc: APIException) -> str | None:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else None


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


def render_error(dialect: Dialect, exc: APIException, request_id: str) -> tuple[int, Headers, bytes]:
    """``(status, headers, body)`` for a DRF exception, in ``dialect``."""
    status = exc.status_code
    code = _code(exc)
    error_type = getattr(exc, "error_type", None)
    body = error_body(
        dialect,
        status=status,
        message=_message(exc),
        error_type=error_type,
        code=None if code in (None, "invalid_request_error", "error") else code,
        param=getattr(exc, "param", None),
        request_id=request_id,
    )
    headers: Headers = [JSON_CONTENT_TYPE]
    if status == 401:
        realm = b'Bearer realm="keygate"' if dialect is Dialect.OPENAI else b'x-api-key realm="keygate"'
        headers.append((b"www-authenticate", realm))
    if status == 405 and getattr(exc, "allowed", None):
        headers.append((b"allow", ", ".join(exc.allowed).encode()))
    wait = getattr(exc, "wait", None)
    if status == 429 and wait is not None:
        headers.append((b"retry-after", str(max(1, int(wait + 0.999))).encode()))
    headers.extend(getattr(exc, "extra_headers", ()))
    return status, headers, body
