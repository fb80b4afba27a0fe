"""GatewayRequest.from_scope and require_model: headers, request ids, model names (no I/O)."""

import pytest
from django.conf import settings

from gateway.exceptions import BadRequest
from gateway.http import GatewayRequest, require_model
from gateway.wire import Dialect


def _from(headers: list[tuple[bytes, bytes]]) -> GatewayRequest:
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers}
    return GatewayRequest.from_scope(scope, Dialect.OPENAI, "chat/completions")


def test_header_names_are_lower_cased_and_values_kept_as_sent():
    request = _from([(b"Content-Type", b"application/json"), (b"X-Stainless-Lang", b"Python")])
    assert request.headers == {"content-type": "application/json", "x-stainless-lang": "Python"}


def test_a_repeated_header_keeps_every_value_joined_in_order():
    request = _from(
        [(b"accept", b"text/event-stream"), (b"x-one", b"1"), (b"Accept", b"application/json"), (b"accept", b"*/*")]
    )
    assert request.headers["accept"] == "text/event-stream, application/json, */*"
    assert request.headers["x-one"] == "1"
    assert list(request.headers) == ["accept", "x-one"]


def test_a_well_formed_client_request_id_is_kept():
    assert _from([(b"x-request-id", b"trace-42.a:b/c")]).request_id == "trace-42.a:b/c"
    assert _from([(b"request-id", b"anthropic-style-7")]).request_id == "anthropic-style-7"


@pytest.mark.parametrize("incoming", [b"", b"has space", b"x" * 129, b"semi;colon"])
def test_a_missing_or_malformed_request_id_is_replaced_by_a_fresh_one(incoming):
    first, second = (_from([(b"x-request-id", incoming)]).request_id for _ in range(2))
    assert first.startswith("req_") and second.startswith("req_")
    assert first != second


def test_a_key_sent_as_request_id_is_masked():
    key_like = f"{settings.KEYGATE_KEY_PREFIX}-abcdefghijkl" + "s" * 32
    request_id = _from([(b"x-request-id", key_like.encode())]).request_id
    assert "s" * 16 not in request_id
    assert request_id.startswith(f"{settings.KEYGATE_KEY_PREFIX}-abcdefghijkl")
    assert request_id.endswith("-redacted")


@pytest.mark.parametrize("model", ["gpt-4o\x00", "a\nb", "tab\there", "end\x1f", "esc\x1b[0m"])
def test_a_model_name_with_a_control_character_is_refused(model):
    with pytest.raises(BadRequest, match="not a valid model name"):
        require_model({"model": model})


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4-5", "org/model:tag", "modèle-ü", "a" * 256])
def test_ordinary_model_names_pass(model):
    assert require_model({"model": model}) == model


def test_an_overlong_model_name_is_refused():
    with pytest.raises(BadRequest, match="not a valid model name"):
        require_model({"model": "a" * 257})
