"""The fake upstream and the demo provider, checked with the official SDKs.

The ``openai`` and ``anthropic`` clients talk straight to :class:`UpstreamServer`, so
a pass here proves the demo payloads (plain and streamed) parse in both SDKs and
that each fault model reaches the caller as the SDK's typed error.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import anthropic
import openai
import pytest

from gateway.providers import demo
from tests.support.upstream import ScriptedCall, UpstreamServer

UPSTREAM_KEY = "sk-upstream-test"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(expect_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def fast_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "STREAM_DELAY_SECONDS", 0.001)


@pytest.fixture(scope="module")
def oai(upstream: UpstreamServer) -> Iterator[openai.OpenAI]:
    # max_retries=0: the SDKs retry 429/5xx by default, hiding what the upstream sent.
    with openai.OpenAI(base_url=upstream.url + "/v1", api_key=UPSTREAM_KEY, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def claude(upstream: UpstreamServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=upstream.url, api_key=UPSTREAM_KEY, max_retries=0, timeout=10) as client:
        yield client


class _Reply(NamedTuple):
    """A raw HTTP answer, read in full, for the checks the SDKs cannot make."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _post(upstream: UpstreamServer, path: str, body: dict, headers: dict[str, str]) -> _Reply:
    return _request(upstream, "POST", path, body, headers)


def _request(
    upstream: UpstreamServer,
    method: str,
    path: str,
    body: dict | None = None,
    headers: dict[str, str] | None = None,
) -> _Reply:
    connection = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
    try:
        connection.request(
            method,
            path,
            json.dumps(body) if body is not None else None,
            {"Content-Type": "application/json", **(headers or {})},
        )
        response = connection.getresponse()
        content = response.read()
        names = {name.lower(): value for name, value in response.getheaders()}
        return _Reply(response.status, names, content)
    finally:
        connection.close()


# ------------------------------------------------------------------ OpenAI shapes


def test_chat_completion_echoes_the_last_user_message_with_usage(
    oai: openai.OpenAI,
) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is Keygate?"}]},
        ],
    )

    assert completion.model == "gpt-4o"
    assert completion.id.startswith("chatcmpl-demo")
    assert completion.choices[0].finish_reason == "stop"
    assert "What is Keygate?" in completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_chat_stream_with_include_usage_ends_with_the_same_usage_as_the_plain_answer(
    oai: openai.OpenAI,
) -> None:
    messages = [{"role": "user", "content": "stream me a reply"}]
    plain = oai.chat.completions.create(model="gpt-4o-mini", messages=messages)

    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == plain.choices[0].message.content
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == plain.usage
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_chat_stream_without_include_usage_has_no_usage_chunk(
    oai: openai.OpenAI,
) -> None:
    chunks = list(
        oai.chat.completions.create(model="demo-gpt", messages=[{"role": "user", "content": "hi"}], stream=True)
    )

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_legacy_completions_answer_plain_and_streamed(oai: openai.OpenAI) -> None:
    completion = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    chunks = list(
        oai.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="Say hi",
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert "Say hi" in completion.choices[0].text
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == completion.choices[0].text
    assert chunks[-1].usage == completion.usage


def test_embeddings_by_default_come_as_base64_the_sdk_decodes_to_unit_vectors(
    oai: openai.OpenAI, upstream: UpstreamServer
) -> None:
    upstream.reset()

    response = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])

    assert upstream.requests[-1]["body"]["encoding_format"] == "base64"
    assert [item.index for item in response.data] == [0, 1]
    for item in response.data:
        assert len(item.embedding) == demo.DEFAULT_EMBEDDING_DIMENSIONS
        assert math.isclose(math.sqrt(sum(value * value for value in item.embedding)), 1.0, rel_tol=1e-5)
    assert response.data[0].embedding != response.data[1].embedding
    assert response.usage.prompt_tokens == demo.estimate_tokens("alpha") + demo.estimate_tokens("beta")


def test_embeddings_as_floats_match_the_base64_ones_and_honour_dimensions(
    oai: openai.OpenAI,
) -> None:
    as_floats = oai.embeddings.create(
        model="text-embedding-3-small",
        input="alpha",
        encoding_format="float",
        dimensions=3,
    )
    as_base64 = oai.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=3)

    assert len(as_floats.data[0].embedding) == 3
    assert as_floats.data[0].embedding == pytest.approx(as_base64.data[0].embedding, rel=1e-6)


def test_image_generation_returns_a_png_as_b64_json_or_a_data_url(
    oai: openai.OpenAI,
) -> None:
    as_b64 = oai.images.generate(model="gpt-image-1", prompt="a key", n=2)
    as_url = oai.images.generate(model="gpt-image-1", prompt="a key", response_format="url")

    assert len(as_b64.data) == 2
    assert base64.b64decode(as_b64.data[0].b64_json).startswith(b"\x89PNG\r\n\x1a\n")
    assert as_url.data[0].url.startswith("data:image/png;base64,")
    assert as_b64.usage is not None and as_b64.usage.input_tokens >= 1


def test_responses_create_has_output_text_and_usage(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="gpt-4o", input="Tell me about keys", instructions="Be nice")

    assert response.status == "completed"
    assert "Tell me about keys" in response.output_text
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_responses_stream_runs_from_created_to_completed(oai: openai.OpenAI) -> None:
    plain = oai.responses.create(model="gpt-4o", input=[{"role": "user", "content": "stream it"}])

    events = list(
        oai.responses.create(
            model="gpt-4o",
            input=[{"role": "user", "content": "stream it"}],
            stream=True,
        )
    )

    types = [event.type for event in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == plain.output_text
    assert events[-1].response.usage == plain.usage


def test_responses_stream_helper_accumulates_the_final_response(
    oai: openai.OpenAI,
) -> None:
    with oai.responses.stream(model="gpt-4o", input="helper") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == final.output_text
    assert "helper" in final.output_text


# --------------------------------------------------------------- Anthropic shapes


def test_messages_create_answers_with_text_and_usage(
    claude: anthropic.Anthropic,
) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hello Claude"}]}],
    )

    assert message.model == "claude-sonnet-4-6"
    assert message.id.startswith("msg_demo")
    assert message.stop_reason == "end_turn"
    assert "Hello Claude" in message.content[0].text
    assert message.usage.input_tokens >= 1 and message.usage.output_tokens >= 1


def test_messages_stream_context_manager_yields_text_and_the_final_usage(
    claude: anthropic.Anthropic,
) -> None:
    messages = [{"role": "user", "content": "stream please"}]
    plain = claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=messages)

    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == plain.content[0].text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        plain.usage.input_tokens,
        plain.usage.output_tokens,
    )


def test_messages_raw_stream_follows_the_documented_event_order(
    claude: anthropic.Anthropic,
) -> None:
    events = list(
        claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
    )

    types = [event.type for event in events]  # the SDK drops "ping"
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) == {"content_block_delta"}


def test_count_tokens_matches_the_input_tokens_billed(
    claude: anthropic.Anthropic,
) -> None:
    messages = [{"role": "user", "content": "count me"}]

    counted = claude.messages.count_tokens(model="claude-sonnet-4-6", messages=messages)
    message = claude.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=messages)

    assert counted.input_tokens == message.usage.input_tokens


# ----------------------------------------------------------------- credentials, ids


def test_a_wrong_credential_is_an_authentication_error_in_both_dialects(
    upstream: UpstreamServer,
) -> None:
    wrong_openai = openai.OpenAI(base_url=upstream.url + "/v1", api_key="sk-wrong", max_retries=0)
    wrong_anthropic = anthropic.Anthropic(base_url=upstream.url, api_key="sk-wrong", max_retries=0)

    with pytest.raises(openai.AuthenticationError) as openai_error:
        wrong_openai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.AuthenticationError) as anthropic_error:
        wrong_anthropic.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[])

    assert openai_error.value.code == "invalid_api_key"
    assert anthropic_error.value.body["error"]["type"] == "authentication_error"
    assert "sk-wrong" not in str(openai_error.value) + str(anthropic_error.value)


def test_the_anthropic_sdk_sends_its_api_key_as_a_bearer_token(
    claude: anthropic.Anthropic, upstream: UpstreamServer
) -> None:
    claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[])

    headers = upstream.requests[-1]["headers"]
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "x-api-key" not in headers
    assert headers["anthropic-version"]


def test_an_anthropic_route_also_accepts_x_api_key(upstream: UpstreamServer) -> None:
    response = _post(
        upstream,
        "/v1/messages",
        {"model": "claude-haiku-4-5"},
        {"x-api-key": UPSTREAM_KEY},
    )

    assert response.status == 200
    assert response.json()["type"] == "message"


def test_an_openai_route_does_not_accept_x_api_key(upstream: UpstreamServer) -> None:
    response = _post(
        upstream,
        "/v1/chat/completions",
        {"model": "gpt-4o"},
        {"x-api-key": UPSTREAM_KEY},
    )

    assert response.status == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_the_request_id_is_echoed_and_recorded(oai: openai.OpenAI, upstream: UpstreamServer) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-Request-Id": "req-123"},
    )

    assert raw.headers["x-request-id"] == "req-123"
    assert upstream.requests[-1]["headers"]["x-request-id"] == "req-123"
    assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_an_anthropic_request_id_is_echoed_too(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=5,
        messages=[],
        extra_headers={"request-id": "req-abc"},
    )

    assert message._request_id == "req-abc"


# ------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        pytest.param(400, openai.BadRequestError, id="400"),
        pytest.param(401, openai.AuthenticationError, id="401"),
        pytest.param(429, openai.RateLimitError, id="429"),
        pytest.param(500, openai.InternalServerError, id="500"),
        pytest.param(503, openai.InternalServerError, id="503"),
        pytest.param(529, openai.InternalServerError, id="529"),
    ],
)
def test_an_error_model_is_the_typed_openai_error(
    oai: openai.OpenAI, status: int, error_class: type[openai.APIStatusError]
) -> None:
    with pytest.raises(error_class) as error:
        oai.chat.completions.create(model=f"mock-error-{status}", messages=[{"role": "user", "content": "hi"}])

    assert error.value.status_code == status
    assert error.value.body["message"] == f"mock upstream error {status}"
    assert set(error.value.body) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        pytest.param(400, anthropic.BadRequestError, "invalid_request_error", id="400"),
        pytest.param(401, anthropic.AuthenticationError, "authentication_error", id="401"),
        pytest.param(429, anthropic.RateLimitError, "rate_limit_error", id="429"),
        pytest.param(500, anthropic.InternalServerError, "api_error", id="500"),
        pytest.param(503, anthropic.ServiceUnavailableError, "api_error", id="503"),
        pytest.param(529, anthropic.OverloadedError, "overloaded_error", id="529"),
    ],
)
def test_an_error_model_is_the_typed_anthropic_error(
    claude: anthropic.Anthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    with pytest.raises(error_class) as error:
        claude.messages.create(model=f"mock-error-{status}", max_tokens=5, messages=[], stream=True)

    assert error.value.status_code == status
    assert error.value.body == {
        "type": "error",
        "error": {"type": error_type, "message": f"mock upstream error {status}"},
    }


def test_a_429_carries_retry_after(upstream: UpstreamServer) -> None:
    response = _post(
        upstream,
        "/v1/chat/completions",
        {"model": "mock-error-429"},
        {"Authorization": f"Bearer {UPSTREAM_KEY}"},
    )

    assert response.status == 429
    assert response.headers["retry-after"] == "1"


def test_slow_first_byte_waits_for_mock_delay_then_answers(oai: openai.OpenAI) -> None:
    started = time.monotonic()
    completion = oai.chat.completions.create(
        model="mock-slow-first-byte",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"mock_delay": 0.3},
    )

    assert time.monotonic() - started >= 0.3
    assert completion.model == "mock-slow-first-byte"


def test_slow_first_byte_beyond_the_client_timeout_is_a_timeout(
    oai: openai.OpenAI,
) -> None:
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.2).chat.completions.create(
            model="mock-slow-first-byte",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"mock_delay": 2},
        )


def test_a_slow_stream_delivers_chunk_one_before_the_upstream_sends_the_last(
    oai: openai.OpenAI, upstream: UpstreamServer
) -> None:
    upstream.reset()
    stream = oai.chat.completions.create(
        model="mock-slow-stream",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"mock_chunks": 5, "mock_delay": 0.05},
    )
    first_received_at = None
    contents = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first_received_at = first_received_at or time.time()
            contents.append(chunk.choices[0].delta.content)

    # The upstream marks a response completed after its last write: wait for it.
    record = upstream.wait_for(lambda records: records and records[-1]["completed"], timeout=5)[-1]
    assert contents == [f"chunk {index} " for index in range(1, 6)]
    assert first_received_at < record["chunk_times"][-1]
    assert record["completed"] and not record["disconnected"]


def test_a_stalled_stream_is_recorded_as_disconnected_when_the_client_leaves(
    oai: openai.OpenAI, upstream: UpstreamServer
) -> None:
    upstream.reset()
    stream = oai.chat.completions.create(model="mock-stall", messages=[{"role": "user", "content": "hi"}], stream=True)
    received = [next(stream), next(stream)]
    stream.close()

    records = upstream.wait_for(lambda records: records and records[-1]["disconnected"], timeout=5)

    assert len(received) == 2
    assert len(records[-1]["chunk_times"]) == 2
    assert not records[-1]["completed"]
    assert records[-1]["disconnected_at"] >= records[-1]["chunk_times"][-1]


def test_a_stalled_plain_answer_times_out_at_the_client(oai: openai.OpenAI, upstream: UpstreamServer) -> None:
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.3).chat.completions.create(
            model="mock-stall", messages=[{"role": "user", "content": "hi"}]
        )

    upstream.wait_for(lambda records: records[-1]["disconnected"], timeout=5)


def test_a_reset_stream_is_a_connection_error_after_two_chunks(oai: openai.OpenAI, upstream: UpstreamServer) -> None:
    upstream.reset()
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(
            model="mock-reset",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        ):
            received.append(chunk)

    assert len(received) == 2
    assert upstream.requests[-1]["aborted"]
    assert not upstream.requests[-1]["disconnected"]


def test_invalid_json_is_a_200_the_sdk_cannot_parse(upstream: UpstreamServer, oai: openai.OpenAI) -> None:
    response = _post(
        upstream,
        "/v1/chat/completions",
        {"model": "mock-invalid-json"},
        {"Authorization": f"Bearer {UPSTREAM_KEY}"},
    )

    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.body == b"{not json"
    # Not a typed SDK error: the SDKs let json.JSONDecodeError escape.
    with pytest.raises(json.JSONDecodeError):
        oai.chat.completions.create(model="mock-invalid-json", messages=[])


def test_redirect_points_nowhere_useful(upstream: UpstreamServer) -> None:
    response = _post(
        upstream,
        "/v1/messages",
        {"model": "mock-redirect"},
        {"x-api-key": UPSTREAM_KEY},
    )

    assert response.status == 307
    assert response.headers["location"] == "http://127.0.0.1:1/elsewhere"


def test_huge_is_a_valid_answer_of_about_twenty_megabytes(
    upstream: UpstreamServer,
) -> None:
    response = _post(
        upstream,
        "/v1/chat/completions",
        {"model": "mock-huge"},
        {"Authorization": f"Bearer {UPSTREAM_KEY}"},
    )

    assert response.status == 200
    assert len(response.body) >= 20 * 1024 * 1024
    assert response.json()["object"] == "chat.completion"


def test_a_model_not_in_the_fault_list_gets_the_demo_answer(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="mock-unknown-thing", messages=[{"role": "user", "content": "hi"}])

    assert completion.model == "mock-unknown-thing"


# ----------------------------------------------------------- control and lifecycle


def test_requests_are_readable_and_resettable_over_http(oai: openai.OpenAI, upstream: UpstreamServer) -> None:
    upstream.reset()
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "recorded"}])

    records = _request(upstream, "GET", "/_control/requests").json()
    _request(upstream, "POST", "/_control/reset")

    assert [(record["method"], record["path"]) for record in records] == [("POST", "/v1/chat/completions")]
    assert records[0]["body"]["messages"][0]["content"] == "recorded"
    assert upstream.requests == []


def test_an_unknown_path_is_a_404_in_the_openai_dialect(
    upstream: UpstreamServer,
) -> None:
    response = _post(upstream, "/v1/audio/speech", {}, {"Authorization": f"Bearer {UPSTREAM_KEY}"})

    assert response.status == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_stop_is_idempotent_and_leaves_no_thread_behind() -> None:
    threads_before = set(threading.enumerate())
    server = UpstreamServer().start()
    port = server.port
    stream = openai.OpenAI(base_url=server.url + "/v1", api_key="any", max_retries=0).chat.completions.create(
        model="mock-stall", messages=[], stream=True
    )
    next(stream)

    server.stop()
    server.stop()

    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
    stream.close()


def test_the_module_runs_as_a_process_and_writes_its_port(tmp_path: Path) -> None:
    portfile = tmp_path / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.upstream",
            "--port",
            "0",
            "--portfile",
            str(portfile),
            "--expect-key",
            "k",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not portfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        port = int(portfile.read_text())
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="k", max_retries=0)

        message = client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[])
    finally:
        process.send_signal(signal.SIGTERM)
        return_code = process.wait(timeout=10)

    assert message.type == "message"
    assert return_code == 0


# ------------------------------------------------------------------ demo, directly


@pytest.mark.parametrize("endpoint", sorted(demo.ENDPOINTS))
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param(None, id="none"),
        pytest.param(
            {
                "messages": "oops",
                "input": 3,
                "prompt": [1, 2],
                "dimensions": "x",
                "n": -1,
            },
            id="wrong-types",
        ),
        pytest.param(
            {"messages": [None, {"role": "user", "content": [{"type": "image"}, 7]}]},
            id="odd-parts",
        ),
        pytest.param(
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]},
            id="items",
        ),
    ],
)
def test_the_demo_never_raises_on_odd_input(endpoint: str, body: dict) -> None:
    status, answer = demo.respond(endpoint, body)
    events = demo.stream_events(endpoint, body)

    assert status == 200
    json.dumps(answer)
    assert events and all(event.endswith(b"\n\n") for event in events)


def test_the_demo_answers_an_unknown_endpoint_with_an_openai_404() -> None:
    status, answer = demo.respond("audio/speech", {})

    assert status == 404
    assert answer["error"]["code"] == "not_found"


def test_the_demo_reply_is_deterministic_and_truncates_long_messages() -> None:
    body = {"messages": [{"role": "user", "content": "word " * 100}]}

    first = demo.respond("chat/completions", body)[1]["choices"][0]["message"]["content"]
    second = demo.respond("chat/completions", body)[1]["choices"][0]["message"]["content"]

    assert first == second
    assert first.startswith("Hello from Keygate's demo provider! You said:")
    assert first.endswith('…"')


def test_the_demo_stream_paces_the_events_it_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(demo, "STREAM_DELAY_SECONDS", 0.01)
    body = {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": "hi"}],
    }

    async def collect() -> list[bytes]:
        return [event async for event in demo.stream("messages", body)]

    started = time.monotonic()
    events = asyncio.run(collect())

    names = [event.split(b"\n", 1)[0] for event in events]
    assert names == [event.split(b"\n", 1)[0] for event in demo.stream_events("messages", body)]
    assert time.monotonic() - started >= 0.01 * (len(events) - 1)


def test_a_script_makes_the_upstream_call_exactly_its_tool_in_every_protocol(
    upstream: UpstreamServer, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    tools = [{"type": "function", "function": {"name": "first", "parameters": {}}}]
    tools.append({"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}})
    upstream.script = lambda endpoint, body: ScriptedCall("run", {"cmd": "echo hi", "n": 2})
    try:
        chat = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "go"}], tools=tools)
        with claude.messages.stream(
            model="m",
            max_tokens=50,
            messages=[{"role": "user", "content": "go"}],
            tools=[{"name": "run", "input_schema": {"type": "object"}}],
        ) as stream:
            message = stream.get_final_message()
    finally:
        upstream.script = None

    [call] = chat.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("run", {"cmd": "echo hi", "n": 2})
    [use] = [block for block in message.content if block.type == "tool_use"]
    assert (use.name, use.input) == ("run", {"cmd": "echo hi", "n": 2})
    assert upstream.requests[-1]["body"]["tools"][0]["name"] == "run", "the log keeps what the client sent"


def test_without_a_script_call_the_demo_answers(upstream: UpstreamServer, oai: openai.OpenAI) -> None:
    upstream.script = lambda endpoint, body: None
    try:
        chat = oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "go"}])
    finally:
        upstream.script = None

    assert chat.choices[0].message.content.startswith("Hello from Keygate")


# ------------------------------------------------------------------ a forced fault


def test_a_forced_fault_applies_to_every_model_until_it_is_cleared(upstream: UpstreamServer) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {UPSTREAM_KEY}"}
    upstream.fault = "mock-error-503"
    try:
        assert _post(upstream, "/v1/chat/completions", body, headers).status == 503
    finally:
        upstream.fault = None

    assert _post(upstream, "/v1/chat/completions", body, headers).status == 200


def test_the_fault_is_set_over_http_too(upstream: UpstreamServer) -> None:
    try:
        assert _post(upstream, "/_control/fault", {"fault": "mock-error-529"}, {}).json() == {"fault": "mock-error-529"}
        assert upstream.fault == "mock-error-529"
    finally:
        _post(upstream, "/_control/fault", {"fault": None}, {})

    assert upstream.fault is None
