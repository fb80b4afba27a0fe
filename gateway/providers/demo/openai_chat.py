"""The OpenAI text endpoints of the demo: ``chat/completions`` and ``completions``, as plain
JSON answers and as ``data: {chunk}`` event streams (with the optional usage chunk of
``stream_options.include_usage`` and the closing ``data: [DONE]``)."""

from __future__ import annotations

from typing import Any

from gateway.providers.demo.answers import _Answer, _answer, _new_id, _now, _openai_event

_SYSTEM_FINGERPRINT = "fp_keygate_demo"


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
