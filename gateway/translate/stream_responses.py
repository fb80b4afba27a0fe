"""Streams: Chat Completions chunks ⇄ Responses API events (Messages streams go through chat).

Responses order produced: response.created, response.in_progress, then per output item
response.output_item.added, its part/deltas (response.content_part.added + response.output_text.delta …,
response.reasoning_summary_part.added + response.reasoning_summary_text.delta …, or
response.function_call_arguments.delta …), their ``.done`` events and response.output_item.done; finally
response.completed (or response.incomplete after a length stop) carrying the whole output and usage.
Every event has a ``sequence_number`` from 0; one item is open at a time; output_index counts items.
"""

from __future__ import annotations

from typing import Any

from .base import JSON, Protocol, Usage, new_id
from .chat_messages_response import chat_id
from .errors import error_payload
from .responses import chat_function_name, function_call_item, message_item, reasoning_item, response_object
from .stream import DONE, ChatChunks, Event, ToolSlots


class ChatToResponses:
    """Chat Completions chunks -> Responses API events."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage = Usage()
        self.id = new_id("resp_")
        self.sequence = 0
        self.started = self.done = False
        self.output: list[JSON] = []
        self.item: JSON | None = None  # the open output item
        self.text = ""  # what the open item has accumulated
        self.slots = ToolSlots()
        self.calls: dict[int, JSON] = {}  # tool slot -> its function_call item
        self.finish: str | None = None

    def event(self, kind: str, **fields: Any) -> Event:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return kind, payload

    def feed(self, name: str | None, payload: Any) -> list[Event]:
        if self.done:
            return []
        if payload == DONE:
            return self.close()
        if not isinstance(payload, dict):
            return []
        if "error" in payload:
            self.done = True
            error = error_payload(payload["error"], Protocol.RESPONSES)
            failed = response_object(self.id, self.model, self.output, self.usage, False, status="failed")
            failed["error"] = {"code": error["code"], "message": error["message"]}
            # The SDKs raise on "error"; Codex reads why a turn failed from response.failed.
            return [self.event("error", **error), self.event("response.failed", response=failed)]
        out = self._start(payload.get("id"))
        if payload.get("usage"):
            self.usage.absorb_chat(payload["usage"])
        for choice in payload.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                out += self._reasoning(reasoning)
            if delta.get("content"):
                out += self._content(delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._call(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                out += self._close_item()
        return out

    def _start(self, upstream_id: Any) -> list[Event]:
        if self.started:
            return []
        self.started = True
        if isinstance(upstream_id, str) and upstream_id:
            self.id = "resp_" + chat_id(upstream_id)
        response = response_object(self.id, self.model, [], None, False, status="in_progress")
        return [
            self.event("response.created", response=response),
            self.event("response.in_progress", response=response),
        ]

    def _open(self, item: JSON) -> list[Event]:
        out = self._close_item()
        self.item, self.text = item, ""
        self.output.append(item)
        return [*out, self.event("response.output_item.added", output_index=len(self.output) - 1, item=dict(item))]

    def _where(self) -> JSON:
        assert self.item is not None
        return {"item_id": self.item["id"], "output_index": len(self.output) - 1}

    def _reasoning(self, text: str) -> list[Event]:
        out: list[Event] = []
        if not self.item or self.item["type"] != "reasoning":
            out = self._open({"id": new_id("rs_"), "type": "reasoning", "summary": []})
            part = {"type": "summary_text", "text": ""}
            out.append(self.event("response.reasoning_summary_part.added", **self._where(), summary_index=0, part=part))
        self.text += text
        return [*out, self.event("response.reasoning_summary_text.delta", **self._where(), summary_index=0, delta=text)]

    def _content(self, text: str) -> list[Event]:
        out: list[Event] = []
        if not self.item or self.item["type"] != "message":
            out = self._open(
                {"id": new_id("msg_"), "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(self.event("response.content_part.added", **self._where(), content_index=0, part=part))
        self.text += text
        delta = self.event("response.output_text.delta", **self._where(), content_index=0, delta=text, logprobs=[])
        return [*out, delta]

    def _call(self, call: JSON) -> list[Event]:
        position, new = self.slots.slot(call)
        fn = call.get("function") or {}
        out: list[Event] = []
        if new:
            item = function_call_item(
                new_id("fc_"), call.get("id") or new_id("call_"), fn.get("name") or "", "", "in_progress"
            )
            out = self._open(item)
            self.calls[position] = item
        item = self.calls[position]
        if fn.get("arguments"):
            item["arguments"] += fn["arguments"]
            if item is self.item:
                self.text = item["arguments"]
            where = {"item_id": item["id"], "output_index": self.output.index(item)}
            out.append(self.event("response.function_call_arguments.delta", **where, delta=fn["arguments"]))
        return out

    def _close_item(self) -> list[Event]:
        item = self.item
        if item is None:
            return []
        where = self._where()
        index = where["output_index"]
        out: list[Event] = []
        if item["type"] == "reasoning":
            done = reasoning_item(item["id"], self.text)
            part = done["summary"][0]
            out.append(self.event("response.reasoning_summary_text.done", **where, summary_index=0, text=self.text))
            out.append(self.event("response.reasoning_summary_part.done", **where, summary_index=0, part=part))
        elif item["type"] == "message":
            done = message_item(item["id"], self.text)
            out.append(self.event("response.output_text.done", **where, content_index=0, text=self.text, logprobs=[]))
            out.append(self.event("response.content_part.done", **where, content_index=0, part=done["content"][0]))
        else:
            done = function_call_item(
                item["id"], item["call_id"], item["name"], item["arguments"], namespace=item.get("namespace")
            )
            out.append(self.event("response.function_call_arguments.done", **where, arguments=item["arguments"]))
        self.output[index] = done
        self.calls = {k: done if v is item else v for k, v in self.calls.items()}
        self.item = None
        return [*out, self.event("response.output_item.done", output_index=index, item=done)]

    def close(self) -> list[Event]:
        if self.done:
            return []
        self.done = True
        out = self._start(None) + self._close_item()
        truncated = self.finish == "length"
        response = response_object(self.id, self.model, self.output, self.usage, truncated)
        kind = "response.incomplete" if truncated else "response.completed"
        return [*out, self.event(kind, response=response)]


class ResponsesToChat(ChatChunks):
    """Responses API events -> Chat Completions chunks."""

    def __init__(self, model: str, include_usage: bool) -> None:
        super().__init__(model, include_usage)
        self.calls: dict[str, int] = {}  # function_call item id -> chat tool index

    def feed(self, name: str | None, payload: Any) -> list[Event]:
        if self.done or not isinstance(payload, dict):
            return []
        kind = payload.get("type") or name
        out: list[Event] = []
        if not self.started and kind not in ("error", "response.failed"):
            self.started = True
            response_id = (payload.get("response") or {}).get("id")
            if response_id:
                self.id = "chatcmpl-" + response_id
            out.append(self.chunk({"role": "assistant", "content": ""}))
        if kind == "response.output_item.added":
            item = payload.get("item") or {}
            if item.get("type") == "function_call":
                index = self.calls[item.get("id") or ""] = len(self.calls)
                fn = {"name": chat_function_name(item), "arguments": item.get("arguments") or ""}
                out.append(
                    self.chunk(
                        {
                            "tool_calls": [
                                {"index": index, "id": item.get("call_id"), "type": "function", "function": fn}
                            ]
                        }
                    )
                )
        elif kind == "response.output_text.delta" and payload.get("delta"):
            out.append(self.chunk({"content": payload["delta"]}))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta") and payload.get(
            "delta"
        ):
            out.append(self.chunk({"reasoning_content": payload["delta"]}))
        elif kind == "response.refusal.delta" and payload.get("delta"):
            out.append(self.chunk({"refusal": payload["delta"]}))
        elif kind == "response.function_call_arguments.delta" and payload.get("delta"):
            index = self.calls.get(payload.get("item_id") or "", 0)
            out.append(self.chunk({"tool_calls": [{"index": index, "function": {"arguments": payload["delta"]}}]}))
        elif kind in ("response.completed", "response.incomplete"):
            response = payload.get("response") or {}
            self.usage.absorb_responses(response.get("usage"))
            reason = (response.get("incomplete_details") or {}).get("reason")
            finish = (
                "tool_calls"
                if self.calls
                else "length"
                if reason == "max_output_tokens"
                else "content_filter"
                if reason
                else "stop"
            )
            out += self.close(finish)
        elif kind in ("error", "response.failed"):
            self.done = True
            error = (payload.get("response") or {}).get("error") or payload
            out.append((None, error_payload(error, Protocol.CHAT)))
        return out

    def close(self, finish: str | None = None) -> list[Event]:
        if self.done:
            return []
        self.done = True
        out = [] if self.started else [self.chunk({"role": "assistant", "content": ""})]
        out.append(self.chunk({}, finish or ("tool_calls" if self.calls else "stop")))
        if self.include_usage:
            base = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
            out.append((None, {**base, "choices": [], "usage": self.usage.to_chat()}))
        out.append((None, DONE))
        return out
