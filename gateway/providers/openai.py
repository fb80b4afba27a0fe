"""OpenAI-compatible upstreams: ``{base_url}/{endpoint}`` with ``Authorization: Bearer``.

``base_url`` includes the version, as ``OPENAI_BASE_URL`` does (``https://api.openai.com/v1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.http import GatewayRequest
    from gateway.routing import Upstream

# Client headers worth forwarding; everything else (cookies, the client's credential,
# hop-by-hop headers, forwarding headers) stays behind.
PASSTHROUGH = ("openai-beta",)


def build(upstream: Upstream, request: GatewayRequest) -> tuple[str, dict[str, str]]:
    headers = {
        "content-type": "application/json",
        "accept": request.headers.get("accept", "application/json, text/event-stream"),
        "accept-encoding": "identity",
        "user-agent": "Keygate",
        "x-request-id": request.request_id,
    }
    for name in PASSTHROUGH:
        if name in request.headers:
            headers[name] = request.headers[name]
    if upstream.credential:
        headers["authorization"] = f"Bearer {upstream.credential}"
    return f"{upstream.base_url}/{request.endpoint}", headers
