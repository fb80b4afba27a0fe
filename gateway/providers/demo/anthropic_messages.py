"""The demo's Anthropic endpoints: ``messages`` as a plain message and as its event stream
(``message_start``, ``content_block_start``, ``ping``, ``content_block_delta`` x N,
``content_block_stop``, ``message_delta`` with usage, ``message_stop``), and
``messages/count_tokens``."""

from __future__ import annotations

from gateway.providers.demo.answers import _Answer, _answer, _named_event, _new_id


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
