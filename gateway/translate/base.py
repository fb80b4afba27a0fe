"""What every translation module shares: the protocol names, the refusal error, usage arithmetic, ids.

Usage is kept the way the rest of the gateway counts it (``gateway/sse.py``): ``input_tokens`` is the
*whole* prompt, cached parts included (OpenAI's ``prompt_tokens``), with the cache reads and cache
writes as a breakdown of it. Anthropic reports ``input_tokens`` *without* the cached parts, so the
conversions add and subtract them here, in one place.
"""

from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass
from typing import Any

# Anthropic requires max_tokens; OpenAI-side clients usually omit it. 4096 is the largest value every
# Claude model accepts (Claude 3 Haiku's output limit), so a request that names none never fails for it.
DEFAULT_MAX_TOKENS = 4096

JSON = dict[str, Any]


class Protocol(enum.StrEnum):
    CHAT = "chat"  # POST /v1/chat/completions
    MESSAGES = "messages"  # POST /v1/messages
    RESPONSES = "responses"  # POST /v1/responses


class TranslationError(Exception):
    """A request field that cannot be mapped to the target protocol -> the gateway answers 400."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def refuse(param: str, why: str) -> TranslationError:
    """A TranslationError whose message names the field, e.g. ``refuse("n", "n > 1 ...")``."""
    return TranslationError(f"'{param}': {why}", param=param)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def now() -> int:
    return int(time.time())


@dataclass(slots=True)
class Usage:
    """Token counts of one answer. ``input_tokens`` includes ``cache_read`` and ``cache_creation``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_messages(cls, usage: Any) -> Usage:
        found = cls()
        found.absorb_messages(usage)
        return found

    @classmethod
    def from_chat(cls, usage: Any) -> Usage:
        found = cls()
        found.absorb_chat(usage)
        return found

    @classmethod
    def from_responses(cls, usage: Any) -> Usage:
        found = cls()
        found.absorb_responses(usage)
        return found

    def absorb_messages(self, usage: Any) -> None:
        """Anthropic usage (message_start's, then message_delta's: cumulative, so present counts win)."""
        if not isinstance(usage, dict):
            return
        uncached = self.uncached_input
        if usage.get("input_tokens") is not None:
            uncached = _int(usage["input_tokens"])
        if usage.get("cache_read_input_tokens") is not None:
            self.cache_read_tokens = _int(usage["cache_read_input_tokens"])
        if usage.get("cache_creation_input_tokens") is not None:
            self.cache_creation_tokens = _int(usage["cache_creation_input_tokens"])
        self.input_tokens = uncached + self.cache_read_tokens + self.cache_creation_tokens
        if usage.get("output_tokens") is not None:
            self.output_tokens = _int(usage["output_tokens"])

    def absorb_chat(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        details = usage.get("prompt_tokens_details") or {}
        self.input_tokens = _int(usage.get("prompt_tokens"))
        self.output_tokens = _int(usage.get("completion_tokens"))
        self.cache_read_tokens = _int(details.get("cached_tokens"))
        self.cache_creation_tokens = _int(details.get("cache_write_tokens"))
        self.reasoning_tokens = _int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens"))

    def absorb_responses(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        details = usage.get("input_tokens_details") or {}
        self.input_tokens = _int(usage.get("input_tokens"))
        self.output_tokens = _int(usage.get("output_tokens"))
        self.cache_read_tokens = _int(details.get("cached_tokens"))
        self.cache_creation_tokens = _int(details.get("cache_write_tokens"))
        self.reasoning_tokens = _int((usage.get("output_tokens_details") or {}).get("reasoning_tokens"))

    @property
    def uncached_input(self) -> int:
        return max(self.input_tokens - self.cache_read_tokens - self.cache_creation_tokens, 0)

    def to_messages(self) -> JSON:
        return {
            "input_tokens": self.uncached_input,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
        }

    def to_chat(self) -> JSON:
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {
                "cached_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_creation_tokens,
            },
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def to_responses(self) -> JSON:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {
                "cached_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_creation_tokens,
            },
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# Stop reasons. Chat's "stop" cannot say whether a stop sequence or the end of the turn ended it.
MESSAGES_TO_CHAT_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
CHAT_TO_MESSAGES_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
