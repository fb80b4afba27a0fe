"""Non-streamed answers: Anthropic Messages ⇄ OpenAI Chat Completions.

Thinking becomes the message's ``reasoning_content`` (the field DeepSeek, vLLM and LiteLLM use) and
never text; tool_use blocks become ``tool_calls`` in order (parallel calls stay parallel); usage keeps
the cache reads and writes (see ``base.Usage``). The ``model`` of the answer is the name the client
asked for.
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import CHAT_TO_MESSAGES_STOP, JSON, MESSAGES_TO_CHAT_STOP, Usage, new_id, now


def messages_to_chat_response(body: JSON, *, model: str) -> JSON:
    """An Anthropic ``message`` object as a ``chat.completion`` object."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[JSON] = []
    for block in body.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    message: JSON = {"role": "assistant", "content": "".join(texts) or None, "refusal": None}
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    if calls:
        message["tool_calls"] = calls
    finish = MESSAGES_TO_CHAT_STOP.get(body.get("stop_reason") or "end_turn", "stop")
    return {
        "id": chat_id(body.get("id")),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": Usage.from_messages(body.get("usage")).to_chat(),
    }


def chat_to_messages_response(body: JSON, *, model: str) -> JSON:
    """A ``chat.completion`` object (its first choice) as an Anthropic ``message`` object."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content") or message.get("refusal")
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": tool_input(fn.get("arguments"))}
        )
    stop = CHAT_TO_MESSAGES_STOP.get(choice.get("finish_reason") or "stop", "end_turn")
    if message.get("tool_calls"):
        stop = "tool_use"  # some servers say "stop" after tool calls
    return {
        "id": message_id(body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": Usage.from_chat(body.get("usage")).to_messages(),
    }


def tool_input(arguments: Any) -> JSON:
    """Tool-call arguments (a JSON string) as an Anthropic ``input`` object; broken JSON kept visible."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        return {"_unparsed_arguments": arguments}
    return value if isinstance(value, dict) else {"_unparsed_arguments": arguments}


def chat_id(upstream: Any) -> str:
    return upstream if isinstance(upstream, str) and upstream else new_id("chatcmpl-")


def message_id(upstream: Any) -> str:
    if isinstance(upstream, str) and upstream:
        return upstream if upstream.startswith("msg_") else "msg_" + upstream
    return new_id("msg_")
