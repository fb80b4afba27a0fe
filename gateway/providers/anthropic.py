"""Anthropic upstreams: ``{base_url}/v1/{endpoint}`` with ``x-api-key`` and ``anthropic-version``.

``base_url`` excludes the version, as ``ANTHROPIC_BASE_URL`` does (``https://api.anthropic.com``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.providers.base import HTTPProvider

if TYPE_CHECKING:
    from gateway.http import GatewayRequest
    from gateway.routing import Upstream

DEFAULT_VERSION = "2023-06-01"


class AnthropicProvider(HTTPProvider):
    kind = "anthropic"
    endpoints = frozenset({"messages", "messages/count_tokens"})
    forwarded_headers = ("anthropic-beta",)

    def url(self, upstream: Upstream, endpoint: str) -> str:
        return f"{upstream.base_url}/v1/{endpoint}"

    def credential_headers(self, upstream: Upstream, request: GatewayRequest | None) -> dict[str, str]:
        version = request.headers.get("anthropic-version") if request is not None else None
        headers = {"anthropic-version": version or DEFAULT_VERSION}
        if upstream.credential:
            headers["x-api-key"] = upstream.credential
        return headers


PROVIDER = AnthropicProvider()
