"""Micro-benchmark of gateway/translate: µs per translated request, answer and stream event.

    .venv/bin/python bench/translate_bench.py [--quick] [--json]

"added per request" is everything a translated non-streamed request costs over pass-through: parse the
client body, translate it, encode it for the upstream, parse the upstream's answer, translate it, encode
it for the client (target ≤ 300 µs p50, issue #11). Bodies: a small chat and an agent-sized one (a
Claude-Code-like request: 12 tools, 40 messages with tool calls and results, ~30 kB). Stream figures
are per upstream event fed through StreamTranslator.feed (parse, translate, encode).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.translate import Protocol, StreamTranslator, translate_request, translate_response

CHAT, MESSAGES, RESPONSES = Protocol.CHAT, Protocol.MESSAGES, Protocol.RESPONSES


def agent_request() -> dict:
    tools = [
        {
            "name": f"tool_{i}",
            "description": "Does one thing well. " * 10,
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "n": {"type": "integer"}},
                "required": ["path"],
            },
        }
        for i in range(12)
    ]
    messages: list[dict] = [{"role": "user", "content": "Fix the failing test in the repository, please. " * 5}]
    for i in range(13):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look at that file first. " * 3},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{i}",
                        "name": "tool_1",
                        "input": {"path": f"src/module_{i}.py", "n": i},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "def f():\n    return 1\n" * 40}
                ],
            }
        )
    messages.append({"role": "assistant", "content": "I found it."})
    messages.append({"role": "user", "content": "Go ahead."})
    return {
        "model": "gpt-4o",
        "max_tokens": 8192,
        "system": [{"type": "text", "text": "You are a coding agent. " * 40}],
        "messages": messages,
        "tools": tools,
        "stream": False,
    }


def small_chat() -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}],
        "max_tokens": 100,
    }


ANTHROPIC_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [
        {"type": "text", "text": "Hello! " * 40},
        {"type": "tool_use", "id": "toolu_1", "name": "tool_1", "input": {"path": "a.py"}},
    ],
    "stop_reason": "tool_use",
    "usage": {
        "input_tokens": 900,
        "output_tokens": 80,
        "cache_read_input_tokens": 4000,
        "cache_creation_input_tokens": 0,
    },
}
CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! " * 40,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "tool_1", "arguments": '{"path": "a.py"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 4900, "completion_tokens": 80, "prompt_tokens_details": {"cached_tokens": 4000}},
}


def timed(fn, repeat: int) -> dict:
    for _ in range(min(repeat // 10, 200)):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return {"p50_us": round(statistics.median(samples), 1), "p99_us": round(samples[int(len(samples) * 0.99) - 1], 1)}


def round_trip(client_body: bytes, source: Protocol, target: Protocol, answer: bytes):
    def run() -> None:
        upstream_body = orjson.dumps(translate_request(orjson.loads(client_body), source=source, target=target))
        orjson.dumps(translate_response(orjson.loads(answer), source=target, target=source, model="m"))
        assert upstream_body

    return run


def stream_events(source: Protocol) -> list[tuple[str | None, bytes]]:
    """A 200-delta upstream stream of ``source`` (text), as (event name, data) pairs."""
    if source is MESSAGES:
        events = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {"id": "msg_1", "usage": {"input_tokens": 10, "output_tokens": 1}},
                },
            )
        ]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        events += [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}},
            )
        ] * 200
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 200}},
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    elif source is CHAT:
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}],
        }
        events = [(None, chunk)] * 200 + [
            (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            (None, {**chunk, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 200}}),
        ]
    else:
        events = [("response.created", {"type": "response.created", "response": {"id": "resp_1"}})]
        events += [
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "word ",
                },
            )
        ] * 200
        events += [
            (
                "response.completed",
                {
                    "type": "response.completed",
                    "response": {
                        "id": "resp_1",
                        "status": "completed",
                        "usage": {"input_tokens": 10, "output_tokens": 200},
                    },
                },
            )
        ]
    return [(name, orjson.dumps(payload)) for name, payload in events]


def stream_figure(source: Protocol, target: Protocol, repeat: int) -> dict:
    events = stream_events(source)
    samples = []
    for _ in range(repeat):
        translator = StreamTranslator(source=source, target=target, model="m")
        start = time.perf_counter_ns()
        for name, data in events:
            translator.feed(name, data)
        translator.close()
        samples.append((time.perf_counter_ns() - start) / 1000 / len(events))
    first = []
    for _ in range(repeat * 5):
        translator = StreamTranslator(source=source, target=target, model="m")
        start = time.perf_counter_ns()
        translator.feed(*events[0])
        first.append((time.perf_counter_ns() - start) / 1000)
    return {
        "per_event_p50_us": round(statistics.median(samples), 2),
        "first_event_p50_us": round(statistics.median(first), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    repeat = 300 if args.quick else 3000
    agent = agent_request()
    agent_chat = translate_request(agent, source=MESSAGES, target=CHAT)
    bodies = {
        "small chat -> messages": (orjson.dumps(small_chat()), CHAT, MESSAGES, orjson.dumps(ANTHROPIC_ANSWER)),
        "agent messages -> chat": (orjson.dumps(agent), MESSAGES, CHAT, orjson.dumps(CHAT_ANSWER)),
        "agent chat -> messages": (orjson.dumps(agent_chat), CHAT, MESSAGES, orjson.dumps(ANTHROPIC_ANSWER)),
        "agent responses -> chat": (
            orjson.dumps(translate_request(agent_chat, source=CHAT, target=RESPONSES)),
            RESPONSES,
            CHAT,
            orjson.dumps(CHAT_ANSWER),
        ),
        "agent responses -> messages": (
            orjson.dumps(translate_request(agent_chat, source=CHAT, target=RESPONSES)),
            RESPONSES,
            MESSAGES,
            orjson.dumps(ANTHROPIC_ANSWER),
        ),
    }
    results: dict = {
        "request_body_kB": round(len(bodies["agent messages -> chat"][0]) / 1024, 1),
        "added_per_request": {},
        "request_only": {},
        "stream": {},
    }
    for label, (body, source, target, answer) in bodies.items():
        results["added_per_request"][label] = timed(round_trip(body, source, target, answer), repeat)
        parsed = orjson.loads(body)
        results["request_only"][label] = timed(
            lambda p=parsed, s=source, t=target: translate_request(p, source=s, target=t), repeat
        )
    for source in Protocol:
        for target in Protocol:
            if source is not target:
                results["stream"][f"{source} -> {target}"] = stream_figure(source, target, max(repeat // 30, 10))
    if args.json:
        print(json.dumps(results))
        return
    print(f"agent-sized request body: {results['request_body_kB']} kB")
    print("\nadded per translated non-streamed request (parse + translate + encode, both ways), µs")
    for label, figure in results["added_per_request"].items():
        print(f"  {label:32} p50 {figure['p50_us']:8.1f}   p99 {figure['p99_us']:8.1f}")
    print("\ntranslate_request alone, µs")
    for label, figure in results["request_only"].items():
        print(f"  {label:32} p50 {figure['p50_us']:8.1f}   p99 {figure['p99_us']:8.1f}")
    print("\nstreams (200 text deltas), µs per upstream event and for the first event")
    for label, figure in results["stream"].items():
        print(f"  {label:32} per event {figure['per_event_p50_us']:6.2f}   first {figure['first_event_p50_us']:6.1f}")


if __name__ == "__main__":
    main()
