"""Stream helpers for the translation tests: build upstream streams from a final answer, run a
StreamTranslator over them, and reassemble client streams while checking their event order."""

from __future__ import annotations

import json
from typing import Any

from gateway.translate import Protocol, StreamTranslator

DONE = "[DONE]"


# ----------------------------------------------------------------------------- running a translator
def parse_sse(raw: bytes) -> list[tuple[str | None, Any]]:
    """Client SSE bytes -> [(event name or None, payload dict or DONE)]; fails on a torn event."""
    assert raw == b"" or raw.endswith(b"\n\n"), raw[-80:]
    events = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        name, data = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data", line
                data.append(value)
        text = "\n".join(data)
        events.append((name, DONE if text == DONE else json.loads(text)))
    return events


def translate_stream(upstream: list[tuple[str | None, Any]], source: Protocol, target: Protocol, **kw: Any):
    """Feed ``upstream`` events one by one, then close: (client events, translator)."""
    translator = StreamTranslator(source=source, target=target, model=kw.pop("model", "client-model"), **kw)
    raw = b""
    for name, payload in upstream:
        data = DONE.encode() if payload == DONE else json.dumps(payload).encode()
        out = translator.feed(name, data)
        parse_sse(out)  # every feed returns whole events only
        raw += out
    raw += translator.close()
    return parse_sse(raw), translator


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or []


# ----------------------------------------------------------------------------- upstream streams
def messages_stream(message: dict, size: int = 3) -> list[tuple[str, dict]]:
    """The SSE events Anthropic would send for ``message`` (text cut into ``size``-char deltas)."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str, dict]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {
            "text": {"type": "text", "text": ""},
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
        }
        first = empty.get(kind) or {**block, "input": {}}
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": first}))
        if kind == "text":
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], size)]
        elif kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], size)]
            deltas.append({"type": "signature_delta", "signature": "sig"})
        else:
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [
                {"type": "input_json_delta", "partial_json": p} for p in _pieces(json.dumps(block["input"]), size)
            ]
        for delta in deltas:
            events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": usage["output_tokens"]}})
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def chat_stream(completion: dict, size: int = 3) -> list[tuple[None, Any]]:
    """The chunks an OpenAI-compatible server would send for ``completion`` with include_usage."""
    head = {"id": completion["id"], "object": "chat.completion.chunk", "created": 1, "model": completion["model"]}
    message, choice = completion["choices"][0]["message"], completion["choices"][0]

    def chunk(delta: dict, finish: str | None = None) -> tuple[None, dict]:
        return None, {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"reasoning_content": p}) for p in _pieces(message.get("reasoning_content") or "", size)]
    events += [chunk({"content": p}) for p in _pieces(message.get("content") or "", size)]
    for index, call in enumerate(message.get("tool_calls") or []):
        fn = call["function"]
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": fn["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        events += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]})
            for p in _pieces(fn["arguments"], size)
        ]
    events.append(chunk({}, choice["finish_reason"]))
    events.append((None, {**head, "choices": [], "usage": completion["usage"]}))
    events.append((None, DONE))
    return events


def responses_stream(response: dict, size: int = 3) -> list[tuple[str, dict]]:
    """The events the Responses API would send for the ``response`` object."""
    events: list[tuple[str, dict]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **fields}))

    emit("response.created", response={**response, "status": "in_progress", "output": [], "usage": None})
    for index, item in enumerate(response["output"]):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            emit(
                "response.output_item.added", output_index=index, item={**item, "content": [], "status": "in_progress"}
            )
            text = item["content"][0]["text"]
            emit("response.content_part.added", **where, content_index=0, part={"type": "output_text", "text": ""})
            for piece in _pieces(text, size):
                emit("response.output_text.delta", **where, content_index=0, delta=piece)
            emit("response.output_text.done", **where, content_index=0, text=text)
        elif item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            text = item["summary"][0]["text"]
            for piece in _pieces(text, size):
                emit("response.reasoning_summary_text.delta", **where, summary_index=0, delta=piece)
        else:
            emit("response.output_item.added", output_index=index, item={**item, "arguments": ""})
            for piece in _pieces(item["arguments"], size):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.incomplete" if response["status"] == "incomplete" else "response.completed", response=response)
    return events


# ----------------------------------------------------------------------------- reassembling client streams
def assemble_chat(events: list, *, complete: bool = True) -> dict:
    """Chat chunks -> the completion they add up to, asserting chat's stream rules on the way."""
    assert events[-1] == (None, DONE) and [e for e in events if e[1] == DONE] == [events[-1]]
    chunks = [payload for _, payload in events[:-1]]
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert len({c["id"] for c in chunks}) == 1
    usage = chunks[-1]
    assert (
        usage["choices"] == []
        and usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + usage["usage"]["completion_tokens"]
    )
    content, reasoning, calls, finishes = "", "", [], []
    for c in chunks[:-1]:
        (choice,) = c["choices"]
        assert not finishes, "nothing may follow the finish_reason chunk but usage"
        delta = choice["delta"]
        content += delta.get("content") or ""
        reasoning += delta.get("reasoning_content") or ""
        for call in delta.get("tool_calls") or []:
            if call["index"] == len(calls):
                assert call["id"] and call["function"]["name"], "a call's first fragment names it"
                calls.append(
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                )
            else:
                assert call["index"] == len(calls) - 1 and "id" not in call, "fragments continue the latest call"
            calls[call["index"]]["function"]["arguments"] += call["function"].get("arguments") or ""
        if choice["finish_reason"]:
            finishes.append(choice["finish_reason"])
    assert len(finishes) == 1
    message = {"role": "assistant", "content": content or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    return {"message": message, "finish_reason": finishes[0], "usage": usage["usage"]}


def assemble_messages(events: list, *, complete: bool = True) -> dict:
    """Anthropic events -> the message they add up to, asserting the full event order (a stream cut
    short, ``complete=False``, may leave a tool's JSON unfinished)."""
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    for name, payload in events:
        assert payload["type"] == name
    message = events[0][1]["message"]
    content: list[dict] = []
    open_index = None
    json_parts: dict[int, str] = {}
    for name, payload in events[1:-2]:
        if name == "ping":
            continue
        if name == "content_block_start":
            assert open_index is None and payload["index"] == len(content), "blocks open one at a time, in order"
            open_index = payload["index"]
            content.append(dict(payload["content_block"]))
        elif name == "content_block_delta":
            assert payload["index"] == open_index
            delta, block = payload["delta"], content[open_index]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "input_json_delta":
                json_parts[open_index] = json_parts.get(open_index, "") + delta["partial_json"]
        else:
            assert name == "content_block_stop" and payload["index"] == open_index
            open_index = None
    assert open_index is None, "every block is stopped before message_delta"
    for index, text in json_parts.items():
        content[index]["input"] = json.loads(text) if text and complete else {}
    final = events[-2][1]
    usage = {**message["usage"], **final["usage"]}
    return {**message, "content": content, "stop_reason": final["delta"]["stop_reason"], "usage": usage}


def assemble_responses(events: list, *, complete: bool = True) -> dict:
    """Responses events -> the final response object, checking sequence, items and deltas agree with it."""
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    assert events[0][0] == "response.created" and events[-1][0] in ("response.completed", "response.incomplete")
    output: list[dict] = []
    open_item = None
    for name, p in events[1:-1]:
        assert p["type"] == name
        if name == "response.output_item.added":
            assert open_item is None and p["output_index"] == len(output)
            open_item = p["output_index"]
            item = dict(p["item"])
            item.setdefault("_text", "")
            output.append(item)
        elif name in (
            "response.output_text.delta",
            "response.reasoning_summary_text.delta",
            "response.function_call_arguments.delta",
        ):
            assert p["output_index"] == open_item and p["item_id"] == output[open_item]["id"]
            output[open_item]["_text"] += p["delta"]
        elif name == "response.output_item.done":
            assert p["output_index"] == open_item
            open_item = None
            output[p["output_index"]] = {**p["item"], "_text": output[p["output_index"]]["_text"]}
    assert open_item is None
    final = events[-1][1]["response"]
    assert len(final["output"]) == len(output)
    for streamed, item in zip(output, final["output"], strict=True):
        if item["type"] == "message":
            assert streamed["_text"] == item["content"][0]["text"]
        elif item["type"] == "reasoning":
            assert streamed["_text"] == item["summary"][0]["text"]
        else:
            assert streamed["_text"] == item["arguments"]
    return final


ASSEMBLE = {Protocol.CHAT: assemble_chat, Protocol.MESSAGES: assemble_messages, Protocol.RESPONSES: assemble_responses}
UPSTREAM = {Protocol.CHAT: chat_stream, Protocol.MESSAGES: messages_stream, Protocol.RESPONSES: responses_stream}
