"""One answer written in each protocol, and its meaning read back from any of them.

An answer's *meaning* is what a client acts on: text, reasoning, tool calls (id, name, arguments),
why it stopped (in chat's words) and the four usage counts. Translations must keep it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gateway.translate import Protocol


@dataclass(frozen=True)
class Answer:
    text: str = ""
    reasoning: str = ""
    calls: tuple[tuple[str, str, str], ...] = ()  # (id, name, arguments JSON)
    stop: str = "stop"  # stop | length | tool_calls
    usage: tuple[int, int, int, int] = (10, 5, 0, 0)  # input (all), output, cache read, cache creation
    extra: dict = field(default_factory=dict, compare=False)


def as_chat(a: Answer) -> dict:
    message: dict = {"role": "assistant", "content": a.text or None}
    if a.reasoning:
        message["reasoning_content"] = a.reasoning
    if a.calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": args}} for i, n, args in a.calls
        ]
    inp, out, read, created = a.usage
    usage = {
        "prompt_tokens": inp,
        "completion_tokens": out,
        "total_tokens": inp + out,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": created},
    }
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "message": message, "finish_reason": a.stop}],
        "usage": usage,
    }


def as_messages(a: Answer) -> dict:
    content: list[dict] = []
    if a.reasoning:
        content.append({"type": "thinking", "thinking": a.reasoning, "signature": "sig"})
    if a.text:
        content.append({"type": "text", "text": a.text})
    content += [{"type": "tool_use", "id": i, "name": n, "input": json.loads(args)} for i, n, args in a.calls]
    inp, out, read, created = a.usage
    usage = {
        "input_tokens": inp - read - created,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": created,
    }
    stop = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}[a.stop]
    return {
        "id": "msg_up",
        "type": "message",
        "role": "assistant",
        "model": "up",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def as_responses(a: Answer) -> dict:
    output: list[dict] = []
    if a.reasoning:
        output.append({"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": a.reasoning}]})
    if a.text:
        output.append(
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": a.text, "annotations": []}],
            }
        )
    output += [
        {"id": f"fc_{k}", "type": "function_call", "status": "completed", "call_id": i, "name": n, "arguments": args}
        for k, (i, n, args) in enumerate(a.calls)
    ]
    inp, out, read, created = a.usage
    usage = {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": read, "cache_write_tokens": created},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }
    truncated = a.stop == "length"
    return {
        "id": "resp_up",
        "object": "response",
        "created_at": 1,
        "status": "incomplete" if truncated else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "model": "up",
        "output": output,
        "usage": usage,
    }


AS = {Protocol.CHAT: as_chat, Protocol.MESSAGES: as_messages, Protocol.RESPONSES: as_responses}


def meaning(answer: dict, protocol: Protocol) -> Answer:
    """Read an answer (non-streamed object, or a reassembled stream) of ``protocol`` back as an Answer."""
    if protocol is Protocol.CHAT:
        message = answer["choices"][0]["message"] if "choices" in answer else answer["message"]
        finish = answer["choices"][0]["finish_reason"] if "choices" in answer else answer["finish_reason"]
        u = answer["usage"]
        details = u.get("prompt_tokens_details") or {}
        calls = tuple(
            (c["id"], c["function"]["name"], _canon(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        )
        usage = (
            u["prompt_tokens"],
            u["completion_tokens"],
            details.get("cached_tokens", 0),
            details.get("cache_write_tokens", 0),
        )
        return Answer(message.get("content") or "", message.get("reasoning_content") or "", calls, finish, usage)
    if protocol is Protocol.MESSAGES:
        blocks = answer["content"]
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        reasoning = "".join(b["thinking"] for b in blocks if b["type"] == "thinking")
        calls = tuple((b["id"], b["name"], _canon(json.dumps(b["input"]))) for b in blocks if b["type"] == "tool_use")
        u = answer["usage"]
        read, created = u.get("cache_read_input_tokens", 0), u.get("cache_creation_input_tokens", 0)
        stop = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls"}[answer["stop_reason"]]
        return Answer(
            text, reasoning, calls, stop, (u["input_tokens"] + read + created, u["output_tokens"], read, created)
        )
    items = answer["output"]
    text = "".join(p["text"] for i in items if i["type"] == "message" for p in i["content"])
    reasoning = "".join(s["text"] for i in items if i["type"] == "reasoning" for s in i["summary"])
    calls = tuple((i["call_id"], i["name"], _canon(i["arguments"])) for i in items if i["type"] == "function_call")
    u = answer["usage"]
    details = u["input_tokens_details"]
    stop = "tool_calls" if calls else "length" if answer["status"] == "incomplete" else "stop"
    return Answer(
        text,
        reasoning,
        calls,
        stop,
        (u["input_tokens"], u["output_tokens"], details["cached_tokens"], details.get("cache_write_tokens", 0)),
    )


def _canon(arguments: str) -> str:
    return json.dumps(json.loads(arguments or "{}"), sort_keys=True)
