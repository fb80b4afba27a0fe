"""Translated SSE streams, event by event, and read by the official openai and anthropic SDKs."""

from __future__ import annotations

import json

import anthropic
import httpx2
import openai

from gateway.translate import Protocol, StreamTranslator

from .answers import Answer, as_chat, as_messages, as_responses
from .streams import assemble_messages, chat_stream, messages_stream, parse_sse, responses_stream, translate_stream

CHAT, MESSAGES, RESPONSES = Protocol.CHAT, Protocol.MESSAGES, Protocol.RESPONSES
TOOLS = Answer(
    text="Checking both.",
    reasoning="Two cities: two calls.",
    calls=(("call_1", "get_weather", '{"city": "Paris"}'), ("call_2", "get_weather", '{"city": "Rome"}')),
    stop="tool_calls",
    usage=(170, 30, 50, 20),
)


def sse_bytes(events, protocol):
    translator_out = b""
    for name, payload in events:
        data = b"[DONE]" if payload == "[DONE]" else json.dumps(payload).encode()
        translator_out += (
            (b"" if protocol is CHAT or name is None else b"event: " + name.encode() + b"\n")
            + b"data: "
            + data
            + b"\n\n"
        )
    return translator_out


def sdk_transport(body: bytes) -> httpx2.Client:
    """An HTTP client (of the kind both SDKs use) whose every answer is ``body`` as an event stream."""
    answer = lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)  # noqa: E731
    return httpx2.Client(transport=httpx2.MockTransport(answer))


def translated(upstream, source, target) -> bytes:
    translator = StreamTranslator(source=source, target=target, model="client-model")
    out = b"".join(
        translator.feed(name, b"[DONE]" if p == "[DONE]" else json.dumps(p).encode()) for name, p in upstream
    )
    return out + translator.close()


def test_anthropic_events_come_out_as_chat_chunks_in_order():
    events, translator = translate_stream(messages_stream(as_messages(TOOLS), size=4), MESSAGES, CHAT)
    deltas = [p["choices"][0]["delta"] for _, p in events[:-2]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Two cities: two calls."
    assert all("content" not in d or "reasoning_content" not in d for d in deltas), (
        "thinking never rides in a text delta"
    )
    calls = [c for d in deltas for c in d.get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert [c["index"] for c in calls if "id" in c] == [0, 1]
    assert "".join(c["function"]["arguments"] for c in calls if c["index"] == 1) == '{"city": "Rome"}'
    assert events[-3][1]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-2][1]["usage"]["prompt_tokens"] == 170 and events[-1] == (None, "[DONE]")
    assert (
        translator.input_tokens,
        translator.output_tokens,
        translator.cache_read_tokens,
        translator.cache_creation_tokens,
    ) == (170, 30, 50, 20)


def test_chat_chunks_come_out_as_the_full_anthropic_event_order():
    events, _ = translate_stream(chat_stream(as_chat(TOOLS), size=4), CHAT, MESSAGES)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    starts = [p for n, p in events if n == "content_block_start"]
    assert [(p["index"], p["content_block"]["type"]) for p in starts] == [
        (0, "thinking"),
        (1, "text"),
        (2, "tool_use"),
        (3, "tool_use"),
    ]
    assert starts[2]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    json_deltas = [p for n, p in events if n == "content_block_delta" and p["delta"]["type"] == "input_json_delta"]
    assert {p["index"] for p in json_deltas} == {2, 3}
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"] == {
        "input_tokens": 100,
        "output_tokens": 30,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 50,
    }
    assert assemble_messages(events)["content"][3]["input"] == {"city": "Rome"}


def test_chat_chunks_come_out_as_responses_events_with_function_call_deltas():
    events, _ = translate_stream(chat_stream(as_chat(TOOLS), size=5), CHAT, RESPONSES)
    names = [name for name, _ in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert names[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in names and "response.output_text.delta" in names
    added = [p["item"]["type"] for n, p in events if n == "response.output_item.added"]
    assert added == ["reasoning", "message", "function_call", "function_call"]
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["usage"]["input_tokens_details"]["cached_tokens"] == 50
    assert [i.get("call_id") for i in final["output"]] == [None, None, "call_1", "call_2"]


def test_a_length_stop_ends_a_responses_stream_as_incomplete():
    events, _ = translate_stream(chat_stream(as_chat(Answer(text="abc", stop="length"))), CHAT, RESPONSES)
    assert events[-1][0] == "response.incomplete"
    assert events[-1][1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_an_upstream_that_stops_early_still_gets_the_client_protocols_ending():
    events, _ = translate_stream(chat_stream(as_chat(Answer(text="abcdef")))[:3], CHAT, MESSAGES)
    assert [n for n, _ in events][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    events, _ = translate_stream(messages_stream(as_messages(Answer(text="abcdef")))[:4], MESSAGES, CHAT)
    assert events[-1] == (None, "[DONE]") and events[-3][1]["choices"][0]["finish_reason"] == "stop"


def test_close_is_idempotent_and_nothing_follows_the_end():
    translator = StreamTranslator(source=MESSAGES, target=CHAT, model="m")
    for name, payload in messages_stream(as_messages(Answer(text="hi"))):
        translator.feed(name, json.dumps(payload).encode())
    assert translator.close() == b""
    assert translator.feed("ping", b'{"type": "ping"}') == b""


def test_an_anthropic_error_event_mid_stream_becomes_an_openai_error_chunk():
    upstream = messages_stream(as_messages(Answer(text="hello")))[:3]
    upstream.append(("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    events, _ = translate_stream(upstream, MESSAGES, CHAT)
    assert events[-1] == (
        None,
        {"error": {"message": "Overloaded", "type": "server_overloaded", "param": None, "code": None}},
    )


def test_a_chat_error_chunk_becomes_an_anthropic_error_event():
    upstream = [
        *chat_stream(as_chat(Answer(text="hello")))[:2],
        (None, {"error": {"message": "Rate limit", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}),
    ]
    events, _ = translate_stream(upstream, CHAT, MESSAGES)
    assert events[-1] == ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit"}})


def test_a_chat_client_that_did_not_ask_for_usage_gets_no_usage_chunk():
    events, _ = translate_stream(messages_stream(as_messages(Answer(text="hi"))), MESSAGES, CHAT, include_usage=False)
    assert all(p == "[DONE]" or p["choices"] for _, p in events)


def test_each_feed_returns_whole_sse_events_the_moment_they_are_due():
    translator = StreamTranslator(source=CHAT, target=MESSAGES, model="m")
    first = translator.feed(None, json.dumps(chat_stream(as_chat(Answer(text="hi")))[0][1]).encode())
    assert [n for n, _ in parse_sse(first)] == ["message_start", "ping"]
    assert translator.feed(None, b": not json") == b""


# ----------------------------------------------------------------------------- real SDK clients
def test_the_anthropic_sdk_accumulates_a_translated_chat_stream_into_the_message():
    body = translated(chat_stream(as_chat(TOOLS)), CHAT, MESSAGES)
    client = anthropic.Anthropic(api_key="k", base_url="http://gateway", http_client=sdk_transport(body))
    with client.messages.stream(model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[2].input == {"city": "Paris"} and message.content[3].id == "call_2"
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (
        100,
        50,
        30,
    )


def test_the_openai_sdk_reads_a_translated_anthropic_stream_chunk_by_chunk():
    body = translated(messages_stream(as_messages(TOOLS)), MESSAGES, CHAT)
    client = openai.OpenAI(api_key="k", base_url="http://gateway/v1", http_client=sdk_transport(body))
    with client.chat.completions.stream(model="claude", messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking both." and final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.arguments) for c in message.tool_calls] == [
        ("call_1", '{"city": "Paris"}'),
        ("call_2", '{"city": "Rome"}'),
    ]
    assert final.usage.prompt_tokens == 170 and final.usage.prompt_tokens_details.cached_tokens == 50


def test_the_openai_sdk_accumulates_a_translated_anthropic_stream_as_a_responses_stream():
    body = translated(messages_stream(as_messages(TOOLS)), MESSAGES, RESPONSES)
    client = openai.OpenAI(api_key="k", base_url="http://gateway/v1", http_client=sdk_transport(body))
    with client.responses.stream(model="claude", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Checking both."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in calls] == [
        ("call_1", '{"city": "Paris"}'),
        ("call_2", '{"city": "Rome"}'),
    ]
    assert final.usage.input_tokens == 170 and final.usage.output_tokens == 30


def test_a_responses_stream_translated_for_an_anthropic_client_reads_in_the_anthropic_sdk():
    body = translated(responses_stream(as_responses(TOOLS)), RESPONSES, MESSAGES)
    client = anthropic.Anthropic(api_key="k", base_url="http://gateway", http_client=sdk_transport(body))
    with client.messages.stream(model="gpt-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[1].text == "Checking both."


def test_the_sse_helper_encodes_like_the_translator():
    events = messages_stream(as_messages(Answer(text="hi")))
    assert parse_sse(sse_bytes(events, MESSAGES)) == events


def test_parallel_calls_sent_all_at_index_zero_are_still_told_apart_by_their_ids():
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def call(**fields):
        return None, {
            **head,
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **fields}]}, "finish_reason": None}],
        }

    upstream = [
        call(id="a", type="function", function={"name": "f", "arguments": '{"x":'}),
        call(function={"arguments": " 1}"}),
        call(id="b", type="function", function={"name": "g", "arguments": "{}"}),
        (None, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ]
    message = assemble_messages(translate_stream(upstream, CHAT, MESSAGES)[0])
    assert [(b["id"], b["name"], b["input"]) for b in message["content"]] == [("a", "f", {"x": 1}), ("b", "g", {})]
    response = translate_stream(upstream, CHAT, RESPONSES)[0][-1][1]["response"]
    assert [(i["call_id"], i["arguments"]) for i in response["output"]] == [("a", '{"x": 1}'), ("b", "{}")]


def test_an_upstream_error_mid_stream_fails_a_responses_stream_with_error_and_response_failed():
    upstream = [
        *chat_stream(as_chat(Answer(text="hello")))[:3],
        (None, {"error": {"message": "boom", "type": "server_error"}}),
    ]
    events, _ = translate_stream(upstream, CHAT, RESPONSES)
    assert [n for n, _ in events][-2:] == ["error", "response.failed"]
    assert events[-2][1]["message"] == "boom"
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"] == "boom"
