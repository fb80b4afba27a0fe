"""Upstream errors in the client's dialect, so the SDKs raise their typed exceptions.

The SDKs choose the exception class from the HTTP status, so the status is mapped first, the type from
it: Anthropic's 529 ``overloaded_error`` ⇄ OpenAI's 503; everything else keeps its status (429 rate
limits, 400 invalid requests, 401 authentication, 403 permission, 404 not found, 5xx api errors). The
upstream's message is kept when the body has one; a body that is not an error object (an HTML page from
a proxy) is never echoed. A context overflow keeps the words clients look for: OpenAI's
``context_length_exceeded`` code ⇄ Anthropic's "prompt is too long" message (Claude Code compacts on it).
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import JSON, Protocol

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_OPENAI_CODES = {401: "invalid_api_key", 403: "permission_denied", 404: "not_found", 429: "rate_limit_exceeded"}
# A mid-stream Anthropic error carries no status; its type says which one it would have had.
_ANTHROPIC_STATUS = {name: status for status, name in _ANTHROPIC_TYPES.items()} | {"api_error": 500}
_TOO_LONG = "prompt is too long"


def translate_error(status: int, body: bytes, *, source: Protocol, target: Protocol) -> tuple[int, JSON]:
    """An upstream error answer of ``source``'s dialect as ``(status, body)`` of ``target``'s dialect."""
    error = _error_object(body)
    if target is Protocol.MESSAGES:
        status = 529 if status == 503 else status
    elif status == 529:
        status = 503
    # An HTTP error from the Responses API has the chat shape; only its stream events differ.
    dialect = Protocol.MESSAGES if target is Protocol.MESSAGES else Protocol.CHAT
    return status, error_payload(error, dialect, status=status)


def error_payload(error: Any, target: Protocol, *, status: int | None = None) -> JSON:
    """One error object of any dialect (OpenAI's inner ``error``, Anthropic's, a Responses ``error``
    event) as ``target``'s error: Anthropic ``{"type": "error", "error": …}``, chat ``{"error": …}``,
    Responses the fields of an ``error`` event (``code``, ``message``, ``param``)."""
    error = error if isinstance(error, dict) else {}
    message = error.get("message") if isinstance(error.get("message"), str) else None
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    if status is None:
        status = _ANTHROPIC_STATUS.get(kind or "", 500)
    message = message or f"The upstream provider answered with HTTP {status}."
    too_long = code == "context_length_exceeded" or message.lower().startswith(_TOO_LONG)
    if target is Protocol.MESSAGES:
        if too_long and not message.lower().startswith(_TOO_LONG):
            message = f"{_TOO_LONG}: {message}"
        anthropic_type = _ANTHROPIC_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": anthropic_type, "message": message}}
    openai_type = _OPENAI_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    if kind == "overloaded_error":
        openai_type = "server_overloaded"
    if too_long:
        code = "context_length_exceeded"
    code = code or _OPENAI_CODES.get(status)
    param = error.get("param") if isinstance(error.get("param"), str) else None
    if target is Protocol.RESPONSES:
        return {"code": code or openai_type, "message": message, "param": param}
    return {"error": {"message": message, "type": openai_type, "param": param, "code": code}}


def _error_object(body: bytes) -> JSON:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    inner = parsed.get("error")
    return inner if isinstance(inner, dict) else parsed if "message" in parsed else {}
