"""The demo's OpenAI ``responses`` endpoint: the ``response`` object (echoing the request's
settings) with one output message, and its ``event: response.*`` stream from
``response.created`` to ``response.completed`` (which carries usage)."""

from __future__ import annotations

from typing import Any

from gateway.providers.demo.answers import _Answer, _named_event, _new_id, _now


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
