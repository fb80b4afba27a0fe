"""Streams: upstream SSE events of one protocol -> client SSE events of another, one event at a time.

A *stage* turns one parsed upstream event ``(name, payload)`` into a list of client events; payload is a
dict or ``DONE`` (chat's ``[DONE]``). ``StreamTranslator`` parses, runs the stages (Responses ⇄ Messages
is two stages through chat), encodes, and keeps the usage the upstream reported. Nothing is buffered
beyond one event: a delta goes out as soon as the event that carries it arrives.

Anthropic order produced: message_start, ping, then per block content_block_start / *_delta /
content_block_stop (one block open at a time, indices 0, 1, …), message_delta (stop_reason, usage),
message_stop. Chat chunks: a role chunk, content / reasoning_content / tool_calls deltas (tool indices
0, 1, … in call order, the first fragment carrying id and name), a finish_reason chunk, a usage chunk
(``choices: []``), ``[DONE]``.
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import CHAT_TO_MESSAGES_STOP, JSON, MESSAGES_TO_CHAT_STOP, Protocol, Usage, new_id, now
from .chat_messages_response import chat_id, message_id
from .errors import error_payload

DONE = "[DONE]"
Event = tuple[str | None, Any]  # (SSE event name, payload dict | DONE)


class ToolSlots:
    """Which tool call a chat ``tool_calls`` fragment belongs to. Calls are told apart by ``index`` and
    also by ``id``: some OpenAI-compatible servers send parallel calls all at index 0, each with its id."""

    def __init__(self) -> None:
        self.latest: dict[Any, int] = {}  # the chat index -> the newest call (slot) seen at it
        self.ids: list[Any] = []

    def slot(self, call: JSON) -> tuple[int, bool]:
        """(slot of the call this fragment continues or starts, whether it starts a new one)."""
        index = call.get("index", len(self.ids))
        slot, call_id = self.latest.get(index), call.get("id")
        if slot is None or (call_id and self.ids[slot] and call_id != self.ids[slot]):
            self.ids.append(call_id)
            slot = self.latest[index] = len(self.ids) - 1
            return slot, True
        return slot, False


class ChatChunks:
    """What every translator *to* Chat Completions chunks shares: one id, one creation time,
    the model, the usage gathered so far, and the chunk envelope."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model, self.include_usage = model, include_usage
        self.usage = Usage()
        self.id, self.created = new_id("chatcmpl-"), now()
        self.started = self.done = False

    def chunk(self, delta: JSON, finish: str | None = None) -> Event:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return None, {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }


class MessagesToChat(ChatChunks):
    """Anthropic Messages events -> Chat Completions chunks."""

    def __init__(self, model: str, include_usage: bool) -> None:
        super().__init__(model, include_usage)
        self.tools: dict[int, int] = {}  # Anthropic block index -> chat tool index
        self.finish: str | None = None

    def feed(self, name: str | None, payload: Any) -> list[Event]:
        if self.done or not isinstance(payload, dict):
            return []
        kind = payload.get("type") or name
        if kind == "message_start":
            message = payload.get("message") or {}
            self.id = chat_id(message.get("id"))
            self.usage.absorb_messages(message.get("usage"))
            self.started = True
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tools[payload.get("index", 0)] = len(self.tools)
                call = {
                    "index": index,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                return [self.chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self.chunk({"content": block["text"]})]
            if block.get("type") == "thinking" and block.get("thinking"):
                return [self.chunk({"reasoning_content": block["thinking"]})]
            return []
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta" and delta.get("text"):
                return [self.chunk({"content": delta["text"]})]
            if dtype == "thinking_delta" and delta.get("thinking"):
                return [self.chunk({"reasoning_content": delta["thinking"]})]
            if dtype == "input_json_delta" and delta.get("partial_json"):
                index = self.tools.get(payload.get("index", 0), 0)
                return [
                    self.chunk({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]})
                ]
            return []
        if kind == "message_delta":
            self.usage.absorb_messages(payload.get("usage"))
            stop = (payload.get("delta") or {}).get("stop_reason")
            if stop and self.finish is None:
                self.finish = MESSAGES_TO_CHAT_STOP.get(stop, "stop")
                return [self.chunk({}, self.finish)]
            return []
        if kind == "message_stop":
            return self.close()
        if kind == "error":
            self.done = True
            return [(None, error_payload(payload.get("error") or {}, Protocol.CHAT))]
        return []  # ping, content_block_stop, signature and citation deltas

    def close(self) -> list[Event]:
        if self.done:
            return []
        self.done = True
        out = [] if self.started else [self.chunk({"role": "assistant", "content": ""})]
        if not self.finish:
            out.append(self.chunk({}, "tool_calls" if self.tools else "stop"))
        if self.include_usage:
            usage_chunk = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
            }
            out.append((None, {**usage_chunk, "choices": [], "usage": self.usage.to_chat()}))
        out.append((None, DONE))
        return out


class ChatToMessages:
    """Chat Completions chunks -> Anthropic Messages events (full order, one open block at a time)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage = Usage()
        self.started = self.done = False
        self.open: str | None = None  # "text" | "thinking" | "tool:<chat index>"
        self.index = -1
        self.slots = ToolSlots()
        self.tool_blocks: dict[int, int] = {}  # tool slot -> Anthropic block index
        self.stop: str | None = None

    def feed(self, name: str | None, payload: Any) -> list[Event]:
        if self.done:
            return []
        if payload == DONE:
            return self.close()
        if not isinstance(payload, dict):
            return []
        if "error" in payload:
            self.done = True
            return [("error", error_payload(payload["error"], Protocol.MESSAGES))]
        out = self._start(payload.get("id"))
        if payload.get("usage"):
            self.usage.absorb_chat(payload["usage"])
        for choice in payload.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                out += self._text("thinking", reasoning)
            if delta.get("content"):
                out += self._text("text", delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._tool(call)
            if choice.get("finish_reason"):
                self.stop = CHAT_TO_MESSAGES_STOP.get(choice["finish_reason"], "end_turn")
                out += self._close_block()
        return out

    def _start(self, upstream_id: Any) -> list[Event]:
        if self.started:
            return []
        self.started = True
        message = {
            "id": message_id(upstream_id),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": Usage().to_messages(),  # chat reports usage only at the end: see message_delta
        }
        return [("message_start", {"type": "message_start", "message": message}), ("ping", {"type": "ping"})]

    def _open_block(self, kind: str, block: JSON) -> list[Event]:
        out = self._close_block()
        self.open, self.index = kind, self.index + 1
        return [
            *out,
            ("content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block}),
        ]

    def _close_block(self) -> list[Event]:
        if self.open is None:
            return []
        self.open = None
        return [("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _delta(self, index: int, delta: JSON) -> Event:
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}

    def _text(self, kind: str, text: str) -> list[Event]:
        out: list[Event] = []
        if self.open != kind:
            block = (
                {"type": "thinking", "thinking": "", "signature": ""}
                if kind == "thinking"
                else {"type": "text", "text": ""}
            )
            out = self._open_block(kind, block)
        field = "thinking" if kind == "thinking" else "text"
        out.append(self._delta(self.index, {"type": f"{field}_delta", field: text}))
        return out

    def _tool(self, call: JSON) -> list[Event]:
        position, new = self.slots.slot(call)
        fn = call.get("function") or {}
        out: list[Event] = []
        if new:
            block = {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": fn.get("name") or "",
                "input": {},
            }
            out = self._open_block(f"tool:{position}", block)
            self.tool_blocks[position] = self.index
        if fn.get("arguments"):
            # A late fragment of an earlier call (never sent by OpenAI) still names that call's block.
            out.append(
                self._delta(self.tool_blocks[position], {"type": "input_json_delta", "partial_json": fn["arguments"]})
            )
        return out

    def close(self) -> list[Event]:
        if self.done:
            return []
        self.done = True
        out = self._start(None) + self._close_block()
        stop = "tool_use" if self.tool_blocks and self.stop in (None, "end_turn") else self.stop or "end_turn"
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": self.usage.to_messages(),
        }
        return [*out, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]


class Passthrough:
    """Same protocol on both sides: events are re-sent as they came (the gateway normally skips this)."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.usage = Usage()

    def feed(self, name: str | None, payload: Any) -> list[Event]:
        if isinstance(payload, dict):
            absorb_usage(self.usage, self.protocol, payload)
        return [(name, payload)]

    def close(self) -> list[Event]:
        return []


def absorb_usage(usage: Usage, protocol: Protocol, payload: JSON) -> None:
    if protocol is Protocol.CHAT:
        usage.absorb_chat(payload.get("usage"))
    elif protocol is Protocol.MESSAGES:
        usage.absorb_messages((payload.get("message") or payload).get("usage"))
    elif payload.get("type") in ("response.completed", "response.incomplete"):
        usage.absorb_responses((payload.get("response") or {}).get("usage"))


def encode(events: list[Event], protocol: Protocol) -> bytes:
    """Client events as SSE bytes: chat sends bare ``data:`` lines, the others name each event."""
    parts = []
    for name, payload in events:
        data = b"[DONE]" if payload == DONE else orjson.dumps(payload)
        if protocol is Protocol.CHAT or name is None:
            parts.append(b"data: " + data + b"\n\n")
        else:
            parts.append(b"event: " + name.encode() + b"\ndata: " + data + b"\n\n")
    return b"".join(parts)


def parse(data: bytes) -> Any:
    """An upstream ``data:`` payload: a dict, DONE, or None when it is not JSON (then it is skipped)."""
    if data.strip() == b"[DONE]":
        return DONE
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
