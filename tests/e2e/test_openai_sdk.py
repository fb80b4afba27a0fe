"""The official openai SDK against a live Keygate: every endpoint, streaming, and the typed errors.

``OpenAI(base_url=<keygate>/v1, api_key=<Keygate key>)`` with ``max_retries=0`` (the SDK retries
429/5xx twice by default, which would hide what Keygate answered). Keygate forwards to the fake
upstream of ``tests/support/upstream.py``; fault models select its failures.
"""

from __future__ import annotations

import base64
import time

import openai
import pytest

from tests.conftest_live import (
    FLAKY_FIRST_BYTE_TIMEOUT,
    FLAKY_IDLE_TIMEOUT,
    UPSTREAM_SECRET,
    WRONG_UPSTREAM_SECRET,
    LiveKeygate,
    new_request_id,
    unknown_key,
)

pytestmark = pytest.mark.live

HI = [{"role": "user", "content": "hi"}]


def _texts(chunks: list) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)


# --- every endpoint -------------------------------------------------------------------------


def test_chat_completions_create_answers_through_keygate(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "What is Keygate?"}])

    assert completion.model == "gpt-4o"
    assert "What is Keygate?" in completion.choices[0].message.content
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0


def test_chat_completions_stream_yields_the_answer_without_an_extra_usage_chunk(oai: openai.OpenAI) -> None:
    plain = oai.chat.completions.create(model="gpt-4o-mini", messages=HI)

    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))

    assert _texts(chunks) == plain.choices[0].message.content
    assert len(chunks) > 3
    assert all(chunk.choices for chunk in chunks)  # the usage chunk Keygate asked for is not passed on
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_stream_that_asks_for_usage_gets_the_upstreams_usage_chunk(oai: openai.OpenAI) -> None:
    plain = oai.chat.completions.create(model="gpt-4o-mini", messages=HI)

    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage


def test_completions_create_answers(oai: openai.OpenAI) -> None:
    completion = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")

    assert "Say hi" in completion.choices[0].text
    assert completion.usage.prompt_tokens > 0


def test_embeddings_create_answers_with_one_vector_per_input(oai: openai.OpenAI) -> None:
    response = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])

    assert [item.index for item in response.data] == [0, 1]
    assert all(len(item.embedding) > 0 for item in response.data)
    assert response.data[0].embedding != response.data[1].embedding


def test_images_generate_answers_with_a_png(oai: openai.OpenAI) -> None:
    response = oai.images.generate(model="gpt-image-1", prompt="a key", n=1)

    assert base64.b64decode(response.data[0].b64_json).startswith(b"\x89PNG\r\n\x1a\n")


def test_responses_create_answers(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4o", input="Tell me about keys")

    assert response.status == "completed"
    assert "Tell me about keys" in response.output_text


def test_responses_stream_runs_from_created_to_completed(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="gpt-4o", input="stream it", stream=True))

    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens > 0


def test_models_list_shows_what_the_key_may_use(live: LiveKeygate) -> None:
    client = live.openai("gpt-4o")

    assert [model.id for model in client.models.list()] == ["gpt-4o"]


def test_models_retrieve_finds_an_allowed_model_and_not_another(live: LiveKeygate) -> None:
    client = live.openai("gpt-4o")

    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-mini")


# --- streaming, chunk by chunk ----------------------------------------------------------------


def test_each_chunk_reaches_the_client_before_the_upstream_sends_the_next(
    live: LiveKeygate, oai: openai.OpenAI
) -> None:
    request_id = new_request_id()
    stream = oai.chat.completions.create(
        model="mock-slow-stream",
        messages=HI,
        stream=True,
        extra_body={"mock_chunks": 4, "mock_delay": 0.2},
        extra_headers={"X-Request-Id": request_id},
    )

    received = [
        (chunk.choices[0].delta.content, time.time())
        for chunk in stream
        if chunk.choices and chunk.choices[0].delta.content
    ]

    sent = live.upstream_request(request_id)["chunk_times"]  # event 0 is the role chunk, 1..4 the text
    assert [text for text, _ in received] == [f"chunk {index} " for index in range(1, 5)]
    for index, (_, received_at) in enumerate(received, start=1):
        assert received_at < sent[index + 1], f"chunk {index} was held back until the upstream sent the next"
    assert received[0][1] < sent[-1]


def test_a_client_that_leaves_mid_stream_closes_the_upstream_connection(live: LiveKeygate, oai: openai.OpenAI) -> None:
    request_id = new_request_id()
    stream = oai.chat.completions.create(
        model="mock-slow-stream",
        messages=HI,
        stream=True,
        extra_body={"mock_chunks": 30, "mock_delay": 0.1},
        extra_headers={"X-Request-Id": request_id},
    )
    chunks = iter(stream)
    first, second = next(chunks), next(chunks)

    stream.close()
    closed_at = time.time()

    record = live.upstream.wait_for(
        lambda records: any(r["headers"].get("x-request-id") == request_id and r["disconnected"] for r in records),
        timeout=5,
    )
    record = next(r for r in record if r["headers"].get("x-request-id") == request_id)
    assert first.choices and second.choices
    assert not record["completed"]
    assert len(record["chunk_times"]) < 30
    assert record["disconnected_at"] - closed_at < 1.0


def test_an_upstream_reset_mid_stream_is_an_error_event_after_the_chunks_already_sent(
    live: LiveKeygate, oai: openai.OpenAI
) -> None:
    request_id = new_request_id()
    received = []

    with pytest.raises(openai.APIError) as error:
        for chunk in oai.chat.completions.create(
            model="mock-reset", messages=HI, stream=True, extra_headers={"X-Request-Id": request_id}
        ):
            received.append(chunk)

    assert not isinstance(error.value, openai.APIConnectionError)  # an event, not a broken connection
    assert len(received) == 2
    assert error.value.body["code"] == "upstream_reset"
    assert error.value.body["request_id"] == request_id
    assert live.upstream_request(request_id)["aborted"]


def test_a_stream_that_stalls_ends_with_an_idle_timeout_error_event(live: LiveKeygate, oai: openai.OpenAI) -> None:
    request_id = new_request_id()
    received = []

    with pytest.raises(openai.APIError) as error:
        for chunk in oai.chat.completions.create(
            model="mock-stall", messages=HI, stream=True, extra_headers={"X-Request-Id": request_id}
        ):
            received.append(chunk)
    failed_at = time.time()

    assert not isinstance(error.value, openai.APIConnectionError)
    assert len(received) == 2
    assert error.value.body["code"] == "upstream_idle_timeout"
    # Keygate gives up idle_timeout after it read the last chunk, which is after the upstream sent it.
    last_sent = live.upstream_request(request_id)["chunk_times"][-1]
    assert FLAKY_IDLE_TIMEOUT <= failed_at - last_sent < FLAKY_IDLE_TIMEOUT + 1.5
    live.upstream.wait_for(
        lambda records: any(r["headers"].get("x-request-id") == request_id and r["disconnected"] for r in records),
        timeout=5,
    )


# --- typed errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("cause", ["unknown", "malformed", "expired", "revoked"])
def test_a_key_that_is_not_valid_is_an_authentication_error(live: LiveKeygate, cause: str) -> None:
    keys = {
        "unknown": unknown_key(),
        "malformed": "not-a-keygate-key",
        "expired": live.keys["expired"],
        "revoked": live.keys["revoked"],
    }
    client = live.openai(keys[cause])

    with pytest.raises(openai.AuthenticationError) as error:
        client.chat.completions.create(model="gpt-4o", messages=HI)

    assert error.value.status_code == 401
    assert error.value.code == "invalid_api_key"


def test_a_model_outside_the_keys_patterns_is_a_permission_error_naming_it(live: LiveKeygate) -> None:
    client = live.openai("gpt-4o")

    with pytest.raises(openai.PermissionDeniedError) as error:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)

    assert "gpt-4o-mini" in error.value.message


def test_a_key_for_gpt_4o_reaches_gpt_4o(live: LiveKeygate) -> None:
    client = live.openai("gpt-4o")

    assert client.chat.completions.create(model="gpt-4o", messages=HI).model == "gpt-4o"


def test_the_scope_applies_to_every_endpoint(live: LiveKeygate) -> None:
    client = live.openai("gpt-4o")

    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def test_a_management_key_cannot_call_a_model(live: LiveKeygate) -> None:
    client = live.openai("management")

    with pytest.raises(openai.PermissionDeniedError) as error:
        client.chat.completions.create(model="gpt-4o", messages=HI)

    assert "management key" in error.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"messages": HI}, "model", id="missing-model"),
        pytest.param({"model": 42, "messages": HI}, "model", id="model-not-a-string"),
        pytest.param({"model": "", "messages": HI}, "model", id="empty-model"),
        pytest.param({"model": "gpt-4o", "stream": "yes"}, "stream", id="stream-not-a-boolean"),
        pytest.param(["model", "gpt-4o"], None, id="body-not-an-object"),
    ],
)
def test_a_malformed_request_is_a_bad_request_error(oai: openai.OpenAI, body: object, param: str | None) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        oai.post("/chat/completions", body=body, cast_to=object)

    assert error.value.status_code == 400
    assert error.value.param == param


def test_a_model_served_by_an_anthropic_provider_is_translated_for_the_openai_sdk(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="claude-haiku-4-5", messages=HI)

    assert reply.object == "chat.completion" and reply.model == "claude-haiku-4-5"
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        pytest.param("claude-mock-error-429", openai.RateLimitError, 429, id="429"),
        pytest.param("claude-mock-error-400", openai.BadRequestError, 400, id="400"),
    ],
)
def test_an_anthropic_upstreams_error_is_the_openai_sdks_typed_error(
    oai: openai.OpenAI, model: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as raised:
        oai.chat.completions.create(model=model, messages=HI)

    assert raised.value.status_code == status
    assert isinstance(raised.value.body, dict) and raised.value.body.get("message")


def test_a_model_served_by_an_anthropic_provider_streams_to_the_openai_sdk(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="claude-haiku-4-5", messages=HI, stream=True))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def test_an_unreachable_upstream_is_a_502(live: LiveKeygate, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as error:
        oai.chat.completions.create(model="dead-model", messages=HI)

    assert error.value.status_code == 502
    assert error.value.code == "upstream_unreachable"
    assert live.dead_url not in error.value.message  # the operator's URL stays private


def test_an_upstream_that_does_not_answer_in_time_is_a_504(live: LiveKeygate, oai: openai.OpenAI) -> None:
    request_id = new_request_id()
    started = time.monotonic()

    with pytest.raises(openai.InternalServerError) as error:
        oai.chat.completions.create(
            model="mock-slow-first-byte",
            messages=HI,
            extra_body={"mock_delay": 4},
            extra_headers={"X-Request-Id": request_id},
        )

    elapsed = time.monotonic() - started
    assert error.value.status_code == 504
    assert FLAKY_FIRST_BYTE_TIMEOUT * 0.9 <= elapsed < FLAKY_FIRST_BYTE_TIMEOUT + 1.5
    live.upstream.wait_for(
        lambda records: any(r["headers"].get("x-request-id") == request_id and r["disconnected"] for r in records),
        timeout=5,
    )


def test_a_slow_first_byte_within_the_first_byte_timeout_is_answered(oai: openai.OpenAI) -> None:
    # Longer than the provider's idle timeout (0.4 s), shorter than its first-byte timeout (1.5 s).
    completion = oai.chat.completions.create(model="mock-slow-first-byte", messages=HI, extra_body={"mock_delay": 0.8})

    assert completion.model == "mock-slow-first-byte"


def test_a_plain_answer_that_stalls_is_a_504(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as error:
        oai.chat.completions.create(model="mock-stall", messages=HI)

    assert error.value.status_code == 504
    assert error.value.code == "upstream_idle_timeout"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        pytest.param(400, openai.BadRequestError, id="400"),
        pytest.param(403, openai.PermissionDeniedError, id="403-model-access-upstream"),
        pytest.param(404, openai.NotFoundError, id="404"),
        pytest.param(429, openai.RateLimitError, id="429"),
        pytest.param(500, openai.InternalServerError, id="500"),
        pytest.param(503, openai.InternalServerError, id="503"),
    ],
)
def test_an_upstream_error_keeps_its_status_and_message(
    oai: openai.OpenAI, status: int, error_class: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error_class) as error:
        oai.chat.completions.create(model=f"mock-error-{status}", messages=HI)

    assert error.value.status_code == status
    assert error.value.body["message"] == f"mock upstream error {status}"
    assert UPSTREAM_SECRET not in error.value.response.text


def test_a_stream_the_upstream_refuses_is_its_error_not_a_stream(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as error:
        oai.chat.completions.create(model="mock-error-429", messages=HI, stream=True)

    assert error.value.body["message"] == "mock upstream error 429"
    assert error.value.response.headers["content-type"].startswith("application/json")


def test_an_upstream_429_passes_on_retry_after(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as error:
        oai.chat.completions.create(model="mock-error-429", messages=HI)

    assert error.value.response.headers["retry-after"] == "1"


def test_an_upstream_refusing_keygates_credential_is_a_502_not_a_401(live: LiveKeygate, oai: openai.OpenAI) -> None:
    request_id = new_request_id()

    with pytest.raises(openai.InternalServerError) as error:
        oai.chat.completions.create(model="badcred-model", messages=HI, extra_headers={"X-Request-Id": request_id})

    assert error.value.status_code == 502
    assert error.value.code == "upstream_auth"
    assert WRONG_UPSTREAM_SECRET not in error.value.response.text
    assert live.upstream_request(request_id)["headers"]["authorization"] == f"Bearer {WRONG_UPSTREAM_SECRET}"


def test_an_upstream_redirect_is_a_502_and_is_not_followed(live: LiveKeygate, oai: openai.OpenAI) -> None:
    request_id = new_request_id()

    with pytest.raises(openai.InternalServerError) as error:
        oai.chat.completions.create(model="mock-redirect", messages=HI, extra_headers={"X-Request-Id": request_id})

    assert error.value.status_code == 502
    assert error.value.code == "upstream_redirect"
    assert "location" not in error.value.response.headers
    assert "/elsewhere" not in error.value.response.text
    assert len(live.upstream_requests(request_id)) == 1


def test_an_upstream_answer_that_is_not_json_is_a_502(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as error:
        oai.chat.completions.create(model="mock-invalid-json", messages=HI)

    assert error.value.status_code == 502
    assert error.value.code == "upstream_invalid_json"


def test_an_upstream_answer_over_the_response_limit_is_a_502(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as error:
        oai.chat.completions.create(model="mock-huge", messages=HI)

    assert error.value.status_code == 502
    assert error.value.code == "upstream_too_large"


# --- request ids ------------------------------------------------------------------------------


def test_the_clients_request_id_is_echoed_and_forwarded_upstream(live: LiveKeygate, oai: openai.OpenAI) -> None:
    request_id = new_request_id()

    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HI, extra_headers={"X-Request-Id": request_id}
    )

    assert raw.headers["x-request-id"] == request_id
    assert raw.parse()._request_id == request_id
    assert live.upstream_request(request_id)["headers"]["x-request-id"] == request_id


def test_an_error_carries_the_request_id_in_its_headers_and_body(live: LiveKeygate) -> None:
    request_id = new_request_id()
    client = live.openai("gpt-4o")

    with pytest.raises(openai.PermissionDeniedError) as error:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI, extra_headers={"X-Request-Id": request_id})

    assert error.value.request_id == request_id
    assert error.value.body["request_id"] == request_id
