"""The OpenAI Responses API ⇄ Chat Completions: requests and non-streamed answers.

Responses ⇄ Messages goes through Chat Completions (``__init__`` composes the two steps), so this module
and ``chat_responses`` (Chat -> Responses requests) are the only ones that know Responses items. Contract:

- ``instructions`` and system/developer items ⇄ system messages; ``function_call`` items ⇄ an assistant
  message's ``tool_calls`` (consecutive calls share one message: parallel calls); ``function_call_output``
  ⇄ ``tool`` messages; ``reasoning`` items of earlier turns are left out (prior reasoning is not context);
- ``text.format`` ⇄ ``response_format``, ``reasoning.effort`` ⇄ ``reasoning_effort``,
  ``max_output_tokens`` ⇄ ``max_completion_tokens``;
- nothing is stored: ``previous_response_id``, ``conversation``, ``item_reference`` and ``background``
  are refused; ``store`` is accepted and not honoured; ``include``, ``metadata``, ``client_metadata`` (what
  Codex CLI says about itself), the ``prompt_cache_*`` hints and ``context_management`` (server-side
  compaction: the upstream gets the whole context) are ignored;
- ``namespace`` tools (Codex CLI groups its sub-agent tools so) are flattened: each function inside is
  offered as ``{namespace}--{name}``, and a call to such a name comes back with its ``namespace``;
- built-in tools (web_search, file_search, computer, custom, mcp …) are refused by name.
"""

from __future__ import annotations

from typing import Any

from .base import JSON, Usage, new_id, now, refuse
from .chat_messages import refuse_unknown

RESPONSES_FIELDS = frozenset(
    "model input instructions max_output_tokens temperature top_p stream tools tool_choice parallel_tool_calls"
    " reasoning text store metadata include user safety_identifier prompt_cache_key service_tier truncation"
    " previous_response_id conversation background prompt top_logprobs stream_options max_tool_calls"
    " prompt_cache_retention prompt_cache_options context_management client_metadata".split()
)
_STATEFUL = ("previous_response_id", "conversation", "background", "prompt")
# Joins a namespace and a function name into one Chat/Messages tool name (both allow only [A-Za-z0-9_-];
# "__" would collide with the mcp__server__tool names agents already use).
NAMESPACE_SEPARATOR = "--"


def chat_function_name(item: JSON) -> Any:
    """The Chat Completions name of a Responses ``function_call`` item (namespace joined in)."""
    namespace, name = item.get("namespace"), item.get("name")
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


# ------------------------------------------------------------------------------------ responses -> chat
def responses_to_chat_request(body: JSON) -> JSON:
    """A Responses request body as a Chat Completions request body."""
    refuse_unknown(body, RESPONSES_FIELDS, "Responses")
    for name in _STATEFUL:
        if body.get(name):
            raise refuse(name, "this gateway does not store responses; send the whole conversation as input")
    for name in ("top_logprobs", "max_tool_calls"):
        if body.get(name):
            raise refuse(name, "has no Chat Completions equivalent")
    if body.get("truncation") not in (None, "disabled"):
        raise refuse("truncation", "only 'disabled' is supported")
    out: JSON = {"model": body.get("model")}
    messages: list[JSON] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
    else:
        for i, item in enumerate(items or []):
            _item_to_chat(item, f"input[{i}]", messages)
    out["messages"] = messages
    if body.get("max_output_tokens") is not None:
        out["max_completion_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier", "prompt_cache_key"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("service_tier") not in (None, "auto", "default"):
        out["service_tier"] = body["service_tier"]
    if "stream" in body:
        out["stream"] = body["stream"]
    if body.get("stream"):
        out["stream_options"] = {"include_usage": True}
    if body.get("tools"):
        out["tools"] = _tools_to_chat(body["tools"])
        if body.get("tool_choice") is not None:
            out["tool_choice"] = _tool_choice_to_chat(body["tool_choice"])
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        out["reasoning_effort"] = effort
    text = body.get("text") or {}
    fmt = text.get("format")
    if fmt and fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt and fmt.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif fmt and fmt.get("type") != "text":
        raise refuse("text.format.type", f"{fmt.get('type')!r} is not supported")
    if text.get("verbosity"):
        out["verbosity"] = text["verbosity"]
    return out


def _item_to_chat(item: JSON, where: str, messages: list[JSON]) -> None:
    kind = item.get("type") or "message"
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise refuse(f"{where}.role", f"role {role!r} is not supported")
        content = item.get("content")
        if role == "assistant":
            text = content if isinstance(content, str) else "".join(_output_text(p, where) for p in content or [])
            messages.append({"role": "assistant", "content": text})
        else:
            parts = (
                content
                if isinstance(content, str)
                else [_input_part(p, f"{where}.content[{j}]") for j, p in enumerate(content or [])]
            )
            messages.append({"role": "system" if role == "developer" else role, "content": parts})
    elif kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": chat_function_name(item), "arguments": item.get("arguments") or "{}"},
        }
        last = messages[-1] if messages else None
        if last and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)  # a text and its calls, or parallel calls: one turn
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        if isinstance(output, list):
            output = "".join(_output_text(p, where) for p in output)
        messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": output or ""})
    elif kind != "reasoning":
        raise refuse(f"{where}.type", f"input item {kind!r} has no Chat Completions equivalent")


def _output_text(part: JSON, where: str) -> str:
    if part.get("type") in ("output_text", "input_text", "text"):
        return part.get("text", "")
    if part.get("type") == "refusal":
        return part.get("refusal", "")
    raise refuse(f"{where}.content", f"part {part.get('type')!r} is not supported here")


def _input_part(part: JSON, where: str) -> JSON:
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "input_image" and part.get("image_url"):
        image: JSON = {"url": part["image_url"]}
        if part.get("detail") and part["detail"] != "auto":
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and part.get("file_data"):
        return {"type": "file", "file": {"filename": part.get("filename") or "file", "file_data": part["file_data"]}}
    raise refuse(f"{where}.type", f"part {kind!r} (without inline data) has no Chat Completions equivalent")


def _tools_to_chat(tools: list[JSON]) -> list[JSON]:
    out: list[JSON] = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "namespace":
            out.append(_tool_to_chat(tool, f"tools[{i}]"))
            continue
        for j, inner in enumerate(tool.get("tools") or []):
            chat = _tool_to_chat(inner, f"tools[{i}].tools[{j}]")
            chat["function"]["name"] = f"{tool.get('name')}{NAMESPACE_SEPARATOR}{chat['function'].get('name')}"
            out.append(chat)
    return out


def _tool_to_chat(tool: JSON, where: str) -> JSON:
    if tool.get("type") != "function":
        raise refuse(f"{where}.type", f"built-in tool {tool.get('type')!r} is not available through this gateway")
    fn = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
    return {"type": "function", "function": fn}


def _tool_choice_to_chat(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise refuse("tool_choice", f"{choice!r} has no Chat Completions equivalent")


# ------------------------------------------------------------------------------------ answers
def chat_to_responses_response(body: JSON, *, model: str) -> JSON:
    """A ``chat.completion`` as a Responses ``response`` object (status ``incomplete`` on a length stop)."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        output.append(reasoning_item(new_id("rs_"), reasoning))
    text = message.get("content")
    if text or message.get("refusal"):
        output.append(message_item(new_id("msg_"), text or "", refusal=message.get("refusal")))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        output.append(function_call_item(new_id("fc_"), call.get("id"), fn.get("name"), fn.get("arguments") or ""))
    usage = Usage.from_chat(body.get("usage"))
    return response_object(
        "resp_" + (body.get("id") or new_id("")), model, output, usage, choice.get("finish_reason") == "length"
    )


def responses_to_chat_response(body: JSON, *, model: str) -> JSON:
    """A Responses ``response`` object as a ``chat.completion``."""
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[JSON] = []
    refusal = None
    for item in body.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "refusal":
                    refusal = part.get("refusal")
        elif kind == "reasoning":
            parts = item.get("summary") or item.get("content") or []
            reasoning.append("".join(p.get("text", "") for p in parts))
        elif kind == "function_call":
            calls.append(
                {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {"name": chat_function_name(item), "arguments": item.get("arguments") or ""},
                }
            )
    message: JSON = {"role": "assistant", "content": "".join(texts) or None, "refusal": refusal}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    incomplete = (body.get("incomplete_details") or {}).get("reason")
    finish = (
        "tool_calls"
        if calls
        else "length"
        if incomplete == "max_output_tokens"
        else "content_filter"
        if incomplete
        else "stop"
    )
    return {
        "id": "chatcmpl-" + str(body.get("id") or new_id("")),
        "object": "chat.completion",
        "created": int(body.get("created_at") or now()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": Usage.from_responses(body.get("usage")).to_chat(),
    }


def message_item(item_id: str, text: str, *, refusal: str | None = None, status: str = "completed") -> JSON:
    content: list[JSON] = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    if refusal:
        content = [{"type": "refusal", "refusal": refusal}]
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str) -> JSON:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def function_call_item(
    item_id: str, call_id: Any, name: Any, arguments: str, status: str = "completed", namespace: str | None = None
) -> JSON:
    """A ``function_call`` item; a Chat name ``{namespace}--{name}`` (a flattened namespace tool) is split."""
    if namespace is None and isinstance(name, str) and NAMESPACE_SEPARATOR in name.strip("-"):
        namespace, name = name.split(NAMESPACE_SEPARATOR, 1)
    item = {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name}
    if namespace:
        item["namespace"] = namespace
    item["arguments"] = arguments
    return item


def response_object(
    response_id: str, model: str, output: list[JSON], usage: Usage | None, truncated: bool, status: str | None = None
) -> JSON:
    """A Responses ``response`` object; ``status`` defaults to completed (incomplete when ``truncated``)."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": now(),
        "status": status or ("incomplete" if truncated else "completed"),
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "instructions": None,
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "usage": usage.to_responses() if usage else None,
    }
