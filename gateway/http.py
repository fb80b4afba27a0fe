"""The proxy's request object and the small ASGI helpers around it.

``GatewayRequest`` is deliberately tiny: the proxy path does not build a Django ``HttpRequest``
(middleware, a thread hop, header munging) for every call. It offers what DRF-style policy
classes use — ``headers``, ``auth``, ``user`` — plus what the proxy needs.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from gateway.exceptions import BadRequest, Headers, PayloadTooLarge
from gateway.wire import Dialect, mask_echo

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
MAX_MODEL_LENGTH = 256
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f]")
safe_model = mask_echo  # the name gateway.permissions imports


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


_REQUEST_ID_PREFIX = "req_" + os.urandom(8).hex()
_request_counter = itertools.count(1)


def new_request_id() -> str:
    """A request id unique across processes: a random per-process prefix and a counter.

    Ids identify requests, they authorise nothing, so they need uniqueness, not secrecy (and
    a syscall per request for fresh randomness showed up in profiles).
    """
    return f"{_REQUEST_ID_PREFIX}{next(_request_counter):010x}"


@dataclass(slots=True, eq=False)
class GatewayRequest:
    scope: Scope
    method: str
    path: str
    headers: dict[str, str]
    client_ip: str | None
    request_id: str
    dialect: Dialect
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    body: bytes = b""
    json: dict[str, Any] | None = None
    model: str | None = None
    stream: bool = False
    auth: Any = None
    auth_decision: Any = None
    user: Any = None
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def prefers_api_key_header(self) -> bool:
        return self.dialect is Dialect.ANTHROPIC

    @property
    def debug_auth(self) -> bool:
        return self.headers.get("x-debug-auth", "").lower() == "true"

    @classmethod
    def from_scope(cls, scope: Scope, dialect: Dialect, endpoint: str) -> GatewayRequest:
        raw_headers = scope["headers"]
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers}
        if len(headers) != len(raw_headers):  # a repeated header: its values joined, in order
            headers = {}
            for raw_name, raw_value in raw_headers:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        incoming = headers.get("x-request-id") or headers.get("request-id")
        if incoming and REQUEST_ID_RE.match(incoming):
            request_id = incoming
            if settings.KEYGATE_KEY_PREFIX in request_id:
                # A key pasted as a request id is masked before it is echoed, logged or stored.
                request_id = mask_echo(request_id).replace("…[redacted]", "-redacted")
        else:
            request_id = new_request_id()  # never holds a key: no masking to do
        client = scope.get("client")
        return cls(
            scope=scope,
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            client_ip=client[0] if client else None,
            request_id=request_id,
            dialect=dialect,
            endpoint=endpoint,
        )


async def read_body(request: GatewayRequest, receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes (413) before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    # Whole MiB when the limit is one (the default 32 MiB), else bytes: never "0 MiB".
    size = f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"
    return PayloadTooLarge(f"The request body is larger than the {size} this gateway accepts.")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong."""
    if not body:
        raise BadRequest("The request body is empty; send a JSON object.")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"The request body is not valid JSON ({_short(error)}).") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"The request body must be a JSON object, not {type(payload).__name__}.")
    duplicate = duplicate_key(body, payload)
    if duplicate is not None:
        # orjson keeps the last of two "model" keys and Keygate authorises that one, but the
        # raw bytes go upstream, where a parser that keeps the first would escape the scope.
        raise BadRequest(f"The request body has the key '{duplicate}' more than once.", param=duplicate)
    return payload


def duplicate_key(body: bytes, payload: dict[str, Any]) -> str | None:
    """A top-level key that ``body`` (the JSON text of ``payload``) holds twice, or None.

    Fast path, exact: without ``\\u`` or ``\\/`` escapes each key has one spelling (its JSON
    text), so a top-level key whose spelling occurs once in the body occurs once as a key. Only
    when a spelling occurs again (a nested key of the same name, or text quoting it) or escapes
    are present is the body parsed again, recording each object's pairs (``bench/body_check.py``:
    ~0.2 µs per key on the fast path).
    """
    if b"\\u" not in body and b"\\/" not in body:
        for key in payload:
            if body.count(orjson.dumps(key)) != 1:
                break
        else:
            return None
    return _top_level_duplicate(body)


def _top_level_duplicate(body: bytes) -> str | None:
    outermost: list[list[tuple[str, Any]]] = []

    def keep_pairs(pairs: list[tuple[str, Any]]) -> None:
        outermost[:] = [pairs]  # objects close inside out: the last one seen is the top level

    try:
        json.loads(body, object_pairs_hook=keep_pairs)
    except ValueError:  # orjson accepted it; the standard library is only laxer
        return None
    seen: set[str] = set()
    for key, _ in outermost[0] if outermost else ():
        if key in seen:
            return key
        seen.add(key)
    return None


def require_model(payload: dict[str, Any]) -> str:
    model = payload.get("model")
    if model is None:
        raise BadRequest("You must provide a model parameter.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise BadRequest("The 'model' parameter must be a non-empty string.", param="model")
    if len(model) > MAX_MODEL_LENGTH or _CONTROL_CHARACTER.search(model):
        raise BadRequest("The 'model' parameter is not a valid model name.", param="model")
    return model


def _short(error: Exception) -> str:
    text = str(error)
    return text if len(text) <= 120 else text[:117] + "..."


def base_headers(request: GatewayRequest) -> Headers:
    """Headers every proxy response carries: the request id, in both spellings."""
    request_id = request.request_id.encode()
    return [(b"x-request-id", request_id), (b"request-id", request_id), *request.extra_headers]
