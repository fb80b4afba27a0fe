"""Requests, OpenAI Chat Completions -> the Responses API (the reverse and the contract: ``responses.py``).

Chat messages become Responses input items: system, developer and user messages keep their role (parts as
``input_text``, ``input_image`` or inline ``input_file``), an assistant message becomes an ``output_text``
message item followed by one ``function_call`` item per tool call, and a ``tool`` message becomes a
``function_call_output`` item. ``max_completion_tokens`` (or ``max_tokens``) -> ``max_output_tokens``,
``reasoning_effort`` -> ``reasoning.effort``, ``response_format`` -> ``text.format``; only function tools
pass. ``store`` is always false (nothing is kept upstream); ``n`` > 1 and the fields the Responses API
lacks (``logit_bias``, ``logprobs``, ``seed``, the penalties, ``stop``, ``audio``, ``functions``) are refused.
"""

from __future__ import annotations

from .base import JSON, refuse


def chat_to_responses_request(body: JSON) -> JSON:
    """A Chat Completions request body as a Responses request body (``store`` is always false)."""
    if (body.get("n") or 1) != 1:
        raise refuse("n", "n > 1 is not supported by the Responses API; send n separate requests")
    for name in (
        "logit_bias",
        "logprobs",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "stop",
        "audio",
        "functions",
    ):
        if body.get(name):
            raise refuse(name, "has no Responses API equivalent")
    out: JSON = {"model": body.get("model"), "store": False}
    items: list[JSON] = []
    for i, message in enumerate(body.get("messages") or []):
        items.extend(_chat_message_to_items(message, f"messages[{i}]"))
    out["input"] = items
    if body.get("max_completion_tokens") or body.get("max_tokens"):
        out["max_output_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens")
    for name in (
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "stream",
        "metadata",
    ):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("tools"):
        out["tools"] = [_chat_tool_to_responses(tool, i) for i, tool in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = {"type": "function", "name": (choice.get("function") or {}).get("name")}
    elif choice is not None:
        out["tool_choice"] = choice
    if body.get("reasoning_effort"):
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    fmt = body.get("response_format")
    if fmt and fmt.get("type") == "json_schema":
        out["text"] = {"format": {"type": "json_schema", **(fmt.get("json_schema") or {})}}
    elif fmt and fmt.get("type") == "json_object":
        out["text"] = {"format": {"type": "json_object"}}
    return out


def _chat_message_to_items(message: JSON, where: str) -> list[JSON]:
    role, content = message.get("role"), message.get("content")
    if role == "tool":
        text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])
        return [{"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": text}]
    if role == "assistant":
        items: list[JSON] = []
        text = (
            content
            if isinstance(content, str)
            else "".join(p.get("text") or p.get("refusal") or "" for p in content or [])
        )
        if text:
            items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": fn.get("name"),
                    "arguments": fn.get("arguments") or "{}",
                }
            )
        return items
    if role not in ("user", "system", "developer"):
        raise refuse(f"{where}.role", f"role {role!r} is not supported")
    if isinstance(content, str):
        return [{"type": "message", "role": role, "content": content}]
    parts = []
    for j, part in enumerate(content or []):
        if part.get("type") == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = part.get("image_url") or {}
            parts.append({"type": "input_image", "image_url": url.get("url"), "detail": url.get("detail") or "auto"})
        elif part.get("type") == "file" and (part.get("file") or {}).get("file_data"):
            parts.append(
                {"type": "input_file", "filename": part["file"].get("filename"), "file_data": part["file"]["file_data"]}
            )
        else:
            raise refuse(f"{where}.content[{j}].type", f"part {part.get('type')!r} has no Responses API equivalent")
    return [{"type": "message", "role": role, "content": parts}]


def _chat_tool_to_responses(tool: JSON, i: int) -> JSON:
    if tool.get("type") != "function":
        raise refuse(f"tools[{i}].type", f"tool type {tool.get('type')!r} is not supported")
    return {"type": "function", **(tool.get("function") or {})}
