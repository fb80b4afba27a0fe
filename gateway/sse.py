"""Server-sent events passing through the proxy: forwarded as they arrive, watched for usage.

The tap forwards every *complete* event (up to its blank line) the moment it has it; only a
trailing partial event waits for its end, since no SSE client can use half an event. Events
are not re-encoded. Events that mention ``"usage"`` are parsed to keep the token counts:

- OpenAI chat/completions: the final chunk's ``usage`` (we ask for it with
  ``stream_options.include_usage``; when the client did not, that extra chunk is dropped so
  clients that index ``choices[0]`` never see an empty list);
- OpenAI responses: ``response.completed`` → ``response.usage``;
- Anthropic messages: ``message_start`` → ``message.usage``, then ``message_delta`` → ``usage``
  (cumulative, so later counts replace earlier ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

# What ends an event: a blank line, in any of the three line-break styles SSE allows.
_SEPARATORS = (b"\r\n\r\n", b"\n\n", b"\r\r")
EVENT_END_RE = re.compile(b"|".join(map(re.escape, _SEPARATORS)))
# Only events carrying a usage *object* are parsed ("usage": null rides on every OpenAI chunk).
USAGE_RE = re.compile(rb'"usage"\s*:\s*\{')


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def absorb(self, usage: Any) -> None:
        """Take counts from an OpenAI or Anthropic ``usage`` object (later values replace)."""
        if not isinstance(usage, dict):
            return
        for name in ("prompt_tokens", "input_tokens"):
            value = usage.get(name)
            if isinstance(value, int) and value >= 0:
                cached = sum(
                    usage.get(extra, 0) or 0
                    for extra in ("cache_creation_input_tokens", "cache_read_input_tokens")
                    if isinstance(usage.get(extra, 0), int)
                )
                self.input_tokens = value + cached
                break
        for name in ("completion_tokens", "output_tokens"):
            value = usage.get(name)
            if isinstance(value, int) and value >= 0:
                self.output_tokens = value
                break

    def absorb_body(self, payload: Any) -> None:
        """Find ``usage`` in a response or event object, wherever the protocol puts it."""
        if not isinstance(payload, dict):
            return
        if "usage" in payload:
            self.absorb(payload["usage"])
        for container in ("message", "response"):
            inner = payload.get(container)
            if isinstance(inner, dict) and "usage" in inner:
                self.absorb(inner["usage"])


def _last_event_end(data: bytes) -> int:
    """The offset just past the last blank line (event separator) in ``data``, or -1."""
    if data.endswith(_SEPARATORS):  # the usual chunk: whole events, nothing after the last
        return len(data)
    ends = [data.rfind(sep) + len(sep) for sep in _SEPARATORS if sep in data]
    return max(ends) if ends else -1


def _event_data(event: bytes) -> bytes:
    lines = [line[5:].lstrip(b" ") for line in event.splitlines() if line.startswith(b"data:")]
    return b"\n".join(lines)


class SSETap:
    """Feed upstream bytes; get back the bytes to forward now. Collects ``usage``."""

    def __init__(self, *, drop_injected_usage: bool = False) -> None:
        self.usage = Usage()
        self.saw_usage = False
        self.events = 0
        self._pending = b""
        self._drop_injected_usage = drop_injected_usage

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        cut = _last_event_end(data)
        if cut < 0:
            self._pending = data
            return b""
        complete, self._pending = data[:cut], data[cut:]
        if USAGE_RE.search(complete) is None:
            self.events += complete.count(b"data:")
            return complete
        return self._inspect(complete)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._inspect(rest) if USAGE_RE.search(rest) else rest

    def _inspect(self, block: bytes) -> bytes:
        kept: list[bytes] = []
        position = 0
        for end in EVENT_END_RE.finditer(block):
            event = block[position : end.end()]
            position = end.end()
            if self._handle(event):
                kept.append(event)
        tail = block[position:]
        if tail and self._handle(tail):
            kept.append(tail)
        return b"".join(kept)

    def _handle(self, event: bytes) -> bool:
        """Record usage from ``event``; False when the event must not reach the client."""
        self.events += 1
        if USAGE_RE.search(event) is None:
            return True
        try:
            payload = orjson.loads(_event_data(event))
        except orjson.JSONDecodeError:
            return True
        if not isinstance(payload, dict):
            return True
        self.usage.absorb_body(payload)
        self.saw_usage = True
        injected = self._drop_injected_usage and payload.get("choices") == [] and "usage" in payload
        return not injected


class SSEParser:
    """Split an upstream's SSE bytes into ``(event name or None, data)`` pairs, one per complete
    event (for translation, which needs each event whole; the pass-through path uses SSETap)."""

    def __init__(self) -> None:
        self._pending = b""
        self.events = 0

    def feed(self, chunk: bytes) -> list[tuple[str | None, bytes]]:
        data = self._pending + chunk if self._pending else chunk
        cut = _last_event_end(data)
        if cut < 0:
            self._pending = data
            return []
        complete, self._pending = data[:cut], data[cut:]
        return self._parse(complete)

    def flush(self) -> list[tuple[str | None, bytes]]:
        rest, self._pending = self._pending, b""
        return self._parse(rest) if rest.strip() else []

    def _parse(self, block: bytes) -> list[tuple[str | None, bytes]]:
        parsed: list[tuple[str | None, bytes]] = []
        for raw in EVENT_END_RE.split(block):
            name: str | None = None
            data: list[bytes] = []
            for line in raw.splitlines():
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode("utf-8", "replace")
                elif line.startswith(b"data:"):
                    data.append(line[5:].lstrip(b" "))
            if name is not None or data:
                self.events += 1
                parsed.append((name, b"\n".join(data)))
        return parsed
