"""The Responses API translated to and from Chat Completions and Anthropic Messages."""

from __future__ import annotations

import pytest

from gateway.translate import Protocol, TranslationError, translate_request, translate_response

from .streams import chat_stream, translate_stream

CHAT, MESSAGES, RESPONSES = Protocol.CHAT, Protocol.MESSAGES, Protocol.RESPONSES

CODEX_LIKE = {
    "model": "gpt-5-codex",
    "instructions": "You are a coding agent.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: read-only."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files."}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": '{"command": ["ls"]}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "README.md\nsetup.py"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "Run a command",
            "parameters": {"type": "object"},
            "strict": False,
        }
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "abc",
}


def test_a_codex_style_request_becomes_a_chat_request():
    body = translate_request(CODEX_LIKE, source=RESPONSES, target=CHAT)
    assert body["messages"] == [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "system", "content": [{"type": "text", "text": "Sandbox: read-only."}]},
        {"role": "user", "content": [{"type": "text", "text": "List the files."}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": '{"command": ["ls"]}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "README.md\nsetup.py"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "shell",
                "description": "Run a command",
                "parameters": {"type": "object"},
                "strict": False,
            },
        }
    ]
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False
    assert body["reasoning_effort"] == "medium"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_a_codex_style_request_becomes_an_anthropic_request():
    body = translate_request(CODEX_LIKE, source=RESPONSES, target=MESSAGES)
    assert body["system"] == [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "Sandbox: read-only."},
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "shell", "input": {"command": ["ls"]}}
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "README.md\nsetup.py"}
    ]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192} and body["max_tokens"] > 8192
    assert body["stream"] is True and "stream_options" not in body


def test_a_string_input_is_one_user_message_and_max_output_tokens_is_max_tokens():
    body = translate_request({"model": "m", "input": "hi", "max_output_tokens": 64}, source=RESPONSES, target=MESSAGES)
    assert body["messages"] == [{"role": "user", "content": "hi"}] and body["max_tokens"] == 64


def test_previous_response_id_is_refused_because_nothing_is_stored():
    with pytest.raises(TranslationError) as refused:
        translate_request(
            {"model": "m", "input": "hi", "previous_response_id": "resp_1"}, source=RESPONSES, target=CHAT
        )
    assert refused.value.param == "previous_response_id"


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        pytest.param("tools", [{"type": "web_search"}], "tools[0].type", id="built-in tool"),
        pytest.param("input", [{"type": "item_reference", "id": "x"}], "input[0].type", id="item reference"),
        pytest.param("truncation", "auto", "truncation", id="truncation auto"),
        pytest.param("conversation", "conv_1", "conversation", id="conversation"),
        pytest.param("sideways", True, "sideways", id="unknown field"),
    ],
)
def test_what_the_responses_api_alone_can_do_is_refused_by_name(field, value, param):
    with pytest.raises(TranslationError) as refused:
        translate_request({"model": "m", "input": "hi", field: value}, source=RESPONSES, target=MESSAGES)
    assert refused.value.param == param


def test_text_format_json_schema_becomes_response_format_and_anthropic_output_config():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    request = {
        "model": "m",
        "input": "hi",
        "text": {"format": {"type": "json_schema", "name": "n", "schema": schema, "strict": True}},
    }
    chat = translate_request(request, source=RESPONSES, target=CHAT)
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "n", "schema": schema, "strict": True},
    }
    assert translate_request(request, source=RESPONSES, target=MESSAGES)["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }


def test_images_in_input_reach_both_targets():
    part = {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/", "detail": "auto"}
    request = {"model": "m", "input": [{"role": "user", "content": [part]}]}
    assert translate_request(request, source=RESPONSES, target=CHAT)["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}
    ]
    block = translate_request(request, source=RESPONSES, target=MESSAGES)["messages"][0]["content"]
    assert block == [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}]


def test_a_chat_completion_becomes_a_response_with_items_and_usage():
    completion = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "message": {
                    "content": "Done.",
                    "tool_calls": [{"id": "call_9", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 8}},
    }
    out = translate_response(completion, source=CHAT, target=RESPONSES, model="asked")
    assert out["object"] == "response" and out["status"] == "completed" and out["model"] == "asked"
    assert [i["type"] for i in out["output"]] == ["message", "function_call"]
    assert out["output"][0]["content"][0] == {"type": "output_text", "text": "Done.", "annotations": [], "logprobs": []}
    assert out["output"][1]["call_id"] == "call_9"
    assert out["usage"] == {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 24,
    }


def test_an_anthropic_answer_cut_by_max_tokens_becomes_an_incomplete_response():
    message = {
        "id": "msg_1",
        "content": [{"type": "text", "text": "Once upon"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    out = translate_response(message, source=MESSAGES, target=RESPONSES, model="claude")
    assert out["status"] == "incomplete" and out["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out["output"][0]["content"][0]["text"] == "Once upon"


def test_a_response_becomes_a_chat_completion_and_an_anthropic_message():
    response = {
        "id": "resp_1",
        "status": "completed",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": '{"a": 1}'},
        ],
        "usage": {"input_tokens": 9, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 0}},
    }
    chat = translate_response(response, source=RESPONSES, target=CHAT, model="m")
    assert (
        chat["choices"][0]["finish_reason"] == "tool_calls"
        and chat["choices"][0]["message"]["reasoning_content"] == "think"
    )
    message = translate_response(response, source=RESPONSES, target=MESSAGES, model="m")
    assert [b["type"] for b in message["content"]] == ["thinking", "tool_use"] and message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 9


def test_a_chat_request_becomes_a_responses_request_that_stores_nothing():
    chat = {
        "model": "m",
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
        "max_tokens": 10,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    }
    out = translate_request(chat, source=CHAT, target=RESPONSES)
    assert out["store"] is False and out["max_output_tokens"] == 10
    assert out["input"][0] == {"type": "message", "role": "system", "content": "S"}
    assert out["tools"] == [{"type": "function", "name": "f", "parameters": {}}]
    assert out["tool_choice"] == {"type": "function", "name": "f"}


NAMESPACED = {
    "model": "gpt-4o",
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Spawn a helper."}]},
        {
            "type": "function_call",
            "call_id": "call_1",
            "namespace": "multi_agent_v1",
            "name": "spawn_agent",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "agent-7"},
    ],
    "tools": [
        {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
        {
            "type": "namespace",
            "name": "multi_agent_v1",
            "description": "Sub-agents.",
            "tools": [{"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}}],
        },
    ],
    "client_metadata": {"x-codex-installation-id": "abc"},
}


def test_namespace_tools_are_flattened_and_a_namespaced_call_keeps_its_namespace_in_chat():
    body = translate_request(NAMESPACED, source=RESPONSES, target=CHAT)

    assert [tool["function"]["name"] for tool in body["tools"]] == ["exec_command", "multi_agent_v1--spawn_agent"]
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "multi_agent_v1--spawn_agent"
    assert "client_metadata" not in body


def test_a_flattened_namespace_tool_name_is_valid_for_anthropic():
    body = translate_request(NAMESPACED, source=RESPONSES, target=MESSAGES)

    assert [tool["name"] for tool in body["tools"]] == ["exec_command", "multi_agent_v1--spawn_agent"]


def test_a_call_to_a_flattened_name_comes_back_with_its_namespace():
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "multi_agent_v1--spawn_agent", "arguments": "{}"},
                        },
                        {"id": "call_3", "type": "function", "function": {"name": "mcp__git__log", "arguments": "{}"}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }

    response = translate_response(completion, source=CHAT, target=RESPONSES, model="gpt-4o")

    first, second = response["output"]
    assert (first["namespace"], first["name"]) == ("multi_agent_v1", "spawn_agent")
    assert second["name"] == "mcp__git__log" and "namespace" not in second


def test_a_namespace_holding_a_built_in_tool_is_refused_naming_it():
    body = {**NAMESPACED, "tools": [{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}]}

    with pytest.raises(TranslationError) as refused:
        translate_request(body, source=RESPONSES, target=CHAT)

    assert refused.value.param == "tools[0].tools[0].type"


def test_a_streamed_call_to_a_flattened_name_comes_back_with_its_namespace():
    completion = {
        "id": "chatcmpl-2",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_4", "type": "function", "function": {"name": "ns--do_it", "arguments": '{"a": 1}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }

    events, _ = translate_stream(chat_stream(completion), CHAT, RESPONSES)

    added = next(payload for name, payload in events if name == "response.output_item.added")
    done = next(payload for name, payload in events if name == "response.output_item.done")
    completed = next(payload for name, payload in events if name == "response.completed")
    for item in (added["item"], done["item"], completed["response"]["output"][0]):
        assert (item["namespace"], item["name"]) == ("ns", "do_it")
    assert done["item"]["arguments"] == '{"a": 1}'
