"""Requests, Anthropic Messages -> OpenAI Chat Completions (the contract is in ``chat_messages.py``).

Text, images (base64 and URL), PDFs, tool_use and tool_result blocks map one to one; the results of a user
turn become ``tool`` messages ahead of its other content, and images inside a tool result follow as user
content (chat tool messages carry text only). ``is_error`` results say so in their text. ``max_tokens``
becomes ``max_completion_tokens`` (what current OpenAI models require and OpenAI-compatible servers accept).
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import JSON, refuse
from .chat_messages import EFFORT_BUDGET, MESSAGES_FIELDS, refuse_unknown


def messages_to_chat_request(body: JSON) -> JSON:
    """An Anthropic Messages request body as a Chat Completions request body."""
    refuse_unknown(body, MESSAGES_FIELDS, "Messages")
    for name in ("top_k", "container", "mcp_servers"):
        if body.get(name) is not None:
            raise refuse(name, "has no Chat Completions equivalent")
    if body.get("service_tier") not in (None, "auto"):
        raise refuse("service_tier", "has no Chat Completions equivalent")
    out: JSON = {"model": body.get("model")}
    messages: list[JSON] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else "\n\n".join(b.get("text", "") for b in _only_text(system))
        messages.append({"role": "system", "content": text})
    for i, message in enumerate(body.get("messages") or []):
        messages.extend(_anthropic_message_to_chat(message, f"messages[{i}]"))
    out["messages"] = messages
    if body.get("max_tokens") is not None:
        out["max_completion_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if (body.get("metadata") or {}).get("user_id"):
        out["user"] = body["metadata"]["user_id"]
    if "stream" in body:
        out["stream"] = body["stream"]
    if body.get("stream"):
        out["stream_options"] = {"include_usage": True}
    if body.get("tools"):
        out["tools"] = [_anthropic_tool_to_chat(tool, i) for i, tool in enumerate(body["tools"])]
        _anthropic_tool_choice_to_chat(body.get("tool_choice"), out)
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens") or 0
        out["reasoning_effort"] = next((e for e, b in EFFORT_BUDGET.items() if b >= budget), "high")
    config = body.get("output_config") or {}
    if config.get("effort"):
        # Anthropic's scale goes past "high" ("xhigh", "max"); "high" is the top every chat server accepts.
        out["reasoning_effort"] = "high" if config["effort"] in ("xhigh", "max") else config["effort"]
    fmt = config.get("format") or body.get("output_format")
    if fmt:
        if fmt.get("type") != "json_schema":
            raise refuse("output_config.format.type", f"{fmt.get('type')!r} is not supported")
        schema = {"name": "output", "schema": fmt.get("schema") or {}, "strict": True}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    return out


def _only_text(blocks: list[JSON]) -> list[JSON]:
    for j, block in enumerate(blocks):
        if block.get("type") != "text":
            raise refuse(f"system[{j}].type", "only text blocks are allowed in system")
    return blocks


def _anthropic_message_to_chat(message: JSON, where: str) -> list[JSON]:
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant"):
        raise refuse(f"{where}.role", f"role {role!r} is not supported")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if role == "assistant":
        return [_anthropic_assistant_to_chat(content or [], where)]
    tool_messages: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(content or []):
        kind, at = block.get("type"), f"{where}.content[{j}]"
        if kind == "tool_result":
            text, images = _tool_result_to_chat(block, at)
            tool_messages.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            parts.extend(images)  # chat tool messages carry text only: images follow as user content
        else:
            parts.append(_anthropic_block_to_part(block, at))
    out = tool_messages
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _anthropic_block_to_part(block: JSON, where: str) -> JSON:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    source = block.get("source") or {}
    if kind == "image":
        if source.get("type") == "base64":
            return {
                "type": "image_url",
                "image_url": {"url": f"data:{source.get('media_type')};base64,{source.get('data')}"},
            }
        if source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": source.get("url")}}
    if kind == "document":
        if source.get("type") == "base64":
            data = f"data:{source.get('media_type')};base64,{source.get('data')}"
            return {"type": "file", "file": {"filename": block.get("title") or "document.pdf", "file_data": data}}
        if source.get("type") == "text":
            return {"type": "text", "text": source.get("data", "")}
    raise refuse(f"{where}.type", f"content block {kind!r} ({source.get('type')}) has no Chat Completions equivalent")


def _tool_result_to_chat(block: JSON, where: str) -> tuple[str, list[JSON]]:
    content = block.get("content")
    images: list[JSON] = []
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            converted = _anthropic_block_to_part(part, f"{where}.content[{j}]")
            if converted["type"] == "text":
                texts.append(converted["text"])
            else:
                images.append(converted)
        text = "\n".join(texts)
    else:
        text = content or ""
    if block.get("is_error"):
        text = f"Error: {text}"  # chat has no error flag on a tool result: say it in the text
    return text, images


def _anthropic_assistant_to_chat(blocks: list[JSON], where: str) -> JSON:
    texts: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
        elif kind not in ("thinking", "redacted_thinking"):
            raise refuse(f"{where}.content[{j}].type", f"assistant block {kind!r} has no Chat Completions equivalent")
    message: JSON = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _anthropic_tool_to_chat(tool: JSON, i: int) -> JSON:
    if tool.get("type") not in (None, "custom"):
        raise refuse(f"tools[{i}].type", f"server tool {tool.get('type')!r} has no Chat Completions equivalent")
    fn: JSON = {"name": tool.get("name"), "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def _anthropic_tool_choice_to_chat(choice: Any, out: JSON) -> None:
    if not choice:
        return
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        raise refuse("tool_choice.type", f"{kind!r} is not supported")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
