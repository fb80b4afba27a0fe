"""What the demo provider understands besides plain text, in every protocol's spelling: tools
offered (it calls one when the user asks for it, e.g. "use the tool"), structured output (JSON
that matches the schema), thinking, and the user's real last words (not a ``<system-reminder>``
block an agent such as Claude Code adds). Pure functions, no I/O."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>\s*", re.DOTALL)
_ASKS_FOR_TOOL = re.compile(r"\b(tool|function)s?\b", re.IGNORECASE)
_MAX_DEPTH = 6


def strip_reminders(text: str) -> str:
    return _REMINDER.sub("", text).strip()


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


def _tools(endpoint: str, body: dict) -> list[tuple[str, dict]]:
    """``(name, JSON schema of its input)`` of each function tool offered."""
    offered = body.get("tools")
    found: list[tuple[str, dict]] = []
    for tool in offered if isinstance(offered, list) else ():
        if not isinstance(tool, dict):
            continue
        spec = tool.get("function") if isinstance(tool.get("function"), dict) else tool  # chat nests it
        name = spec.get("name")
        schema = spec.get("parameters") or spec.get("input_schema") or {}
        if (
            isinstance(name, str)
            and name
            and (tool.get("type") in (None, "function", "custom") or "input_schema" in tool)
        ):
            found.append((name, schema if isinstance(schema, dict) else {}))
    return found


def _forced(body: dict) -> str | bool:
    """The tool ``tool_choice`` forces (a name), True for "any tool", False otherwise."""
    choice = body.get("tool_choice")
    if choice in ("required", "any"):
        return True
    if isinstance(choice, dict):
        if choice.get("type") in ("any", "required"):
            return True
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return name
    return False


def after_tool_result(endpoint: str, body: dict) -> str | None:
    """The text of a tool result the conversation ends with (the demo then answers in words)."""
    items = body.get("input") if endpoint == "responses" else body.get("messages")
    if not isinstance(items, list) or not items or not isinstance(items[-1], dict):
        return None
    last = items[-1]
    if last.get("role") == "tool" or last.get("type") == "function_call_output":
        output = last.get("content", last.get("output"))
        return output if isinstance(output, str) else json.dumps(output)
    content = last.get("content")
    if isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = " ".join(p.get("text", "") for p in inner if isinstance(p, dict))
                return inner if isinstance(inner, str) else json.dumps(inner)
    return None


def tool_call(endpoint: str, body: dict, last_user_text: str, call_id: str) -> ToolCall | None:
    """The tool the demo calls for this request, if any: when tools are offered, the last turn is
    not a tool result, and the user asks for a tool (or ``tool_choice`` forces one)."""
    tools = _tools(endpoint, body)
    if not tools or body.get("tool_choice") == "none" or after_tool_result(endpoint, body) is not None:
        return None
    forced = _forced(body)
    if forced is False and not _ASKS_FOR_TOOL.search(last_user_text):
        return None
    name, schema = next(((n, s) for n, s in tools if n == forced), tools[0])
    return ToolCall(call_id, name, example(schema, hint=last_user_text))


def output_schema(endpoint: str, body: dict) -> dict | None:
    """The JSON schema structured output must match (``{}`` for "any JSON object"), or None."""
    if endpoint == "responses":
        text = body.get("text")
        spec = text.get("format") if isinstance(text, dict) else None
    elif endpoint == "messages":
        spec = body.get("output_format")
    else:
        spec = body.get("response_format")
    if not isinstance(spec, dict):
        return None
    if spec.get("type") == "json_object":
        return {}
    if spec.get("type") == "json_schema":
        schema = spec.get("schema") or (spec.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def thinking(endpoint: str, body: dict) -> bool:
    spec = body.get("thinking")
    if isinstance(spec, dict) and spec.get("type") in ("enabled", "adaptive"):
        return True
    reasoning = body.get("reasoning")
    return endpoint != "messages" and (bool(body.get("reasoning_effort")) or isinstance(reasoning, dict))


def example(schema: Any, *, hint: str = "", depth: int = 0) -> Any:
    """A value that matches a (common subset of) JSON schema: types, properties, required,
    enum/const, items, anyOf/oneOf, defaults."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {}
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example(options[0], hint=hint, depth=depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {name: example(sub, hint=hint, depth=depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [example(schema.get("items", {}), hint=hint, depth=depth + 1)] * max(1, schema.get("minItems", 1) or 1)
    if kind == "string":
        return (hint[:40] or "demo") if not schema.get("format") else "2026-01-01"
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {}
