"""The official anthropic SDK against a live Keygate: messages, streams, token counts, typed errors.

``Anthropic(base_url=<keygate>, api_key=<Keygate key>)`` — the 2.x SDK sends the key as
``Authorization: Bearer``, which Keygate accepts as it does ``x-api-key``. Fault models reach the
fake upstream through routes named ``claude-mock-<fault>`` (see ``tests/conftest_live.py``).
"""

from __future__ import annotations

import time

import anthropic
import pytest

from tests.conftest_live import UPSTREAM_SECRET, LiveKeygate, new_request_id, unknown_key

pytestmark = pytest.mark.live

HELLO = [{"role": "user", "content": "Hello Claude"}]


def test_messages_create_answers_through_keygate(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=HELLO)

    assert message.model == "claude-sonnet-4-6"
    assert "Hello Claude" in message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_messages_stream_yields_the_text_and_the_final_message(claude: anthropic.Anthropic) -> None:
    plain = claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=HELLO)

    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=HELLO) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == plain.content[0].text == final.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_messages_count_tokens_answers(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="claude-sonnet-4-6", messages=HELLO)
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=HELLO)

    assert counted.input_tokens == message.usage.input_tokens


def test_the_same_key_works_on_both_protocols(live: LiveKeygate) -> None:
    chat = live.openai("mixed").chat.completions.create(model="gpt-4o", messages=HELLO)
    message = live.anthropic("mixed").messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=HELLO)

    assert chat.choices[0].message.content
    assert message.content[0].text


def test_models_list_in_the_anthropic_shape_shows_what_the_key_may_use(live: LiveKeygate) -> None:
    page = live.anthropic("mixed").models.list()

    assert [model.id for model in page.data] == ["gpt-4o", "claude-sonnet-4-6"]
    assert all(model.type == "model" for model in page.data)


def test_each_text_delta_reaches_the_client_before_the_upstream_sends_the_next(
    live: LiveKeygate, claude: anthropic.Anthropic
) -> None:
    request_id = new_request_id()
    received = []

    with claude.messages.stream(
        model="claude-mock-slow-stream",
        max_tokens=100,
        messages=HELLO,
        extra_body={"mock_chunks": 3, "mock_delay": 0.2},
        extra_headers={"X-Request-Id": request_id},
    ) as stream:
        for text in stream.text_stream:
            received.append((text, time.time()))

    sent = live.upstream_request(request_id)["chunk_times"]  # events 0-2: message_start, block start, ping
    assert [text for text, _ in received] == ["chunk 1 ", "chunk 2 ", "chunk 3 "]
    for index, (_, received_at) in enumerate(received):
        assert received_at < sent[index + 4], f"delta {index + 1} was held back"


# --- typed errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("cause", ["unknown", "malformed", "expired", "revoked"])
def test_a_key_that_is_not_valid_is_an_authentication_error(live: LiveKeygate, cause: str) -> None:
    keys = {
        "unknown": unknown_key(),
        "malformed": "sk-kg-nope",
        "expired": live.keys["expired"],
        "revoked": live.keys["revoked"],
    }

    with pytest.raises(anthropic.AuthenticationError) as error:
        live.anthropic(keys[cause]).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=HELLO)

    assert error.value.body["error"]["type"] == "authentication_error"
    assert error.value.response.headers["www-authenticate"]


def test_a_key_for_gpt_4o_alone_cannot_reach_claude(live: LiveKeygate) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as error:
        live.anthropic("gpt-4o").messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=HELLO)

    assert error.value.body["error"]["type"] == "permission_error"
    assert "claude-sonnet-4-6" in error.value.body["error"]["message"]


def test_a_model_served_by_an_openai_provider_is_translated_for_the_anthropic_sdk(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="gpt-4o", max_tokens=10, messages=HELLO)

    assert message.type == "message" and message.role == "assistant" and message.model == "gpt-4o"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens > 0


def test_a_model_served_by_an_openai_provider_streams_to_the_anthropic_sdk(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="gpt-4o", max_tokens=10, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text and final.content[0].text == text
    assert final.stop_reason in {"end_turn", "max_tokens"}


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        pytest.param(400, anthropic.BadRequestError, "invalid_request_error", id="400"),
        pytest.param(429, anthropic.RateLimitError, "rate_limit_error", id="429"),
        pytest.param(500, anthropic.InternalServerError, "api_error", id="500"),
        pytest.param(529, anthropic.OverloadedError, "overloaded_error", id="529"),
    ],
)
def test_an_upstream_error_keeps_its_status_type_and_message(
    claude: anthropic.Anthropic, status: int, error_class: type[anthropic.APIStatusError], error_type: str
) -> None:
    with pytest.raises(error_class) as error:
        claude.messages.create(model=f"claude-mock-error-{status}", max_tokens=10, messages=HELLO)

    assert error.value.status_code == status
    assert error.value.body["error"] == {"type": error_type, "message": f"mock upstream error {status}"}
    assert UPSTREAM_SECRET not in error.value.response.text


def test_an_unreachable_anthropic_upstream_is_a_502_api_error(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as error:
        claude.messages.create(model="claude-dead", max_tokens=10, messages=HELLO)

    assert error.value.status_code == 502
    assert error.value.body["error"]["type"] == "api_error"


def test_an_upstream_reset_mid_stream_is_an_anthropic_error_event(
    live: LiveKeygate, claude: anthropic.Anthropic
) -> None:
    request_id = new_request_id()
    received = []

    with pytest.raises(anthropic.APIStatusError) as error:
        for event in claude.messages.create(
            model="claude-mock-reset",
            max_tokens=10,
            messages=HELLO,
            stream=True,
            extra_headers={"X-Request-Id": request_id},
        ):
            received.append(event.type)

    assert received == ["message_start", "content_block_start"]
    assert error.value.body["type"] == "error"
    assert error.value.body["error"]["type"] == "api_error"
    assert error.value.body["request_id"] == request_id


def test_a_stalled_anthropic_stream_ends_with_a_timeout_error_event(claude: anthropic.Anthropic) -> None:
    received = []

    with pytest.raises(anthropic.APIStatusError) as error:
        for event in claude.messages.create(model="claude-mock-stall", max_tokens=10, messages=HELLO, stream=True):
            received.append(event.type)

    assert received == ["message_start", "content_block_start"]
    assert error.value.body["error"]["type"] == "timeout_error"


def test_the_clients_request_id_is_echoed(claude: anthropic.Anthropic) -> None:
    request_id = new_request_id()

    message = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=HELLO, extra_headers={"request-id": request_id}
    )

    assert message._request_id == request_id
