"""The answers the demo actually serves for ``chat/completions``, ``messages`` and
``responses``: the plain answers of :mod:`~gateway.providers.demo.openai_chat`,
:mod:`~gateway.providers.demo.anthropic_messages` and
:mod:`~gateway.providers.demo.openai_responses`, plus what :mod:`gateway.providers.demo_skills`
decides (a tool call, thinking), in each protocol's plain and streamed spelling."""

from __future__ import annotations

import json

from gateway.providers.demo.answers import _Answer, _answer, _named_event, _new_id, _now, _openai_event
from gateway.providers.demo.anthropic_messages import _message, _message_usage, _stream_message
from gateway.providers.demo.openai_chat import _chat_completion, _chat_usage, _stream_chat
from gateway.providers.demo.openai_responses import _completed_response, _response_object, _stream_responses


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
