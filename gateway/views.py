"""The proxy's endpoints: which path speaks which protocol, and the handlers (thin).

Every POST endpoint is the same pipeline (authenticate → permissions → body → scope → route →
throttle → forward); only ``/v1/models`` is answered by Keygate itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from gateway.dialects import JSON_CONTENT_TYPE, Dialect
from gateway.exceptions import BadRequest, ModelNotFound
from gateway.http import GatewayRequest, Send, base_headers, safe_model, send_response
from gateway.models import ProviderKind

if TYPE_CHECKING:
    from gateway.routing import RoutingTable


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    dialect: Dialect
    methods: tuple[str, ...]
    proxied: bool = True
    requires_anthropic_version: bool = False


OPENAI_KINDS = frozenset({ProviderKind.OPENAI, ProviderKind.DEMO})
ANTHROPIC_KINDS = frozenset({ProviderKind.ANTHROPIC, ProviderKind.DEMO})

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
    "/v1/models": Endpoint("models", Dialect.OPENAI, ("GET",), proxied=False),
}
MODEL_DETAIL = Endpoint("models/detail", Dialect.OPENAI, ("GET",), proxied=False)


def match(path: str) -> Endpoint | None:
    endpoint = ENDPOINTS.get(path.rstrip("/") if len(path) > 4 else path)
    if endpoint is None and path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
        return MODEL_DETAIL
    return endpoint


def dialect_for_path(path: str) -> Dialect:
    return Dialect.ANTHROPIC if path.startswith("/v1/messages") else Dialect.OPENAI


def check_protocol(request: GatewayRequest, kind: str, model: str) -> None:
    """A model routed to an Anthropic provider cannot be called with the OpenAI protocol, and vice versa."""
    allowed = ANTHROPIC_KINDS if request.dialect is Dialect.ANTHROPIC else OPENAI_KINDS
    if kind not in allowed:
        other = "/v1/chat/completions" if kind == ProviderKind.OPENAI else "/v1/messages"
        raise BadRequest(
            f"The model '{safe_model(model)}' is served by an {ProviderKind(kind).label} provider; "
            f"call it through {other}.",
            param="model",
        )


def visible_models(request: GatewayRequest, table: RoutingTable) -> list[str]:
    """The models this key may use: routed names matching its patterns, and its concrete patterns."""
    key = request.auth
    names = [name for name in table.listed_models() if key.allows_model(name)]
    for pattern in key.model_patterns:
        if "*" not in pattern and pattern not in names and table.resolve(pattern) is not None:
            names.append(pattern)
    return names


def _model_object(name: str, request: GatewayRequest, table: RoutingTable, created: int) -> dict:
    route = table.resolve(name)
    owner = route.upstream.name if route else "keygate"
    if "anthropic-version" in request.headers:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        return {"type": "model", "id": name, "display_name": name, "created_at": stamp}
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


async def list_models(request: GatewayRequest, table: RoutingTable, send: Send, created: int) -> None:
    """``GET /v1/models`` in the OpenAI shape, or Anthropic's when ``anthropic-version`` is sent."""
    data = [_model_object(name, request, table, created) for name in visible_models(request, table)]
    if "anthropic-version" in request.headers:
        payload = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    else:
        payload = {"object": "list", "data": data}
    await send_response(send, 200, [JSON_CONTENT_TYPE, *base_headers(request)], orjson.dumps(payload))


async def retrieve_model(request: GatewayRequest, table: RoutingTable, send: Send, created: int) -> None:
    name = request.path[len("/v1/models/") :]
    if not request.auth.allows_model(name) or table.resolve(name) is None:
        raise ModelNotFound(name)
    payload = _model_object(name, request, table, created)
    await send_response(send, 200, [JSON_CONTENT_TYPE, *base_headers(request)], orjson.dumps(payload))
