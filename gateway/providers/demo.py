"""The built-in demo upstream: answers both protocols offline.

Keygate's quickstart must work without an OpenAI or Anthropic account, so when no
provider is configured this module answers every proxied endpoint with a plausible,
deterministic reply and plausible usage. It is pure: no Django, no I/O besides
``asyncio.sleep`` between streamed events. :class:`DemoProvider` (at the end) makes it an
ordinary provider adapter (:mod:`gateway.providers.base`).

The payloads follow the public wire formats closely enough that the official
``openai`` and ``anthropic`` SDKs parse them, streaming helpers included
(``tests/support/test_upstream.py`` proves it):

- ``chat/completions`` and ``completions``: ``data: {chunk}`` events, an optional
  usage chunk (``stream_options.include_usage``) and ``data: [DONE]``;
- ``responses``: ``event: response.*`` events from ``response.created`` to
  ``response.completed`` (which carries usage);
- ``messages``: ``message_start``, ``content_block_start``, ``ping``,
  ``content_block_delta`` x N, ``content_block_stop``, ``message_delta`` (usage),
  ``message_stop``.

Token counts are an estimate (``len(text) / 4``, at least 1) computed once per
request, so streaming and non-streaming answers report the same usage.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import struct
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.providers import demo_skills as skills
from gateway.providers.base import Provider, UpstreamReply

DEMO_MODELS: tuple[str, ...] = (
    "demo-gpt",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1-mini",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "gpt-image-1",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-opus-4-6",
)

#: Every endpoint :func:`respond` answers (paths relative to ``/v1/``).
ENDPOINTS: frozenset[str] = frozenset(
    {
        "chat/completions",
        "completions",
        "embeddings",
        "images/generations",
        "responses",
        "messages",
        "messages/count_tokens",
    }
)

#: The endpoints :func:`stream` answers with a real event stream.
STREAMING_ENDPOINTS: frozenset[str] = frozenset({"chat/completions", "completions", "responses", "messages"})

#: Pause between two streamed events, so streaming is visible in a terminal.
#: Read at each pause: tests may set it to 0.
STREAM_DELAY_SECONDS: float = 0.015

DEFAULT_EMBEDDING_DIMENSIONS = 8
# Bounds what one odd request can make the demo allocate.
_MAX_EMBEDDING_DIMENSIONS = 8192
_MAX_IMAGES = 10
_SNIPPET_CHARS = 80
_DEFAULT_MODEL = "demo-gpt"
_SYSTEM_FINGERPRINT = "fp_keygate_demo"


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


# --------------------------------------------------------------------------- public


def estimate_tokens(text: str) -> int:
    """Estimate tokens as the demo bills them: ~4 characters each, at least 1."""
    return max(1, math.ceil(len(text) / 4))


def respond(endpoint: str, body: dict) -> tuple[int, dict]:
    """Answer one non-streaming request: ``(http_status, json_body)``.

    ``endpoint`` is a path relative to ``/v1/`` (``"chat/completions"``, ``"messages"``,
    …). Never raises on odd input: a missing or malformed field yields a generic
    but well-formed answer. An unknown endpoint gives ``404`` with an OpenAI-style
    error body.
    """
    body = body if isinstance(body, dict) else {}
    handler = _RESPONDERS.get(endpoint)
    if handler is None:
        return 404, _openai_error(f"Unknown endpoint: /v1/{endpoint}", "invalid_request_error", "not_found")
    return 200, handler(body)


def stream_events(endpoint: str, body: dict, *, pieces: Sequence[str] | None = None) -> list[bytes]:
    """Render the whole event stream for one request, without any pause.

    Each item is one complete SSE event (``b"data: …\\n\\n"`` or
    ``b"event: …\\ndata: …\\n\\n"``). ``pieces`` overrides the reply text, one text
    delta per piece (the test upstream uses it to shape slow streams). An endpoint
    that cannot stream yields a single error event in its dialect.
    """
    body = body if isinstance(body, dict) else {}
    renderer = _STREAMERS.get(endpoint)
    if renderer is None:
        message = f"Streaming is not supported on /v1/{endpoint}"
        if endpoint.startswith("messages"):
            return [_named_event("error", _anthropic_error(message, "invalid_request_error"))]
        return [_openai_event(_openai_error(message, "invalid_request_error", None))]
    answer = _answer(endpoint, body, pieces)
    return renderer(body, answer, list(pieces) if pieces is not None else _split(answer.reply))


async def stream(endpoint: str, body: dict) -> AsyncIterator[bytes]:
    """Answer one streaming request as raw SSE bytes, one event per chunk.

    Events are spaced by :data:`STREAM_DELAY_SECONDS` so the stream is visible.
    """
    for index, event in enumerate(stream_events(endpoint, body)):
        if index and STREAM_DELAY_SECONDS > 0:
            await asyncio.sleep(STREAM_DELAY_SECONDS)
        yield event


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


# ------------------------------------------------------------ OpenAI: chat, text


def _chat_usage(answer: _Answer) -> dict:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_completion(body: dict) -> dict:
    answer = _answer("chat/completions", body)
    return {
        "id": _new_id("chatcmpl-demo"),
        "object": "chat.completion",
        "created": _now(),
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.reply,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _chat_usage(answer),
        "service_tier": "default",
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }


def _completion(body: dict) -> dict:
    answer = _answer("completions", body)
    return {
        "id": _new_id("cmpl-demo"),
        "object": "text_completion",
        "created": _now(),
        "model": answer.model,
        "choices": [
            {
                "text": answer.reply,
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _chat_usage(answer),
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }


def _openai_event(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def _stream_chat(body: dict, answer: _Answer, pieces: list[str]) -> list[bytes]:
    include_usage = _include_usage(body)
    envelope: dict[str, Any] = {
        "id": _new_id("chatcmpl-demo"),
        "object": "chat.completion.chunk",
        "created": _now(),
        "model": answer.model,
        "service_tier": "default",
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }
    if include_usage:
        # With include_usage every chunk carries "usage": null except the last one.
        envelope["usage"] = None

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        return _openai_event({**envelope, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(_openai_event({**envelope, "choices": [], "usage": _chat_usage(answer)}))
    events.append(_openai_event("[DONE]"))
    return events


def _stream_completion(body: dict, answer: _Answer, pieces: list[str]) -> list[bytes]:
    include_usage = _include_usage(body)
    envelope: dict[str, Any] = {
        "id": _new_id("cmpl-demo"),
        "object": "text_completion",
        "created": _now(),
        "model": answer.model,
        "system_fingerprint": _SYSTEM_FINGERPRINT,
    }
    if include_usage:
        envelope["usage"] = None

    def chunk(text: str, finish_reason: str | None = None) -> bytes:
        choice = {
            "text": text,
            "index": 0,
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        return _openai_event({**envelope, "choices": [choice]})

    events = [chunk(piece) for piece in pieces]
    events.append(chunk("", "stop"))
    if include_usage:
        events.append(_openai_event({**envelope, "choices": [], "usage": _chat_usage(answer)}))
    events.append(_openai_event("[DONE]"))
    return events


# --------------------------------------------------------- OpenAI: embeddings


def _embedding_inputs(value: Any) -> list[tuple[str, int]]:
    """``(text_to_hash, tokens)`` per input: strings or token id lists."""
    if isinstance(value, str):
        return [(value, estimate_tokens(value))]
    if not isinstance(value, list) or not value:
        return [("", 1)]
    if all(isinstance(item, int) for item in value):  # one pre-tokenised input
        return [(json.dumps(value), max(1, len(value)))]
    inputs = []
    for item in value:
        if isinstance(item, str):
            inputs.append((item, estimate_tokens(item)))
        elif isinstance(item, list):
            inputs.append((json.dumps(item, default=str), max(1, len(item))))
        else:
            inputs.append((str(item), 1))
    return inputs


def _unit_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from ``text`` (same text, same vector)."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values += [int.from_bytes(digest[i : i + 4], "little") / 2**31 - 1.0 for i in range(0, 32, 4)]
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [value / norm for value in values]


def _embeddings(body: dict) -> dict:
    dimensions = body.get("dimensions")
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        dimensions = DEFAULT_EMBEDDING_DIMENSIONS
    dimensions = min(dimensions, _MAX_EMBEDDING_DIMENSIONS)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    prompt_tokens = 0
    for index, (text, tokens) in enumerate(_embedding_inputs(body.get("input"))):
        vector = _unit_vector(text, dimensions)
        embedding: list[float] | str = vector
        if as_base64:
            # The openai SDK decodes base64 embeddings as little-endian float32.
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
        prompt_tokens += tokens
    return {
        "object": "list",
        "data": data,
        "model": _model(body),
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


# ------------------------------------------------------------- OpenAI: images


def _png(rgb: bytes, size: int = 8) -> bytes:
    """A valid ``size`` x ``size`` PNG of one colour (RGB, 8 bits, no interlace)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    scanlines = (b"\x00" + rgb[:3] * size) * size  # filter type 0 before each row
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")
    )


def _images(body: dict) -> dict:
    prompt = body.get("prompt") if isinstance(body.get("prompt"), str) else ""
    count = body.get("n")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        count = 1
    count = min(count, _MAX_IMAGES)
    as_url = body.get("response_format") == "url"
    data = []
    for index in range(count):
        # One colour per prompt and index, so a demo gallery is not all alike.
        rgb = hashlib.sha256(f"{index}:{prompt}".encode()).digest()[:3]
        encoded = base64.b64encode(_png(rgb)).decode("ascii")
        image = {"url": f"data:image/png;base64,{encoded}"} if as_url else {"b64_json": encoded}
        data.append({**image, "revised_prompt": prompt})
    prompt_tokens = estimate_tokens(prompt)
    return {
        "created": _now(),
        "data": data,
        "usage": {
            "input_tokens": prompt_tokens,
            "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
            "output_tokens": count,
            "total_tokens": prompt_tokens + count,
        },
    }


# ---------------------------------------------------------- OpenAI: responses


def _response_usage(answer: _Answer) -> dict:
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": answer.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.total_tokens,
    }


def _response_object(body: dict, answer: _Answer, response_id: str, created_at: int) -> dict:
    """The ``response`` object in its initial, in-progress state."""

    def echoed(name: str, kinds: type | tuple[type, ...], default: Any) -> Any:
        value = body.get(name)
        return value if isinstance(value, kinds) and not isinstance(value, bool) else default

    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": echoed("instructions", str, None),
        "max_output_tokens": echoed("max_output_tokens", int, None),
        "model": answer.model,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": echoed("previous_response_id", str, None),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store") if isinstance(body.get("store"), bool) else True,
        "temperature": echoed("temperature", (int, float), 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": echoed("top_p", (int, float), 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": echoed("metadata", dict, {}),
    }


def _output_message(item_id: str, text: str, status: str) -> dict:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _completed_response(body: dict, answer: _Answer, response_id: str, item_id: str, created_at: int) -> dict:
    return {
        **_response_object(body, answer, response_id, created_at),
        "status": "completed",
        "completed_at": _now(),
        "output": [_output_message(item_id, answer.reply, "completed")],
        "usage": _response_usage(answer),
    }


def _responses(body: dict) -> dict:
    answer = _answer("responses", body)
    return _completed_response(body, answer, _new_id("resp_demo"), _new_id("msg_demo"), _now())


def _stream_responses(body: dict, answer: _Answer, pieces: list[str]) -> list[bytes]:
    response_id, item_id, created_at = _new_id("resp_demo"), _new_id("msg_demo"), _now()
    in_progress = _response_object(body, answer, response_id, created_at)
    part_empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    part_done = {**part_empty, "text": answer.reply}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    payloads: list[dict] = [
        {"type": "response.created", "response": in_progress},
        {"type": "response.in_progress", "response": in_progress},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _output_message(item_id, "", "in_progress"),
        },
        {"type": "response.content_part.added", **where, "part": part_empty},
        *(
            {
                "type": "response.output_text.delta",
                **where,
                "delta": piece,
                "logprobs": [],
            }
            for piece in pieces
        ),
        {
            "type": "response.output_text.done",
            **where,
            "text": answer.reply,
            "logprobs": [],
        },
        {"type": "response.content_part.done", **where, "part": part_done},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": _output_message(item_id, answer.reply, "completed"),
        },
        {
            "type": "response.completed",
            "response": _completed_response(body, answer, response_id, item_id, created_at),
        },
    ]
    return [
        _named_event(payload["type"], {**payload, "sequence_number": number}) for number, payload in enumerate(payloads)
    ]


# ------------------------------------------------------------ Anthropic: messages


def _named_event(name: str, payload: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def _message_usage(answer: _Answer, output_tokens: int) -> dict:
    return {
        "input_tokens": answer.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _message_envelope(answer: _Answer, message_id: str) -> dict:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
    }


def _message(body: dict) -> dict:
    answer = _answer("messages", body)
    return {
        **_message_envelope(answer, _new_id("msg_demo")),
        "content": [{"type": "text", "text": answer.reply}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _message_usage(answer, answer.completion_tokens),
    }


def _count_tokens(body: dict) -> dict:
    return {"input_tokens": _answer("messages/count_tokens", body).prompt_tokens}


def _stream_message(body: dict, answer: _Answer, pieces: list[str]) -> list[bytes]:
    start = {
        **_message_envelope(answer, _new_id("msg_demo")),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        # As upstream does: output_tokens is provisional here, final in message_delta.
        "usage": _message_usage(answer, 1),
    }
    events = [
        _named_event("message_start", {"type": "message_start", "message": start}),
        _named_event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _named_event("ping", {"type": "ping"}),
    ]
    events += [
        _named_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
        for piece in pieces
    ]
    events += [
        _named_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _named_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": answer.completion_tokens},
            },
        ),
        _named_event("message_stop", {"type": "message_stop"}),
    ]
    return events


# ------------------------------------------------ tool calls and thinking (demo_skills)


def _chat_with_skills(body: dict) -> dict:
    answer = _answer("chat/completions", body)
    completion = _chat_completion_from(body, answer)
    message = completion["choices"][0]["message"]
    if answer.thinking:
        message["reasoning_content"] = answer.thinking
    if answer.tool:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": answer.tool.call_id,
                "type": "function",
                "function": {"name": answer.tool.name, "arguments": answer.tool.arguments_json},
            }
        ]
        completion["choices"][0]["finish_reason"] = "tool_calls"
    return completion


def _chat_completion_from(body: dict, answer: _Answer) -> dict:
    completion = _chat_completion(body)
    completion["choices"][0]["message"]["content"] = answer.reply
    completion["usage"] = _chat_usage(answer)
    return completion


def _stream_chat_with_skills(body: dict, answer: _Answer, pieces: list[str]) -> list[bytes]:
    if not (answer.tool or answer.thinking):
        return _stream_chat(body, answer, pieces)
    events = _stream_chat(body, answer, [] if answer.tool else pieces)
    first = json.loads(events[0][len(b"data: ") :])
    envelope = {k: v for k, v in first.items() if k != "choices"}

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _openai_event({**envelope, "choices": [choice]})

    extra = [chunk({"reasoning_content": answer.thinking})] if answer.thinking else []
    if answer.tool:
        call = {"index": 0, "id": answer.tool.call_id, "type": "function"}
        extra += [
            chunk({"tool_calls": [{**call, "function": {"name": answer.tool.name, "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": answer.tool.arguments_json}}]}),
        ]
        # The text run's finish chunk says "stop": the tool call's says "tool_calls".
        finish = next(i for i, e in enumerate(events) if b'"finish_reason": "stop"' in e)
        events[finish] = chunk({}, "tool_calls")
    return [events[0], *extra, *events[1:]]


def _message_with_skills(body: dict) -> dict:
    answer = _answer("messages", body)
    message = _message(body)
    message["usage"] = _message_usage(answer, answer.completion_tokens)
    content: list[dict] = []
    if answer.thinking:
        content.append({"type": "thinking", "thinking": answer.thinking, "signature": "demo-signature"})
    if answer.reply:
        content.append({"type": "text", "text": answer.reply})
    if answer.tool:
        content.append(
            {"type": "tool_use", "id": answer.tool.call_id, "name": answer.tool.name, "input": answer.tool.arguments}
        )
        message["stop_reason"] = "tool_use"
    message["content"] = content or [{"type": "text", "text": ""}]
    return message


def _stream_message_with_skills(body: dict, answer: _Answer, pieces: list[str]) -> list[bytes]:
    if not (answer.tool or answer.thinking):
        return _stream_message(body, answer, pieces)
    plain = _stream_message(body, answer, pieces)
    start, ping = plain[0], plain[2]
    blocks: list[bytes] = []
    index = 0

    def block(content_block: dict, deltas: list[dict]) -> None:
        nonlocal index
        blocks.append(
            _named_event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block}
            )
        )
        for delta in deltas:
            blocks.append(
                _named_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        blocks.append(_named_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if answer.thinking:
        block(
            {"type": "thinking", "thinking": "", "signature": ""},
            [
                {"type": "thinking_delta", "thinking": answer.thinking},
                {"type": "signature_delta", "signature": "demo-signature"},
            ],
        )
    if answer.reply:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": piece} for piece in pieces])
    if answer.tool:
        tool = answer.tool
        block(
            {"type": "tool_use", "id": tool.call_id, "name": tool.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": tool.arguments_json}],
        )
    stop = "tool_use" if answer.tool else "end_turn"
    end = [
        _named_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": answer.completion_tokens},
            },
        ),
        _named_event("message_stop", {"type": "message_stop"}),
    ]
    return [start, ping, *blocks, *end]


def _function_call_item(answer: _Answer, item_id: str, status: str, arguments: str) -> dict:
    assert answer.tool is not None
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": answer.tool.call_id,
        "name": answer.tool.name,
        "arguments": arguments,
    }


def _responses_with_skills(body: dict) -> dict:
    answer = _answer("responses", body)
    item_id = _new_id("fc_demo")
    response = _completed_response(body, answer, _new_id("resp_demo"), _new_id("msg_demo"), _now())
    if answer.tool:
        response["output"] = [_function_call_item(answer, item_id, "completed", answer.tool.arguments_json)]
    return response


def _stream_responses_with_skills(body: dict, answer: _Answer, pieces: list[str]) -> list[bytes]:
    if not answer.tool:
        return _stream_responses(body, answer, pieces)
    response_id, item_id, created_at = _new_id("resp_demo"), _new_id("fc_demo"), _now()
    in_progress = _response_object(body, answer, response_id, created_at)
    arguments = answer.tool.arguments_json
    done = _function_call_item(answer, item_id, "completed", arguments)
    completed = {
        **_completed_response(body, answer, response_id, item_id, created_at),
        "output": [done],
    }
    where = {"item_id": item_id, "output_index": 0}
    payloads: list[dict] = [
        {"type": "response.created", "response": in_progress},
        {"type": "response.in_progress", "response": in_progress},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _function_call_item(answer, item_id, "in_progress", ""),
        },
        {"type": "response.function_call_arguments.delta", **where, "delta": arguments},
        {"type": "response.function_call_arguments.done", **where, "arguments": arguments},
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": completed},
    ]
    return [
        _named_event(payload["type"], {**payload, "sequence_number": number}) for number, payload in enumerate(payloads)
    ]


_RESPONDERS = {
    "chat/completions": _chat_with_skills,
    "completions": _completion,
    "embeddings": _embeddings,
    "images/generations": _images,
    "responses": _responses_with_skills,
    "messages": _message_with_skills,
    "messages/count_tokens": _count_tokens,
}

_STREAMERS = {
    "chat/completions": _stream_chat_with_skills,
    "completions": _stream_completion,
    "responses": _stream_responses_with_skills,
    "messages": _stream_message_with_skills,
}


# ------------------------------------------------------------------ as a provider


class _DemoReply(UpstreamReply):
    """The demo's answer in the shape of an upstream's."""

    def __init__(
        self, status: int, content_type: str, body: bytes = b"", events: AsyncIterator[bytes] | None = None
    ) -> None:
        self.status = status
        self.headers = {"content-type": content_type}
        self._body = body
        self._events = events

    async def read(self, limit: int) -> bytes:
        return self._body

    def chunks(self) -> AsyncIterator[bytes]:
        assert self._events is not None
        return self._events


class DemoProvider(Provider):
    """The built-in demo as an ordinary provider: it speaks every endpoint, in process."""

    kind = "demo"
    endpoints = ENDPOINTS

    def default_models(self) -> tuple[str, ...]:
        return DEMO_MODELS

    async def open(
        self, session: Any, upstream: Any, request: Any, endpoint: str, body: bytes, payload: dict[str, Any]
    ) -> UpstreamReply:
        if payload.get("stream") is True and endpoint in STREAMING_ENDPOINTS:
            return _DemoReply(200, "text/event-stream", events=stream(endpoint, payload))
        status, answer = respond(endpoint, payload)
        return _DemoReply(status, "application/json", json.dumps(answer).encode())


PROVIDER = DemoProvider()
