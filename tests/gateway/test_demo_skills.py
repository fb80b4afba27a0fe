"""gateway.providers.demo (with demo_skills) through the gateway in process: the demo calls a
tool when asked, returns JSON matching a schema, thinks, and answers the user's real words."""

from __future__ import annotations

import json

import pytest

from tests.gateway.conftest import InProcessGateway

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city", "days"],
}
CHAT_TOOL = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
ANTHROPIC_TOOL = [{"name": "get_weather", "input_schema": WEATHER}]
ASK = "Please use the tool for Paris"


def _events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def test_chat_calls_the_offered_tool_when_asked(gateway: InProcessGateway) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": ASK}], "tools": CHAT_TOOL}

    choice = gateway.request("POST", "/v1/chat/completions", json=body).json()["choices"][0]

    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert set(json.loads(call["function"]["arguments"])) == {"city", "days"}


def test_chat_streams_a_tool_call_as_deltas(gateway: InProcessGateway) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": ASK}], "tools": CHAT_TOOL, "stream": True}

    chunks = _events(gateway.request("POST", "/v1/chat/completions", json=body).text)

    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads("".join(c["function"]["arguments"] for c in calls))["days"] == 1
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


def test_without_being_asked_the_demo_answers_in_words(gateway: InProcessGateway) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "tools": CHAT_TOOL}

    choice = gateway.request("POST", "/v1/chat/completions", json=body).json()["choices"][0]

    assert choice["finish_reason"] == "stop" and "hello" in choice["message"]["content"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_messages_call_the_tool_with_tool_use(gateway: InProcessGateway, stream: bool) -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": ASK}],
        "tools": ANTHROPIC_TOOL,
        "stream": stream,
    }

    response = gateway.request("POST", "/v1/messages", json=body, anthropic=True)

    if stream:
        events = _events(response.text)
        starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
        assert starts[-1]["type"] == "tool_use"
        partial = "".join(
            e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
        )
        assert json.loads(partial)["city"]
        assert next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"
    else:
        message = response.json()
        assert message["stop_reason"] == "tool_use"
        assert message["content"][-1]["type"] == "tool_use" and message["content"][-1]["input"]["days"] == 1


def test_after_the_tool_result_the_demo_answers_in_words(gateway: InProcessGateway) -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 64,
        "tools": ANTHROPIC_TOOL,
        "messages": [
            {"role": "user", "content": ASK},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
        ],
    }

    message = gateway.request("POST", "/v1/messages", json=body, anthropic=True).json()

    assert message["stop_reason"] == "end_turn" and "sunny" in message["content"][0]["text"]


def test_structured_output_is_json_matching_the_schema(gateway: InProcessGateway) -> None:
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "weather?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER}},
    }

    content = gateway.request("POST", "/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]

    assert set(json.loads(content)) == {"city", "days"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_messages_with_thinking_carry_a_thinking_block_first(gateway: InProcessGateway, stream: bool) -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "think"}],
        "stream": stream,
    }

    response = gateway.request("POST", "/v1/messages", json=body, anthropic=True)

    if stream:
        starts = [e["content_block"]["type"] for e in _events(response.text) if e["type"] == "content_block_start"]
        assert starts == ["thinking", "text"]
    else:
        assert [block["type"] for block in response.json()["content"]] == ["thinking", "text"]


def test_the_demo_answers_the_users_words_not_a_system_reminder(gateway: InProcessGateway) -> None:
    content = [
        {"type": "text", "text": "<system-reminder>Todo list is empty</system-reminder>"},
        {"type": "text", "text": "What is 2+2?"},
    ]
    body = {"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": content}]}

    text = gateway.request("POST", "/v1/messages", json=body, anthropic=True).json()["content"][0]["text"]

    assert "2+2" in text and "system-reminder" not in text


def test_responses_call_the_tool_as_a_function_call_item(gateway: InProcessGateway) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]
    body = {"model": "gpt-4o", "input": ASK, "tools": tools, "stream": True}

    events = _events(gateway.request("POST", "/v1/responses", json=body).text)

    completed = events[-1]
    assert completed["type"] == "response.completed"
    assert completed["response"]["output"][0]["type"] == "function_call"
    assert any(e["type"] == "response.function_call_arguments.delta" for e in events)
