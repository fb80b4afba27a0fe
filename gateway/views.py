"""The proxy's endpoints: which path speaks which protocol, and the handlers (thin).

Every POST endpoint is the same pipeline (authenticate → permissions → body → scope → route →
throttle → forward); only ``/v1/models`` is answered by Keygate itself (shapes in
:mod:`gateway.wire`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.exceptions import ModelNotFound
from gateway.http import GatewayRequest, Send, base_headers
from gateway.wire import Dialect, Response, mask_echo, model_list, model_object

if TYPE_CHECKING:
    from gateway.routing import RoutingTable


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    dialect: Dialect
    methods: tuple[str, ...]
    proxied: bool = True
    requires_anthropic_version: bool = False


ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint("chat/completions", Dialect.OPENAI, ("POST",)),
    "/v1/completions": Endpoint("completions", Dialect.OPENAI, ("POST",)),
    "/v1/embeddings": Endpoint("embeddings", Dialect.OPENAI, ("POST",)),
    "/v1/images/generations": Endpoint("images/generations", Dialect.OPENAI, ("POST",)),
    "/v1/responses": Endpoint("responses", Dialect.OPENAI, ("POST",)),
    "/v1/messages": Endpoint("messages", Dialect.ANTHROPIC, ("POST",), requires_anthropic_version=True),
    "/v1/messages/count_tokens": Endpoint(
        "messages/count_tokens", Dialect.ANTHROPIC, ("POST",), requires_anthropic_version=True
    ),
    "/v1/models": Endpoint("models", Dialect.OPENAI, ("GET", "HEAD"), proxied=False),
}
MODEL_DETAIL = Endpoint("models/detail", Dialect.OPENAI, ("GET", "HEAD"), proxied=False)

#: Paths that other gateways' clients call with another prefix, served as their /v1/ twin:
#: AIGNE Hub-style ``{base}/api/v1/...`` (only these exact paths: /api/v1/ is also Keygate's
#: management API), and a base URL that already ended in /v1 (``/v1/v1/...``).
ALIASES: dict[str, str] = {
    "/api/v1/chat/completions": "/v1/chat/completions",
    "/api/v1/embeddings": "/v1/embeddings",
    "/api/v1/images/generations": "/v1/images/generations",
}
#: Endpoint paths called without /v1: answered with a JSON 404 that names the base URL to use.
MISSING_V1 = frozenset(path.removeprefix("/v1") for path in ENDPOINTS)


def gateway_path(path: str) -> str | None:
    """The /v1/ path a request for ``path`` is served as, or None when it is not the gateway's."""
    if path.startswith("/v1/v1/"):
        return path[3:]
    if path.startswith("/v1/"):
        return path
    return ALIASES.get(path.rstrip("/"))


def match(path: str) -> Endpoint | None:
    path = gateway_path(path) or path
    endpoint = ENDPOINTS.get(path.rstrip("/") if len(path) > 4 else path)
    if endpoint is None and path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
        return MODEL_DETAIL
    return endpoint


def dialect_of(scope: Any, endpoint: Endpoint | None) -> Dialect:
    """The dialect of a request's errors. A protocol's endpoint speaks its own; an unknown path
    under /v1/ speaks the one its path belongs to (``/v1/messages…`` → Anthropic, else OpenAI).
    ``/v1/models`` (both protocols share it) and endpoint paths called without /v1 speak
    Anthropic's when the path or the headers (``anthropic-version``, ``x-api-key``) say so."""
    path = scope["path"]
    if endpoint is not None and endpoint.proxied:
        return endpoint.dialect
    if endpoint is None and path.startswith("/v1/"):
        return Dialect.ANTHROPIC if path.startswith("/v1/messages") else Dialect.OPENAI
    if "/messages" in path:
        return Dialect.ANTHROPIC
    for name, _ in scope["headers"]:
        if name in (b"anthropic-version", b"x-api-key"):
            return Dialect.ANTHROPIC
    return Dialect.OPENAI


def not_found_message(scope: Any) -> str:
    path = mask_echo(scope["path"])[:200]
    if scope["path"].rstrip("/") in MISSING_V1:
        return f"Unknown endpoint {scope['method']} {path}: use the base URL https://<this host>/v1."
    return f"Unknown endpoint {scope['method']} {path}."


def visible_models(request: GatewayRequest, table: RoutingTable) -> list[str]:
    """The models this key may use: routed names matching its patterns, and its concrete patterns."""
    key = request.auth
    names = [name for name in table.listed_models() if key.allows_model(name)]
    for pattern in key.model_patterns:
        if "*" not in pattern and pattern not in names and table.resolve(pattern) is not None:
            names.append(pattern)
    return names


def _owner(name: str, table: RoutingTable) -> str:
    route = table.resolve(name)
    return route.upstream.name if route else "keygate"


async def answer_models(request: GatewayRequest, table: RoutingTable, send: Send, created: int) -> None:
    """``GET /v1/models`` (the OpenAI shape, or Anthropic's when ``anthropic-version`` is sent) and
    ``GET /v1/models/{id}``; ``HEAD`` answers the same headers without a body."""
    anthropic = "anthropic-version" in request.headers
    if request.endpoint == "models":
        models = [(name, _owner(name, table)) for name in visible_models(request, table)]
        payload = model_list(models, created, anthropic=anthropic)
    else:
        name = (_path(request))[len("/v1/models/") :]
        if not request.auth.allows_model(name) or table.resolve(name) is None:
            raise ModelNotFound(name)
        payload = model_object(name, _owner(name, table), created, anthropic=anthropic)
    response = Response.json(200, payload, base_headers(request))
    if request.method == "HEAD":
        response.headers.append((b"content-length", str(len(response.body)).encode()))
        response.body = b""
    await response.send(send)


def _path(request: GatewayRequest) -> str:
    return gateway_path(request.path) or request.path
