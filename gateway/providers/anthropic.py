"""Anthropic upstreams: ``{base_url}/v1/{endpoint}`` with ``x-api-key`` and ``anthropic-version``.

``base_url`` excludes the version, as ``ANTHROPIC_BASE_URL`` does (``https://api.anthropic.com``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.http import GatewayRequest
    from gateway.routing import Upstream

DEFAULT_VERSION = "2023-06-01"
PASSTHROUGH = ("anthropic-beta",)


def build(upstream: Upstream, request: GatewayRequest) -> tuple[str, dict[str, str]]:
    headers = {
        "content-type": "application/json",
        "accept": request.headers.get("accept", "application/json"),
        "accept-encoding": "identity",
        "user-agent": "Keygate",
        "x-request-id": request.request_id,
        "anthropic-version": request.headers.get("anthropic-version") or DEFAULT_VERSION,
    }
    for name in PASSTHROUGH:
        if name in request.headers:
            headers[name] = request.headers[name]
    if upstream.credential:
        headers["x-api-key"] = upstream.credential
    return f"{upstream.base_url}/v1/{request.endpoint}", headers
