"""What the demo says to one request, and the pieces every endpoint shares: :class:`_Answer`
(the reply, its model and its token counts, computed once so streaming and plain answers agree),
the prompt/last-user-text extraction and the echo reply, token estimates, ids and timestamps,
the OpenAI- and Anthropic-style error bodies, and the two SSE event framings (``data:`` only,
and ``event:`` + ``data:``)."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.providers import demo_skills as skills

_SNIPPET_CHARS = 80
_DEFAULT_MODEL = "demo-gpt"


@dataclass(frozen=True)
class _Answer:
    """What the demo says to one request, shared by the streaming and plain answers."""

    model: str
    reply: str
    prompt_tokens: int
    completion_tokens: int
    tool: skills.ToolCall | None = None
    thinking: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_tokens(text: str) -> int:
    """Estimate tokens as the demo bills them: ~4 characters each, at least 1."""
    return max(1, math.ceil(len(text) / 4))


# ------------------------------------------------------------------ text and usage


def _text_of(content: Any) -> str:
    """The text in a message ``content``: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    if isinstance(content, list):
        return "\n".join(text for part in content if (text := _text_of(part)))
    return ""


def _messages_text(messages: Any) -> tuple[str, str]:
    """``(all_text, last_user_text)`` of a chat/messages/responses ``input`` list."""
    if isinstance(messages, str):
        return messages, messages
    if not isinstance(messages, list):
        return "", ""
    texts: list[str] = []
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = _text_of(message.get("content"))
        texts.append(text)
        if message.get("role") == "user" and (said := skills.strip_reminders(text)):
            last_user = said
    return "\n".join(texts), last_user


def _prompt_text(endpoint: str, body: dict) -> tuple[str, str]:
    """``(prompt_text, last_user_text)`` of a request, for billing and for the echo."""
    if endpoint in {"messages", "messages/count_tokens"}:
        everything, last_user = _messages_text(body.get("messages"))
        return _text_of(body.get("system")) + everything, last_user
    if endpoint == "responses":
        everything, last_user = _messages_text(body.get("input"))
        instructions = body.get("instructions")
        return (instructions if isinstance(instructions, str) else "") + everything, last_user
    if endpoint == "completions":
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            strings = [item for item in prompt if isinstance(item, str)]
            return "\n".join(strings), strings[-1] if strings else ""
        return (prompt, prompt) if isinstance(prompt, str) else ("", "")
    return _messages_text(body.get("messages"))


def _reply_to(last_user_text: str) -> str:
    snippet = " ".join(last_user_text.split())
    if not snippet:
        return "Hello from Keygate's demo provider! Send a message and I will echo it."
    if len(snippet) > _SNIPPET_CHARS:
        snippet = snippet[: _SNIPPET_CHARS - 1].rstrip() + "…"
    return f'Hello from Keygate\'s demo provider! You said: "{snippet}"'


def _answer(endpoint: str, body: dict, pieces: Sequence[str] | None = None) -> _Answer:
    prompt, last_user = _prompt_text(endpoint, body)
    reply = "".join(pieces) if pieces is not None else _reply_to(last_user)
    tool = None
    if pieces is None:
        call_id = _new_id("toolu_demo" if endpoint == "messages" else "call_demo")
        tool = skills.tool_call(endpoint, body, last_user, call_id)
        schema = skills.output_schema(endpoint, body)
        result = skills.after_tool_result(endpoint, body)
        if tool is not None:
            reply = ""
        elif schema is not None:
            reply = json.dumps(skills.example(schema, hint=last_user), ensure_ascii=False)
        elif result is not None:
            reply = f"The tool answered: {' '.join(result.split())[:_SNIPPET_CHARS]}"
    thought = f"The user said {last_user[:40]!r}; I will answer briefly." if skills.thinking(endpoint, body) else None
    spoken = reply + (tool.arguments_json if tool else "") + (thought or "")
    return _Answer(
        model=_model(body),
        reply=reply,
        prompt_tokens=estimate_tokens(prompt),
        completion_tokens=estimate_tokens(spoken),
        tool=tool,
        thinking=thought,
    )


def _split(reply: str) -> list[str]:
    """Word-sized deltas that concatenate back to ``reply`` exactly."""
    return re.findall(r"\S+\s*", reply) or [reply]


def _model(body: dict) -> str:
    model = body.get("model")
    return model if isinstance(model, str) and model else _DEFAULT_MODEL


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _now() -> int:
    return int(time.time())


# ----------------------------------------------------------------- error bodies


def _openai_error(message: str, error_type: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _anthropic_error(message: str, error_type: str) -> dict:
    return {"type": "error", "error": {"type": error_type, "message": message}}


# ------------------------------------------------------------------ SSE framing


def _openai_event(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def _named_event(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
