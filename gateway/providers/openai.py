"""OpenAI-compatible upstreams: ``{base_url}/{endpoint}`` with ``Authorization: Bearer``.

``base_url`` includes the version, as ``OPENAI_BASE_URL`` does (``https://api.openai.com/v1``).
Kind ``openai-chat`` is the same upstream without the Responses API (vLLM, Ollama, LM Studio and
most OpenAI-compatible servers): Keygate answers ``/v1/responses`` for it by translating to Chat
Completions, so Codex CLI and the Agents SDK work with any model it serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.providers.base import HTTPProvider

if TYPE_CHECKING:
    from gateway.http import GatewayRequest
    from gateway.routing import Upstream


class OpenAIProvider(HTTPProvider):
    kind = "openai"
    endpoints = frozenset({"chat/completions", "completions", "embeddings", "images/generations", "responses"})
    forwarded_headers = ("openai-beta",)

    def url(self, upstream: Upstream, endpoint: str) -> str:
        return f"{upstream.base_url}/{endpoint}"

    def credential_headers(self, upstream: Upstream, request: GatewayRequest | None) -> dict[str, str]:
        return {"authorization": f"Bearer {upstream.credential}"} if upstream.credential else {}


class OpenAIChatProvider(OpenAIProvider):
    kind = "openai-chat"
    endpoints = OpenAIProvider.endpoints - {"responses"}


PROVIDER = OpenAIProvider()
CHAT_ONLY = OpenAIChatProvider()
