"""Non-streamed answers between Anthropic Messages and OpenAI Chat Completions."""

from __future__ import annotations

import pytest

from gateway.translate import Protocol, translate_response

CHAT, MESSAGES = Protocol.CHAT, Protocol.MESSAGES

ANTHROPIC_ANSWER = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "abc"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 100,
        "output_tokens": 30,
        "cache_read_input_tokens": 50,
        "cache_creation_input_tokens": 20,
    },
}


def test_an_anthropic_answer_becomes_a_chat_completion_with_reasoning_kept_out_of_the_text():
    out = translate_response(ANTHROPIC_ANSWER, source=MESSAGES, target=CHAT, model="claude-sonnet-4-5")
    message = out["choices"][0]["message"]
    assert out["object"] == "chat.completion" and out["model"] == "claude-sonnet-4-5" and out["id"] == "msg_01"
    assert message["content"] == "Let me check."
    assert message["reasoning_content"] == "The user wants weather."
    assert [c["function"]["arguments"] for c in message["tool_calls"]] == ['{"city":"Paris"}', '{"city":"Rome"}']
    assert [c["id"] for c in message["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert out["choices"][0]["finish_reason"] == "tool_calls"


def test_usage_counts_cached_tokens_inside_prompt_tokens_and_back():
    usage = translate_response(ANTHROPIC_ANSWER, source=MESSAGES, target=CHAT, model="m")["usage"]
    assert usage["prompt_tokens"] == 170 and usage["completion_tokens"] == 30 and usage["total_tokens"] == 200
    assert usage["prompt_tokens_details"] == {"cached_tokens": 50, "cache_write_tokens": 20}
    back = translate_response(
        {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}], "usage": usage},
        source=CHAT,
        target=MESSAGES,
        model="m",
    )
    assert back["usage"] == ANTHROPIC_ANSWER["usage"]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason, finish_reason):
    body = {**ANTHROPIC_ANSWER, "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    assert (
        translate_response(body, source=MESSAGES, target=CHAT, model="m")["choices"][0]["finish_reason"]
        == finish_reason
    )


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal")],
)
def test_finish_reasons_map_to_stop_reasons(finish_reason, stop_reason):
    body = {
        "id": "chatcmpl-1",
        "choices": [{"message": {"content": "x"}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    assert translate_response(body, source=CHAT, target=MESSAGES, model="m")["stop_reason"] == stop_reason


def test_a_chat_completion_with_tool_calls_becomes_thinking_text_and_tool_use_blocks():
    body = {
        "id": "chatcmpl-9",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "think",
                    "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
                    ],
                },
                "finish_reason": "stop",  # some servers say stop after calling tools
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3},
    }
    out = translate_response(body, source=CHAT, target=MESSAGES, model="gpt-4o")
    assert out["id"] == "msg_chatcmpl-9" and out["type"] == "message" and out["model"] == "gpt-4o"
    assert out["content"] == [
        {"type": "thinking", "thinking": "think", "signature": ""},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_a", "name": "f", "input": {"x": 1}},
    ]
    assert out["stop_reason"] == "tool_use"
    assert out["usage"] == {
        "input_tokens": 12,
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_broken_tool_arguments_from_an_upstream_stay_visible_instead_of_vanishing():
    body = {
        "choices": [
            {
                "message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{bad"}}]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    out = translate_response(body, source=CHAT, target=MESSAGES, model="m")
    assert out["content"][0]["input"] == {"_unparsed_arguments": "{bad"}
