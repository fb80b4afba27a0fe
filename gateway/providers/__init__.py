"""Upstream kinds as adapters (:mod:`gateway.providers.base`): ``adapter(kind)`` finds one."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.providers.base import Provider


def adapter(kind: str) -> Provider:
    """The adapter for a provider kind (``openai``, ``openai-chat``, ``anthropic``, ``demo``)."""
    return _adapters()[kind]


@functools.cache
def _adapters() -> dict[str, Provider]:
    from gateway.providers import anthropic, demo, openai

    return {p.kind: p for p in (openai.PROVIDER, openai.CHAT_ONLY, anthropic.PROVIDER, demo.PROVIDER)}
