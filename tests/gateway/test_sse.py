"""gateway.sse: events pass through byte for byte as soon as they are complete; usage is kept."""

from __future__ import annotations

import json

import pytest

from gateway.sse import SSETap, Usage


def _event(payload: dict | str, name: str | None = None, newline: str = "\n") -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    lines = ([f"event: {name}"] if name else []) + [f"data: {data}"]
    return (newline.join(lines) + newline * 2).encode()


CHAT_STREAM = [
    _event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
    _event({"choices": [{"index": 0, "delta": {"content": "Hello"}}]}),
    _event({"choices": [{"index": 0, "delta": {"content": " world"}}]}),
    _event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
    _event({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}),
    _event("[DONE]"),
]
USAGE_CHUNK = CHAT_STREAM[4]


def _run(tap: SSETap, chunks: list[bytes]) -> tuple[list[bytes], bytes]:
    """Feed ``chunks``; the bytes released after each one, and what flush() releases."""
    return [tap.feed(chunk) for chunk in chunks], tap.flush()


def test_a_complete_event_is_released_by_the_feed_that_completes_it() -> None:
    tap = SSETap()

    released, rest = _run(tap, CHAT_STREAM[:3])

    assert released == CHAT_STREAM[:3]
    assert rest == b""


def test_an_event_split_across_chunks_is_held_until_its_blank_line_arrives() -> None:
    tap = SSETap()
    event = CHAT_STREAM[1]

    first = tap.feed(event[:10])
    second = tap.feed(event[10:-1])
    third = tap.feed(event[-1:])

    assert (first, second, third) == (b"", b"", event)


@pytest.mark.parametrize("drop", [pytest.param(False, id="keep-usage"), pytest.param(True, id="drop-usage")])
def test_every_split_point_of_a_stream_yields_the_same_events(drop: bool) -> None:
    stream = b"".join(CHAT_STREAM)
    expected = stream.replace(USAGE_CHUNK, b"") if drop else stream

    for cut in range(1, len(stream)):
        tap = SSETap(drop_injected_usage=drop)
        released, rest = _run(tap, [stream[:cut], stream[cut:]])
        assert b"".join(released) + rest == expected, cut
        assert (tap.usage.input_tokens, tap.usage.output_tokens) == (7, 3), cut


def test_crlf_separated_events_are_released_whole_and_unchanged() -> None:
    events = [_event({"choices": [{"delta": {"content": "a"}}]}, newline="\r\n"), _event("[DONE]", newline="\r\n")]
    stream = b"".join(events)
    tap = SSETap()

    released, rest = _run(tap, [stream[:5], stream[5:-2], stream[-2:]])

    assert released == [b"", events[0], events[1]]
    assert rest == b""


def test_crlf_events_still_report_usage() -> None:
    tap = SSETap()

    tap.feed(_event({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}, newline="\r\n"))

    assert (tap.usage.input_tokens, tap.usage.output_tokens) == (4, 2)


def test_usage_comes_from_the_final_openai_chat_chunk() -> None:
    tap = SSETap()

    released, _ = _run(tap, CHAT_STREAM)

    assert b"".join(released) == b"".join(CHAT_STREAM)
    assert tap.saw_usage
    assert (tap.usage.input_tokens, tap.usage.output_tokens) == (7, 3)


def test_the_usage_chunk_keygate_asked_for_is_dropped() -> None:
    tap = SSETap(drop_injected_usage=True)

    released, _ = _run(tap, CHAT_STREAM)

    assert b"".join(released) == b"".join(CHAT_STREAM).replace(USAGE_CHUNK, b"")
    assert (tap.usage.input_tokens, tap.usage.output_tokens) == (7, 3)


def test_the_usage_chunk_the_client_asked_for_is_kept() -> None:
    tap = SSETap(drop_injected_usage=False)

    released, _ = _run(tap, [USAGE_CHUNK])

    assert released == [USAGE_CHUNK]


def test_a_usage_chunk_that_also_carries_choices_is_never_dropped() -> None:
    chunk = _event({"choices": [{"delta": {"content": "!"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1}})
    tap = SSETap(drop_injected_usage=True)

    assert tap.feed(chunk) == chunk
    assert tap.usage.input_tokens == 1


def test_chunks_with_usage_null_pass_through_untouched() -> None:
    chunk = _event({"choices": [{"delta": {"content": "x"}}], "usage": None})
    tap = SSETap(drop_injected_usage=True)

    assert tap.feed(chunk) == chunk
    assert (tap.usage.input_tokens, tap.usage.output_tokens) == (0, 0)


def test_usage_comes_from_the_responses_completed_event() -> None:
    events = [
        _event({"type": "response.created", "response": {"id": "r", "usage": None}}, "response.created"),
        _event({"type": "response.output_text.delta", "delta": "hi"}, "response.output_text.delta"),
        _event(
            {"type": "response.completed", "response": {"id": "r", "usage": {"input_tokens": 11, "output_tokens": 5}}},
            "response.completed",
        ),
    ]
    tap = SSETap()

    released, _ = _run(tap, events)

    assert released == events
    assert (tap.usage.input_tokens, tap.usage.output_tokens) == (11, 5)


def test_anthropic_usage_is_message_start_input_and_the_last_message_delta_output() -> None:
    events = [
        _event(
            {"type": "message_start", "message": {"usage": {"input_tokens": 20, "output_tokens": 1}}}, "message_start"
        ),
        _event({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}}, "content_block_delta"),
        _event({"type": "message_delta", "usage": {"output_tokens": 9}}, "message_delta"),
        _event({"type": "message_stop"}, "message_stop"),
    ]
    tap = SSETap()

    released, _ = _run(tap, events)

    assert released == events
    assert (tap.usage.input_tokens, tap.usage.output_tokens) == (20, 9)


def test_anthropic_cache_tokens_count_as_input() -> None:
    usage = Usage()

    usage.absorb({"input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 50})

    assert usage.input_tokens == 155


def test_a_data_line_that_is_not_json_passes_through() -> None:
    event = b'data: {"usage": oops\n\n'
    tap = SSETap(drop_injected_usage=True)

    assert tap.feed(event) == event
    assert not tap.saw_usage


def test_flush_releases_a_trailing_event_that_never_got_its_blank_line() -> None:
    tail = b'data: {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}'
    tap = SSETap()

    released = tap.feed(CHAT_STREAM[1] + tail)
    rest = tap.flush()

    assert (released, rest) == (CHAT_STREAM[1], tail)
    assert (tap.usage.input_tokens, tap.usage.output_tokens) == (2, 1)
    assert tap.flush() == b""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}, (3, 4), id="openai-chat"),
        pytest.param({"usage": {"input_tokens": 6, "output_tokens": 2}}, (6, 2), id="anthropic-or-responses"),
        pytest.param({"data": [], "usage": {"prompt_tokens": 8, "total_tokens": 8}}, (8, 0), id="embeddings"),
        pytest.param({"input_tokens": 9}, (0, 0), id="count-tokens-is-not-usage"),
        pytest.param({"usage": {"prompt_tokens": -1, "completion_tokens": "2"}}, (0, 0), id="nonsense-ignored"),
        pytest.param(["not", "a", "dict"], (0, 0), id="not-an-object"),
    ],
)
def test_usage_is_read_from_a_plain_response_body(body: object, expected: tuple[int, int]) -> None:
    usage = Usage()

    usage.absorb_body(body)

    assert (usage.input_tokens, usage.output_tokens) == expected


@pytest.mark.parametrize(
    ("out", "final"),
    [
        (b"".join(CHAT_STREAM), True),
        (b"".join(CHAT_STREAM[:-1]), False),
        (_event("[DONE]"), True),
        (b"data:[DONE]\n\n", True),
        (_event({"type": "message_delta"}, "message_delta") + _event({"type": "message_stop"}, "message_stop"), True),
        (_event({"type": "response.completed"}, "response.completed"), True),
        (_event({"type": "response.output_text.delta"}, "response.output_text.delta"), False),
        # The words inside an event's JSON are not the event: a model may write them.
        (_event({"choices": [{"index": 0, "delta": {"content": "data: [DONE]"}}]}), False),
        (
            _event({"type": "content_block_delta", "delta": {"text": "event: message_stop"}}, "content_block_delta"),
            False,
        ),
    ],
)
def test_a_streams_final_event_is_recognised_only_as_an_event(out: bytes, final: bool) -> None:
    """What lets a client that hangs up right after the last event count as finished (gateway.relay)."""
    from gateway.relay import _ends_stream

    assert _ends_stream(out) is final
