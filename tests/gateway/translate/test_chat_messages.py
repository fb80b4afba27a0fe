"""Requests between OpenAI Chat Completions and Anthropic Messages, one mapping per test."""

from __future__ import annotations

import pytest

from gateway.translate import DEFAULT_MAX_TOKENS, Protocol, TranslationError, translate_request

CHAT, MESSAGES = Protocol.CHAT, Protocol.MESSAGES


def to_messages(**body):
    return translate_request(
        {"model": "claude", "messages": [{"role": "user", "content": "hi"}], **body}, source=CHAT, target=MESSAGES
    )


def to_chat(**body):
    return translate_request(
        {"model": "gpt", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **body},
        source=MESSAGES,
        target=CHAT,
    )


def test_system_and_developer_messages_become_the_top_level_system():
    body = to_messages(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": "hi"}]
    body = to_messages(
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "A"}]},
            {"role": "system", "content": "B"},
            {"role": "user", "content": "hi"},
        ]
    )
    assert body["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]


def test_anthropic_system_string_and_blocks_become_one_system_message():
    assert to_chat(system="Be brief.")["messages"][0] == {"role": "system", "content": "Be brief."}
    blocks = [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "B"}]
    assert to_chat(system=blocks)["messages"][0] == {"role": "system", "content": "A\n\nB"}


def test_max_tokens_gets_the_documented_default_when_a_chat_request_names_none():
    assert to_messages()["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert to_messages(max_tokens=50)["max_tokens"] == 50
    assert to_messages(max_completion_tokens=70)["max_tokens"] == 70
    assert to_chat()["max_completion_tokens"] == 100


def test_sampling_parameters_and_stop_sequences_map_both_ways():
    body = to_messages(temperature=0.5, top_p=0.9, stop="END")
    assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.5, 0.9, ["END"])
    assert to_messages(stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    body = to_chat(temperature=0.2, top_p=0.3, stop_sequences=["x"])
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.2, 0.3, ["x"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("n", 2, id="n above one"),
        pytest.param("logit_bias", {"1": 2}, id="logit bias"),
        pytest.param("presence_penalty", 0.5, id="presence penalty"),
        pytest.param("seed", 7, id="seed"),
        pytest.param("logprobs", True, id="logprobs"),
        pytest.param("temperature", 1.5, id="temperature above Anthropic's range"),
        pytest.param("frobnicate", 1, id="an unknown field"),
    ],
)
def test_a_chat_field_anthropic_cannot_honour_is_refused_by_name(field, value):
    with pytest.raises(TranslationError) as refused:
        to_messages(**{field: value})
    assert refused.value.param == field and field in refused.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("top_k", 5, id="top_k"),
        pytest.param("mcp_servers", [{}], id="mcp servers"),
        pytest.param("bogus", 1, id="unknown"),
    ],
)
def test_a_messages_field_chat_cannot_honour_is_refused_by_name(field, value):
    with pytest.raises(TranslationError) as refused:
        to_chat(**{field: value})
    assert refused.value.param == field


def test_images_by_url_and_base64_map_both_ways():
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    blocks = to_messages(messages=[{"role": "user", "content": parts}])["messages"][0]["content"]
    assert blocks == [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]
    back = to_chat(messages=[{"role": "user", "content": blocks}])["messages"][0]["content"]
    assert [p.get("image_url", {}).get("url") for p in back] == [
        None,
        "https://example.com/cat.png",
        "data:image/png;base64,iVBORw0KGgo=",
    ]


def test_a_data_url_that_is_not_base64_is_refused():
    with pytest.raises(TranslationError) as refused:
        to_messages(
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}]
        )
    assert refused.value.param == "messages[0].content[0].image_url"


def test_tool_definitions_and_every_tool_choice_map_both_ways():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    anthropic_tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert to_messages(tools=tools)["tools"] == anthropic_tools
    cases = [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ]
    for chat_choice, anthropic_choice in cases:
        assert to_messages(tools=tools, tool_choice=chat_choice)["tool_choice"] == anthropic_choice
        assert to_chat(tools=anthropic_tools, tool_choice=anthropic_choice)["tool_choice"] == chat_choice
    assert to_chat(tools=anthropic_tools)["tools"] == tools


def test_parallel_tool_calls_false_disables_parallel_tool_use_and_back():
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert to_messages(tools=tools, parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    body = to_chat(
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert body["parallel_tool_calls"] is False


def test_server_tools_are_refused_by_name():
    with pytest.raises(TranslationError) as refused:
        to_chat(tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert refused.value.param == "tools[0].type"


def test_parallel_tool_calls_and_their_results_map_to_tool_use_and_one_user_turn_of_results():
    messages = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Paris"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": '{"city": "Rome"}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rain"}]},
    ]
    out = to_messages(messages=messages)["messages"]
    assert out[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "w", "input": {"city": "Rome"}},
        ],
    }
    assert out[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "rain"}]},
        ],
    }
    back = translate_request({"model": "m", "max_tokens": 5, "messages": out}, source=MESSAGES, target=CHAT)["messages"]
    assert [m["role"] for m in back] == ["user", "assistant", "tool", "tool"]
    assert back[1]["tool_calls"][1] == {
        "id": "call_2",
        "type": "function",
        "function": {"name": "w", "arguments": '{"city":"Rome"}'},
    }
    assert back[3] == {"role": "tool", "tool_call_id": "call_2", "content": "rain"}


def test_tool_call_arguments_that_are_not_a_json_object_are_refused():
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
        }
    ]
    with pytest.raises(TranslationError) as refused:
        to_messages(messages=messages)
    assert refused.value.param == "messages[0].tool_calls[0].function.arguments"


def test_an_error_tool_result_says_so_and_its_images_follow_as_user_content():
    result = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "is_error": True,
        "content": [
            {"type": "text", "text": "no such file"},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        ],
    }
    out = to_chat(messages=[{"role": "user", "content": [result, {"type": "text", "text": "go on"}]}])["messages"]
    assert out[0] == {"role": "tool", "tool_call_id": "t1", "content": "Error: no such file"}
    assert out[1]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        {"type": "text", "text": "go on"},
    ]


def test_earlier_thinking_blocks_are_left_out_of_a_chat_request_and_text_is_kept():
    assistant = {
        "role": "assistant",
        "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "Hello"}],
    }
    out = to_chat(messages=[{"role": "user", "content": "hi"}, assistant])["messages"]
    assert out[1] == {"role": "assistant", "content": "Hello"}


def test_reasoning_effort_and_thinking_budget_map_both_ways():
    body = to_messages(reasoning_effort="medium")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192} and body["max_tokens"] > 8192
    assert "thinking" not in to_messages(reasoning_effort="none")
    assert to_chat(thinking={"type": "enabled", "budget_tokens": 2000})["reasoning_effort"] == "low"
    assert to_chat(thinking={"type": "enabled", "budget_tokens": 50000})["reasoning_effort"] == "high"
    assert "reasoning_effort" not in to_chat(thinking={"type": "disabled"})


def test_structured_output_maps_to_anthropic_output_config_and_back():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    body = to_messages(
        response_format={"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    back = to_chat(output_config={"format": {"type": "json_schema", "schema": schema}})
    assert back["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    assert (
        to_chat(output_format={"type": "json_schema", "schema": schema})["response_format"]["json_schema"]["schema"]
        == schema
    )


def test_a_streamed_request_keeps_stream_and_a_chat_upstream_is_asked_for_usage():
    assert to_messages(stream=True, stream_options={"include_usage": False})["stream"] is True
    body = to_chat(stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert to_chat(stream=False)["stream"] is False and "stream_options" not in to_chat(stream=False)


def test_the_user_id_maps_both_ways():
    assert to_messages(user="u-1")["metadata"] == {"user_id": "u-1"}
    assert to_chat(metadata={"user_id": "u-2"})["user"] == "u-2"


def test_a_pdf_file_part_becomes_a_document_block_and_back():
    part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
    block = to_messages(messages=[{"role": "user", "content": [part]}])["messages"][0]["content"][0]
    assert block == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
    }
    back = to_chat(messages=[{"role": "user", "content": [block]}])["messages"][0]["content"][0]
    assert back["file"]["file_data"] == "data:application/pdf;base64,JVBERi0="


def test_tool_ids_anthropic_would_reject_are_made_safe_on_both_the_call_and_its_result():
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "functions.get:0", "type": "function", "function": {"name": "get", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "functions.get:0", "content": "ok"},
    ]
    out = to_messages(messages=messages)["messages"]
    assert out[0]["content"][0]["id"] == out[1]["content"][0]["tool_use_id"] == "functions_get_0"


def test_anthropic_hints_without_meaning_for_a_chat_model_are_accepted_and_left_out():
    body = to_chat(cache_control={"type": "ephemeral"}, speed="fast", context_management={"edits": []})
    assert not {"cache_control", "speed", "context_management"} & set(body)


def test_effort_above_high_becomes_high_for_a_chat_model():
    assert to_chat(output_config={"effort": "max"})["reasoning_effort"] == "high"
    assert to_messages(reasoning_effort="xhigh")["thinking"]["budget_tokens"] == 24576
