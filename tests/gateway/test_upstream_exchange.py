"""The gateway in process against a real loopback upstream (tests/support/upstream.py): what
reaches the upstream, what comes back, and the translation seam (gateway.translate)."""

from __future__ import annotations

import enum
import types
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway import plans, proxy, relay
from gateway.models import Provider, ProviderKind, Route
from tests.gateway.conftest import InProcessGateway
from tests.support.upstream import UpstreamServer

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer(expect_key=None) as server:
        yield server


@pytest.fixture
def routed(gateway: InProcessGateway, upstream: UpstreamServer) -> InProcessGateway:
    """``gpt-*`` → an OpenAI-compatible provider, ``claude-*`` → an Anthropic one, both the upstream."""
    oai = Provider.objects.create(name="oai", kind=ProviderKind.OPENAI, base_url=upstream.url + "/v1")
    Route.objects.create(provider=oai, model_pattern="gpt-*", priority=1)
    ant = Provider.objects.create(name="ant", kind=ProviderKind.ANTHROPIC, base_url=upstream.url)
    Route.objects.create(provider=ant, model_pattern="claude-*", priority=1)
    gateway.reload()
    return gateway


def _last(upstream: UpstreamServer) -> dict[str, Any]:
    return upstream.requests[-1]


# --- what passes back, what does not -------------------------------------------------------


def test_upstream_headers_clients_use_pass_through_and_cookies_never(
    routed: InProcessGateway, upstream: UpstreamServer
) -> None:
    response = routed.request("POST", "/v1/chat/completions", json={**CHAT, "mock_headers": True})

    assert response.status_code == 200
    assert response.headers["openai-processing-ms"] == "12"
    assert response.headers["x-ratelimit-remaining-requests"] == "4999"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert response.headers["retry-after-ms"] == "250"
    assert response.headers["x-upstream-request-id"]
    assert "set-cookie" not in response.headers and "keep-alive" not in response.headers


def test_a_cookie_an_upstream_sets_is_never_sent_back_to_it(
    gateway: InProcessGateway, upstream: UpstreamServer
) -> None:
    # By host name: aiohttp's default cookie jar ignores cookies from an IP address, and real
    # upstreams (api.openai.com sets Cloudflare cookies on every answer) have names. One shared
    # client session serves every key: a cookie kept from one request went out on everyone's.
    port = upstream.url.rsplit(":", 1)[1]
    oai = Provider.objects.create(name="named", kind=ProviderKind.OPENAI, base_url=f"http://localhost:{port}/v1")
    Route.objects.create(provider=oai, model_pattern="gpt-*", priority=1)
    gateway.reload()

    for _ in range(2):
        response = gateway.request("POST", "/v1/chat/completions", json={**CHAT, "mock_headers": True})
        assert response.status_code == 200, response.text
    assert "cookie" not in _last(upstream)["headers"]


def test_the_query_string_reaches_the_upstream(routed: InProcessGateway, upstream: UpstreamServer) -> None:
    response = routed.request("POST", "/v1/messages?beta=true", json=MESSAGE, anthropic=True)

    assert response.status_code == 200, response.text
    assert _last(upstream)["query"] == "beta=true"


def test_a_translated_request_goes_upstream_without_the_other_protocols_query(
    routed: InProcessGateway, upstream: UpstreamServer
) -> None:
    response = routed.request("POST", "/v1/messages?beta=true", json={**MESSAGE, "model": "gpt-4o"}, anthropic=True)

    assert response.status_code == 200, response.text
    assert (_last(upstream)["path"], _last(upstream)["query"]) == ("/v1/chat/completions", "")


def test_a_bad_key_is_told_not_to_retry(gateway: InProcessGateway) -> None:
    response = gateway.request(
        "POST", "/v1/chat/completions", json=CHAT, key=None, headers={"authorization": "Bearer sk-kg-nope"}
    )

    assert response.status_code == 401
    assert response.headers["x-should-retry"] == "false"


# --- base URLs ------------------------------------------------------------------------------


@pytest.fixture
def whole_app(gateway: InProcessGateway, monkeypatch: pytest.MonkeyPatch) -> Any:
    import config.asgi

    monkeypatch.setattr(config.asgi, "gateway_application", gateway.app)
    return config.asgi.application


def test_a_doubled_v1_is_served_as_v1(gateway: InProcessGateway, whole_app: Any) -> None:
    response = gateway.request("POST", "/v1/v1/chat/completions", json=CHAT, app=whole_app)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "anthropic", "shape"),
    [
        pytest.param("/chat/completions", False, "openai", id="chat"),
        pytest.param("/responses", False, "openai", id="responses"),
        pytest.param("/messages", True, "anthropic", id="messages"),
    ],
)
def test_an_endpoint_without_v1_gets_a_json_404_naming_the_base_url(
    gateway: InProcessGateway, whole_app: Any, path: str, anthropic: bool, shape: str
) -> None:
    response = gateway.request("POST", path, json=CHAT, anthropic=anthropic, app=whole_app)

    assert response.status_code == 404
    body = response.json()
    message = body["error"]["message"]
    assert "/v1" in message
    assert (body.get("type") == "error") is (shape == "anthropic")


def test_an_anthropic_client_refused_on_v1_models_gets_the_anthropic_dialect(gateway: InProcessGateway) -> None:
    response = gateway.request("GET", "/v1/models", key=None, headers={"x-api-key": "sk-kg-bad"})

    assert response.status_code == 401 and response.json()["type"] == "error"


def test_the_api_v1_chat_completions_alias_reaches_the_gateway(gateway: InProcessGateway, whole_app: Any) -> None:
    response = gateway.request("POST", "/api/v1/chat/completions", json=CHAT, app=whole_app)

    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"


def test_head_v1_models_answers_without_a_body(gateway: InProcessGateway) -> None:
    response = gateway.request("HEAD", "/v1/models")

    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["content-length"]) > 0


# --- the access log -------------------------------------------------------------------------


def test_every_refused_request_has_an_access_line_with_its_reason_and_no_key(gateway: InProcessGateway) -> None:
    bad = "sk-kg-abcdefghijklSECRETSECRETSECRET1234"
    gateway.request("POST", "/v1/chat/completions", json=CHAT, key=None, headers={"authorization": f"Bearer {bad}"})
    gateway.request("POST", "/v1/nowhere", json=CHAT)
    gateway.request("GET", "/v1/chat/completions")
    gateway.request("POST", "/v1/chat/completions", content=b"{nope")

    lines = gateway.access_lines()
    assert [line["status"] for line in lines] == [401, 404, 405, 400]
    assert all(line["error"] for line in lines)
    assert "SECRET" not in gateway.log.getvalue()


# --- translation seam: a tiny fake gateway.translate (the real one is merged by the lead) ---


class _Protocol(enum.StrEnum):
    CHAT = "chat"
    MESSAGES = "messages"
    RESPONSES = "responses"


class _TranslationError(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param = message, param


def _fake_translate() -> types.SimpleNamespace:
    calls: list[tuple[str, str, str]] = []

    def translate_request(body: dict, *, source: _Protocol, target: _Protocol) -> dict:
        calls.append(("request", source, target))
        if "n" in body:
            raise _TranslationError("'n' cannot be translated", "n")
        text = body["messages"][-1]["content"]
        return {
            "model": body["model"],
            "stream": body.get("stream", False),
            "messages": [{"role": "user", "content": text}],
        }

    def translate_response(body: dict, *, source: _Protocol, target: _Protocol, model: str) -> dict:
        calls.append(("response", source, target))
        text = body["choices"][0]["message"]["content"]
        return {
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 2},
        }

    class StreamTranslator:
        def __init__(self, *, source: _Protocol, target: _Protocol, model: str) -> None:
            calls.append(("stream", source, target))
            self.input_tokens = self.output_tokens = self.cache_read_tokens = self.cache_creation_tokens = 0
            self.texts: list[str] = []

        def feed(self, event: str | None, data: bytes) -> bytes:
            if data == b"[DONE]":
                return b""
            chunk = orjson.loads(data)
            if chunk.get("usage"):
                self.input_tokens = chunk["usage"]["prompt_tokens"]
                self.output_tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                if choice["delta"].get("content"):
                    delta = {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": choice["delta"]["content"]},
                    }
                    return b"event: content_block_delta\ndata: " + orjson.dumps(delta) + b"\n\n"
            return b""

        def close(self) -> bytes:
            return b'event: message_stop\ndata: {"type":"message_stop"}\n\n'

    def translate_error(status: int, body: bytes, *, source: _Protocol, target: _Protocol) -> tuple[int, dict]:
        calls.append(("error", source, target))
        return status, {"type": "error", "error": {"type": "invalid_request_error", "message": "translated"}}

    def count_tokens(body: dict, *, protocol: _Protocol) -> int:
        calls.append(("count", protocol, protocol))
        return 42

    return types.SimpleNamespace(
        Protocol=_Protocol, TranslationError=_TranslationError, translate_request=translate_request,
        translate_response=translate_response, StreamTranslator=StreamTranslator, translate_error=translate_error,
        count_tokens=count_tokens, calls=calls,
    )  # fmt: skip


@pytest.fixture
def fake_translate(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    fake = _fake_translate()
    monkeypatch.setattr(proxy, "translate", fake)
    monkeypatch.setattr(relay, "translate", fake)
    return fake


def test_without_a_translator_another_protocols_model_is_a_400_naming_the_endpoint(
    routed: InProcessGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plans, "translate", None)

    response = routed.request("POST", "/v1/messages", json={**MESSAGE, "model": "gpt-4o"}, anthropic=True)

    assert response.status_code == 400
    assert "/v1/chat/completions" in response.json()["error"]["message"]


def test_a_messages_request_for_an_openai_model_is_translated_both_ways(
    routed: InProcessGateway, upstream: UpstreamServer, fake_translate: types.SimpleNamespace
) -> None:
    response = routed.request("POST", "/v1/messages", json={**MESSAGE, "model": "gpt-4o"}, anthropic=True)

    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"].startswith("Hello from Keygate")
    assert response.json()["model"] == "gpt-4o"
    sent = _last(upstream)
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "gpt-4o"
    assert fake_translate.calls == [("request", "messages", "chat"), ("response", "chat", "messages")]


def test_a_translated_stream_is_fed_event_by_event_and_closed(
    routed: InProcessGateway, upstream: UpstreamServer, fake_translate: types.SimpleNamespace
) -> None:
    response = routed.request(
        "POST", "/v1/messages", json={**MESSAGE, "model": "gpt-4o", "stream": True}, anthropic=True
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.count("event: content_block_delta") >= 2
    assert response.text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert _last(upstream)["body"]["stream_options"] == {"include_usage": True}
    assert routed.usage_rows()[-1]["output_tokens"] > 0


def test_what_the_translator_cannot_map_is_a_400_naming_the_field(
    routed: InProcessGateway, fake_translate: types.SimpleNamespace
) -> None:
    response = routed.request("POST", "/v1/messages", json={**MESSAGE, "model": "gpt-4o", "n": 2}, anthropic=True)

    assert response.status_code == 400
    assert "'n'" in response.json()["error"]["message"]


def test_an_upstream_error_is_translated_to_the_clients_dialect(
    routed: InProcessGateway, fake_translate: types.SimpleNamespace
) -> None:
    Route.objects.create(
        provider=Provider.objects.get(name="oai"), model_pattern="broken", upstream_model="mock-error-400", priority=1
    )
    routed.reload()

    response = routed.request("POST", "/v1/messages", json={**MESSAGE, "model": "broken"}, anthropic=True)

    assert fake_translate.calls[-1] == ("error", "chat", "messages")
    assert response.json()["error"]["message"] == "translated"


def test_count_tokens_for_an_openai_model_answers_from_the_translator(
    routed: InProcessGateway, upstream: UpstreamServer, fake_translate: types.SimpleNamespace
) -> None:
    before = len(upstream.requests)

    response = routed.request("POST", "/v1/messages/count_tokens", json={**MESSAGE, "model": "gpt-4o"}, anthropic=True)

    assert response.status_code == 200 and response.json() == {"input_tokens": 42}
    assert len(upstream.requests) == before


# --- CORS -----------------------------------------------------------------------------------


def _with_cors(gateway: InProcessGateway, monkeypatch: pytest.MonkeyPatch, origins: list[str]) -> None:
    from gateway.cors import CORS

    monkeypatch.setattr(gateway.app, "cors", CORS(origins))


def test_without_cors_origins_a_preflight_is_refused(gateway: InProcessGateway) -> None:
    response = gateway.request("OPTIONS", "/v1/chat/completions", key=None, headers={"origin": "https://app.test"})

    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


def test_a_preflight_from_an_allowed_origin_names_the_sdk_headers(
    gateway: InProcessGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_cors(gateway, monkeypatch, ["https://app.test"])

    response = gateway.request(
        "OPTIONS",
        "/v1/messages",
        key=None,
        headers={
            "origin": "https://app.test",
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-api-key, anthropic-version, x-stainless-os, "
            "anthropic-dangerous-direct-browser-access",
        },
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.test"
    allowed = response.headers["access-control-allow-headers"]
    assert "x-stainless-os" in allowed and "anthropic-dangerous-direct-browser-access" in allowed


def test_an_answer_to_an_allowed_origin_carries_the_cors_headers_and_others_do_not(
    gateway: InProcessGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_cors(gateway, monkeypatch, ["https://app.test"])

    allowed = gateway.request("POST", "/v1/chat/completions", json=CHAT, headers={"origin": "https://app.test"})
    other = gateway.request("POST", "/v1/chat/completions", json=CHAT, headers={"origin": "https://evil.test"})

    assert allowed.headers["access-control-allow-origin"] == "https://app.test"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in other.headers


# --- /v1/models from the upstreams ----------------------------------------------------------


def test_models_lists_what_the_upstream_lists_once_fetched_in_the_background(
    routed: InProcessGateway, upstream: UpstreamServer
) -> None:
    def listed() -> set[str]:
        return {model["id"] for model in routed.request("GET", "/v1/models").json()["data"]}

    Route.objects.create(provider=Provider.objects.get(name="oai"), model_pattern="mock-*", priority=1)
    routed.reload()
    assert "mock-model-a" not in listed()  # never fetched on the request path

    routed.runner.run(routed.app.discover_upstream_models())

    assert {"mock-model-a", "mock-model-b"} <= listed()


def test_an_upstream_whose_model_list_fails_keeps_serving(
    gateway: InProcessGateway, caplog: pytest.LogCaptureFixture
) -> None:
    dead = Provider.objects.create(name="dead", kind=ProviderKind.OPENAI, base_url="http://127.0.0.1:9/v1")
    Route.objects.create(provider=dead, model_pattern="dead-*", priority=1)
    gateway.reload()

    gateway.runner.run(gateway.app.discover_upstream_models())

    assert "dead" in caplog.text
    assert gateway.request("POST", "/v1/chat/completions", json=CHAT).status_code == 200


def test_only_known_query_parameters_reach_the_upstream(routed: InProcessGateway, upstream: UpstreamServer) -> None:
    routed.request("POST", "/v1/messages?beta=true&base_url=http://evil.test", json=MESSAGE, anthropic=True)

    assert _last(upstream)["query"] == "beta=true"


# --- the real translator (gateway.translate) behind the same boundary -----------------------


def test_a_messages_request_for_an_openai_model_is_answered_by_the_real_translator(
    routed: InProcessGateway, upstream: UpstreamServer
) -> None:
    response = routed.request("POST", "/v1/messages", json={**MESSAGE, "model": "gpt-4o"}, anthropic=True)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "message" and body["role"] == "assistant" and body["model"] == "gpt-4o"
    assert body["content"][0]["type"] == "text" and body["content"][0]["text"]
    assert body["usage"]["output_tokens"] > 0
    sent = _last(upstream)
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["messages"][-1]["role"] == "user"


def test_a_chat_request_for_an_anthropic_model_streams_through_the_real_translator(
    routed: InProcessGateway, upstream: UpstreamServer
) -> None:
    chat = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hello!"}], "stream": True}

    response = routed.request("POST", "/v1/chat/completions", json=chat)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert '"chat.completion.chunk"' in response.text
    assert response.text.rstrip().endswith("data: [DONE]")
    assert _last(upstream)["path"] == "/v1/messages"
    assert "max_tokens" in _last(upstream)["body"]


def test_a_field_the_real_translator_cannot_map_is_a_400_naming_it(routed: InProcessGateway) -> None:
    response = routed.request(
        "POST", "/v1/messages", json={**MESSAGE, "model": "gpt-4o", "bogus_field": 1}, anthropic=True
    )

    assert response.status_code == 400
    assert "bogus_field" in response.json()["error"]["message"]
