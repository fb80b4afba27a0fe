"""Requests, OpenAI Chat Completions -> Anthropic Messages (the reverse is ``messages_chat.py``).

Contract of both directions: ``model`` and ``stream`` are kept; every field of the source either has a
meaning in the target or raises TranslationError naming it (unknown fields included). What is knowingly
left out, because it carries no meaning the target could act on:

- Anthropic ``cache_control`` marks (OpenAI-compatible upstreams cache prompts by themselves);
- thinking blocks of *earlier* assistant turns (Anthropic itself strips them from the context);
- a message's ``name``, an image's ``detail`` and a function's ``strict`` flag (hints with no
  counterpart every Anthropic-compatible server accepts);
- ``stream_options`` (the gateway always asks for usage), ``store``, ``metadata`` other than the user id,
  ``verbosity`` and the ``prompt_cache_*`` hints; Anthropic ``context_management`` (server-side context
  editing: the chat upstream simply receives the whole context) and the top-level ``cache_control``,
  ``speed`` and ``inference_geo`` hints (about Anthropic's own caching, serving speed and region).

``max_tokens`` absent from a chat request becomes ``DEFAULT_MAX_TOKENS`` (Anthropic requires one).
``reasoning_effort`` ⇄ ``thinking.budget_tokens`` follow ``EFFORT_BUDGET``; Anthropic's ``adaptive``
thinking sends no effort (the chat model's default applies). Tool-call ids are made safe for Anthropic
(``tool_id``). Structured output: ``response_format`` json_schema ⇄ ``output_config.format``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .base import DEFAULT_MAX_TOKENS, JSON, refuse

# reasoning_effort -> thinking budget, and back (a budget maps to the smallest effort that covers it).
EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 24576}
# Every field a request may carry; anything else is refused by name rather than dropped unseen.
CHAT_FIELDS = frozenset(
    "model messages max_tokens max_completion_tokens temperature top_p top_k stop user safety_identifier stream"
    " stream_options tools tool_choice parallel_tool_calls reasoning_effort response_format n presence_penalty"
    " frequency_penalty logit_bias logprobs top_logprobs seed audio prediction web_search_options modalities"
    " functions function_call service_tier store metadata prompt_cache_key prompt_cache_retention"
    " prompt_cache_options verbosity".split()
)
MESSAGES_FIELDS = frozenset(
    "model messages system max_tokens temperature top_p top_k stop_sequences metadata stream tools tool_choice"
    " thinking output_config output_format service_tier container mcp_servers context_management cache_control"
    " speed inference_geo".split()
)


def refuse_unknown(body: JSON, known: frozenset[str], protocol: str) -> None:
    """Raise TranslationError for the first field of ``body`` outside ``known``."""
    for name in body:
        if name not in known:
            raise refuse(name, f"is not a {protocol} field this gateway can translate")


# Anthropic accepts tool ids of [a-zA-Z0-9_-] only; some OpenAI-compatible servers mint ids such as
# "functions.get_weather:0". The same id always maps to the same safe id, so calls still meet their results.
_UNSAFE_ID = re.compile(r"[^a-zA-Z0-9_-]")


def tool_id(value: Any) -> str:
    return _UNSAFE_ID.sub("_", value) if isinstance(value, str) and value else "toolu_missing"


# ------------------------------------------------------------------------------------------- chat -> messages
def chat_to_messages_request(body: JSON) -> JSON:
    """A Chat Completions request body as an Anthropic Messages request body."""
    out: JSON = {"model": body.get("model")}
    _refuse_unmappable_chat(body)
    system, messages = _chat_messages_to_anthropic(body.get("messages"))
    if system:
        out["system"] = system
    out["messages"] = messages
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    out["max_tokens"] = max_tokens if max_tokens else DEFAULT_MAX_TOKENS
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("temperature") is not None and not 0 <= body["temperature"] <= 1:
        raise refuse("temperature", "must be between 0 and 1 for a model served through Anthropic Messages")
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user") or body.get("safety_identifier"):
        out["metadata"] = {"user_id": body.get("user") or body.get("safety_identifier")}
    if "stream" in body:
        out["stream"] = body["stream"]
    if body.get("tools"):
        out["tools"] = [_chat_tool_to_anthropic(tool, i) for i, tool in enumerate(body["tools"])]
        choice = _chat_tool_choice_to_anthropic(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice:
            out["tool_choice"] = choice
    effort = body.get("reasoning_effort")
    if effort and effort != "none":
        if effort not in EFFORT_BUDGET:
            raise refuse("reasoning_effort", f"unknown value {effort!r}")
        budget = EFFORT_BUDGET[effort]
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if out["max_tokens"] <= budget:
            out["max_tokens"] = budget + (max_tokens or DEFAULT_MAX_TOKENS)
    fmt = _chat_response_format_to_anthropic(body.get("response_format"))
    if fmt:
        out["output_config"] = {"format": fmt}
    return out


def _refuse_unmappable_chat(body: JSON) -> None:
    refuse_unknown(body, CHAT_FIELDS, "Chat Completions")
    if (body.get("n") or 1) != 1:
        raise refuse("n", "n > 1 is not supported by Anthropic Messages; send n separate requests")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name):
            raise refuse(name, "has no Anthropic Messages equivalent")
    for name in ("logit_bias", "logprobs", "top_logprobs", "seed", "audio", "prediction", "web_search_options"):
        if body.get(name):
            raise refuse(name, "has no Anthropic Messages equivalent")
    if body.get("modalities") not in (None, ["text"]):
        raise refuse("modalities", "Anthropic Messages answers with text only")
    if body.get("functions") or body.get("function_call"):
        raise refuse("functions", "legacy functions are not supported; use tools")
    if body.get("service_tier") not in (None, "auto", "default"):
        raise refuse("service_tier", "has no Anthropic Messages equivalent")


def _chat_messages_to_anthropic(messages: Any) -> tuple[list[JSON] | str | None, list[JSON]]:
    if not isinstance(messages, list) or not messages:
        raise refuse("messages", "must be a non-empty list")
    system: list[JSON] = []
    out: list[JSON] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), where))
            continue
        if role == "user":
            blocks = _user_content(message.get("content"), where)
        elif role == "assistant":
            blocks = _assistant_content(message, where)
            if not blocks:
                continue
        elif role == "tool":
            content = _tool_result_content(message.get("content"), where)
            blocks = [{"type": "tool_result", "tool_use_id": tool_id(message.get("tool_call_id")), "content": content}]
        else:
            raise refuse(f"{where}.role", f"role {role!r} is not supported")
        anthropic_role = "assistant" if role == "assistant" else "user"
        if out and out[-1]["role"] == anthropic_role:
            out[-1]["content"].extend(blocks)  # tool results of parallel calls share one user turn
        else:
            out.append({"role": anthropic_role, "content": blocks})
    for message in out:  # a lone text block is written as the plain string it came from
        blocks = message["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            message["content"] = blocks[0]["text"]
    if len(system) == 1:
        return system[0]["text"], out
    return system or None, out


def _text_blocks(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        blocks = []
        for j, part in enumerate(content):
            if part.get("type") != "text":
                raise refuse(f"{where}.content[{j}].type", "only text is allowed here")
            blocks.append({"type": "text", "text": part.get("text", "")})
        return blocks
    if content is None:
        return []
    raise refuse(f"{where}.content", "must be a string or a list of parts")


def _user_content(content: Any, where: str) -> list[JSON]:
    if not isinstance(content, list):
        return _text_blocks(content, where)
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            url = part.get("image_url") or {}
            blocks.append(image_block(url.get("url") if isinstance(url, dict) else url, f"{where}.content[{j}]"))
        elif kind == "file" and (part.get("file") or {}).get("file_data"):
            media, data = _data_url(part["file"]["file_data"], f"{where}.content[{j}].file.file_data")
            blocks.append({"type": "document", "source": {"type": "base64", "media_type": media, "data": data}})
        else:
            raise refuse(f"{where}.content[{j}].type", f"content part {kind!r} has no Anthropic Messages equivalent")
    return blocks


def image_block(url: Any, where: str) -> JSON:
    """An image URL (https or data:) as an Anthropic image block."""
    if not isinstance(url, str) or not url:
        raise refuse(f"{where}.image_url", "must carry a URL")
    if url.startswith("data:"):
        media, data = _data_url(url, f"{where}.image_url")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _data_url(url: str, where: str) -> tuple[str, str]:
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise refuse(where, "a data: URL must be base64 (data:<type>;base64,<data>)")
    return head[5:-7], data


def _assistant_content(message: JSON, where: str) -> list[JSON]:
    content = message.get("content")
    blocks = []
    if isinstance(content, list):
        for j, part in enumerate(content):
            if part.get("type") not in ("text", "refusal"):
                raise refuse(f"{where}.content[{j}].type", "only text is allowed in an assistant message")
            blocks.append({"type": "text", "text": part.get("text") or part.get("refusal") or ""})
    elif content:
        blocks.append({"type": "text", "text": content})
    for j, call in enumerate(message.get("tool_calls") or []):
        fn = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id(call.get("id")),
                "name": fn.get("name"),
                "input": _parse_arguments(fn.get("arguments"), f"{where}.tool_calls[{j}].function.arguments"),
            }
        )
    return [block for block in blocks if block["type"] != "text" or block["text"]]


def _parse_arguments(arguments: Any, where: str) -> Any:
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        raise refuse(where, "must be a JSON object")
    if not isinstance(value, dict):
        raise refuse(where, "must be a JSON object")
    return value


def _tool_result_content(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    return _text_blocks(content, where)


def _chat_tool_to_anthropic(tool: JSON, i: int) -> JSON:
    if tool.get("type") != "function":
        raise refuse(f"tools[{i}].type", f"tool type {tool.get('type')!r} has no Anthropic Messages equivalent")
    fn = tool.get("function") or {}
    out = {"name": fn.get("name"), "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def _chat_tool_choice_to_anthropic(choice: Any, parallel: Any) -> JSON | None:
    if choice is None or choice == "auto":
        out: JSON = {"type": "auto"}
    elif choice == "none":
        out = {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    else:
        raise refuse("tool_choice", f"{choice!r} has no Anthropic Messages equivalent")
    if parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return None if out == {"type": "auto"} and choice is None else out


def _chat_response_format_to_anthropic(fmt: Any) -> JSON | None:
    if not fmt or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_schema":
        return {"type": "json_schema", "schema": (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}}
    if fmt.get("type") == "json_object":
        return {"type": "json_schema", "schema": {"type": "object"}}
    raise refuse("response_format.type", f"{fmt.get('type')!r} is not supported")
