"""Usage records the live proxy writes (off the request path, in batches), read from its database."""

from __future__ import annotations

import openai
import pytest

from tests.conftest_live import GPT_4O_PRICE, LiveKeygate, new_request_id

pytestmark = pytest.mark.live

HI = [{"role": "user", "content": "how many tokens is this?"}]


@pytest.fixture(scope="module")
def client(live: LiveKeygate) -> openai.OpenAI:
    return live.openai("usage")


def _rid() -> tuple[str, dict[str, dict[str, str]]]:
    request_id = new_request_id()
    return request_id, {"extra_headers": {"X-Request-Id": request_id}}


def test_a_completion_is_recorded_with_its_tokens_and_cost(live: LiveKeygate, client: openai.OpenAI) -> None:
    request_id, options = _rid()

    completion = client.chat.completions.create(model="gpt-4o", messages=HI, **options)

    record = live.usage(request_id)[request_id]
    assert (record["endpoint"], record["model"], record["provider"]) == ("chat/completions", "gpt-4o", "openai")
    assert (record["status_code"], record["streamed"], record["aborted"], record["error_type"]) == (200, 0, 0, "")
    assert (record["input_tokens"], record["output_tokens"]) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    input_price, output_price = GPT_4O_PRICE
    expected = (input_price * record["input_tokens"] + output_price * record["output_tokens"]) / 1_000_000
    assert float(record["cost_usd"]) == pytest.approx(float(expected))
    assert record["ttfb_ms"] is not None and record["ttfb_ms"] > 0


def test_a_stream_is_recorded_as_streamed_with_the_usage_keygate_asked_for(
    live: LiveKeygate, client: openai.OpenAI
) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    request_id, options = _rid()

    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True, **options))

    record = live.usage(request_id)[request_id]
    assert all(chunk.usage is None for chunk in chunks)
    assert (record["streamed"], record["aborted"], record["status_code"]) == (1, 0, 200)
    assert (record["input_tokens"], record["output_tokens"]) == (
        plain.usage.prompt_tokens,
        plain.usage.completion_tokens,
    )


def test_a_stream_read_to_its_last_event_is_finished_though_the_upstream_has_not_closed(
    live: LiveKeygate, client: openai.OpenAI
) -> None:
    """The SDK hangs up as soon as it reads ``[DONE]``; this upstream (``mock-linger``) keeps its
    side open after it. The client had the whole answer: a finished stream with the upstream's
    usage, not an abort (it was, one run in a few, when the SDK's hang-up beat the upstream's close)."""
    request_id, options = _rid()

    chunks = list(client.chat.completions.create(model="mock-linger", messages=HI, stream=True, **options))

    record = live.usage(request_id)[request_id]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello from Keygate")
    assert (record["streamed"], record["aborted"], record["status_code"], record["error_type"]) == (1, 0, 200, "")
    assert record["input_tokens"] > 0 and record["output_tokens"] > 0


def test_a_responses_stream_is_recorded_with_the_completed_events_usage(
    live: LiveKeygate, client: openai.OpenAI
) -> None:
    request_id, options = _rid()

    events = list(client.responses.create(model="gpt-4o", input="count me", stream=True, **options))

    usage = events[-1].response.usage
    record = live.usage(request_id)[request_id]
    assert (record["endpoint"], record["streamed"]) == ("responses", 1)
    assert (record["input_tokens"], record["output_tokens"]) == (usage.input_tokens, usage.output_tokens)


def test_an_anthropic_stream_is_recorded_with_message_start_and_message_delta_usage(live: LiveKeygate) -> None:
    claude = live.anthropic("usage")
    request_id, options = _rid()

    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HI, **options) as stream:
        final = stream.get_final_message()

    record = live.usage(request_id)[request_id]
    assert (record["endpoint"], record["provider"], record["streamed"]) == ("messages", "anthropic", 1)
    assert (record["input_tokens"], record["output_tokens"]) == (final.usage.input_tokens, final.usage.output_tokens)


def test_a_stream_the_client_left_is_recorded_as_aborted(live: LiveKeygate, client: openai.OpenAI) -> None:
    request_id, options = _rid()
    stream = client.chat.completions.create(
        model="mock-slow-stream",
        messages=HI,
        stream=True,
        extra_body={"mock_chunks": 30, "mock_delay": 0.1},
        **options,
    )
    next(iter(stream))

    stream.close()

    record = live.usage(request_id)[request_id]
    assert (record["streamed"], record["aborted"], record["error_type"]) == (1, 1, "client_disconnected")


def test_a_stream_the_upstream_reset_is_recorded_with_what_happened(live: LiveKeygate, client: openai.OpenAI) -> None:
    request_id, options = _rid()

    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="mock-reset", messages=HI, stream=True, **options))

    record = live.usage(request_id)[request_id]
    assert (record["streamed"], record["aborted"], record["error_type"]) == (1, 0, "upstream_reset")


def test_an_upstream_error_is_recorded_with_its_status(live: LiveKeygate, client: openai.OpenAI) -> None:
    request_id, options = _rid()

    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="mock-error-429", messages=HI, **options)

    record = live.usage(request_id)[request_id]
    assert (record["status_code"], record["error_type"], record["provider"]) == (429, "upstream_429", "openai")
