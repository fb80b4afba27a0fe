"""Property-based tests (Hypothesis) of the parsers an attacker feeds directly: the key format,
the proxy's header and body parsing, its authentication, and SSE framing.

Each property names what must hold for *every* input, not just the examples in the unit tests
(``tests/keys/test_crypto.py``, ``tests/gateway/test_sse.py``, ``tests/gateway/test_cache.py``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.authentication import FailureCounter, KeyAuthentication, credential
from gateway.cache import KeyCache
from gateway.dialects import Dialect, error_body, render_error
from gateway.exceptions import APIException, AuthenticationFailed, BadRequest, NotAuthenticated, Throttled
from gateway.http import GatewayRequest, parse_json_object, require_model
from gateway.sse import SSETap
from keys import crypto
from keys.services import KeyState

PREFIX = "sk-kg"
BASE62 = st.sampled_from(crypto.ALPHABET)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _key_from(public_id: str, secret: str, prefix: str = PREFIX) -> str:
    head = f"{prefix}-{public_id}{secret}"
    return head + crypto.checksum(head)


public_ids = st.text(BASE62, min_size=crypto.PUBLIC_ID_LENGTH, max_size=crypto.PUBLIC_ID_LENGTH)
secrets_ = st.text(BASE62, min_size=crypto.SECRET_LENGTH, max_size=crypto.SECRET_LENGTH)
keys = st.builds(_key_from, public_ids, secrets_)
prefixes = st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)


# --- the key format -----------------------------------------------------------------------------


@FAST
@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
@example("sk-kg-" + "A" * 50)
@example("sk-kg-\udcff" * 9)
def test_parse_key_never_raises_and_accepts_only_well_formed_keys(raw: str) -> None:
    parsed = crypto.parse_key(raw, PREFIX)

    if parsed is not None:
        body = raw[len(PREFIX) + 1 :]
        assert raw.startswith(PREFIX + "-") and len(body) == crypto.BODY_LENGTH
        assert crypto.KEY_BODY_RE.fullmatch(body)
        assert raw[-crypto.CHECKSUM_LENGTH :] == crypto.checksum(raw[: -crypto.CHECKSUM_LENGTH])


@FAST
@given(public_ids, secrets_)
def test_every_key_with_the_right_format_and_checksum_parses_to_its_public_id(public_id: str, secret: str) -> None:
    key = _key_from(public_id, secret)

    parsed = crypto.parse_key(key, PREFIX)

    assert parsed is not None and parsed.public_id == public_id and parsed.raw == key


@settings(max_examples=50, deadline=None)
@given(prefixes)
def test_generated_keys_parse_with_their_own_prefix_and_no_other(prefix: str) -> None:
    public_id, key = crypto.generate_key(prefix)

    assert crypto.parse_key(key, prefix) == crypto.ParsedKey(prefix=prefix, public_id=public_id, raw=key)
    other = "zz" + prefix if prefix != PREFIX else "sk-other"
    assert crypto.parse_key(key, other) is None


def _mutations(key: str, position: int, char: str) -> dict[str, str]:
    """One-character edits of ``key`` at ``position`` (each differs from ``key``)."""
    at = position % len(key)
    swap_at = min(at, len(key) - 2)
    edits = {
        "substitute": key[:at] + char + key[at + 1 :],
        "delete": key[:at] + key[at + 1 :],
        "insert": key[:at] + char + key[at:],
        "transpose": key[:swap_at] + key[swap_at + 1] + key[swap_at] + key[swap_at + 2 :],
        "case": key[:at] + key[at].swapcase() + key[at + 1 :],
        "truncate": key[:at],
        "append": key + char,
    }
    return {name: edited for name, edited in edits.items() if edited != key}


@FAST
@given(keys, st.integers(min_value=0, max_value=200), st.characters(codec="utf-8"))
def test_any_one_character_mistake_in_a_key_is_rejected_offline(key: str, position: int, char: str) -> None:
    for name, mutated in _mutations(key, position, char).items():
        assert crypto.parse_key(mutated, PREFIX) is None, (name, key, mutated)


@FAST
@given(st.text())
def test_the_cache_digest_accepts_any_text(raw: str) -> None:
    assert len(crypto.digest(b"pepper", raw)) == 32


# --- headers and credentials ----------------------------------------------------------------------

header_bytes = st.binary(max_size=300)
raw_headers = st.lists(st.tuples(header_bytes, header_bytes), max_size=12)
auth_values = st.one_of(
    header_bytes,
    st.sampled_from([b"Bearer ", b"bearer\t", b"Basic ", b"Bearer  ", b""]).flatmap(
        lambda scheme: st.one_of(keys.map(str.encode), header_bytes).map(lambda v: scheme + v)
    ),
)
clients = st.one_of(st.none(), st.tuples(st.text(max_size=40), st.integers(0, 65535)))


def _scope(headers: list[tuple[bytes, bytes]], client: Any, path: str = "/v1/chat/completions") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": headers, "client": client}


@FAST
@given(raw_headers, auth_values, auth_values, clients, st.sampled_from(list(Dialect)))
def test_any_header_bytes_make_a_request_and_a_credential_or_none(
    headers: list[tuple[bytes, bytes]], authorization: bytes, api_key: bytes, client: Any, dialect: Dialect
) -> None:
    scope = _scope([*headers, (b"authorization", authorization), (b"x-api-key", api_key)], client)

    request = GatewayRequest.from_scope(scope, dialect, "chat/completions")
    found = credential(request, prefer_api_key_header=request.prefers_api_key_header)

    assert found is None or (isinstance(found, str) and found)
    assert request.debug_auth in (True, False)
    assert 0 < len(request.request_id) <= 128 and request.request_id.isascii()
    assert all(name == name.lower() for name in request.headers)


class _CountingVerifier:
    """Stands in for argon2: counts the keys that reach it; knows one key."""

    def __init__(self, known: str) -> None:
        self.known = known
        self.calls: list[str] = []

    def verify(self, raw: str) -> KeyState | None:
        self.calls.append(raw)
        return _STATE if raw == self.known else None

    def load(self, key_id: int) -> KeyState | None:
        return _STATE


_STATE = KeyState(
    id=1, public_id="x" * 12, name="k", owner_id=None, owner_is_active=True, model_patterns=("*",),
    is_management=False, expires_at=None, revoked_at=None, rpm_limit=None, tpm_limit=None, max_parallel=None,
    budget_tokens=None, budget_usd=None, budget_period="", allowed_ips=(),
)  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(auth_values, auth_values, clients), min_size=1, max_size=8))
def test_authentication_of_any_headers_only_ever_refuses_cleanly_and_garbage_never_reaches_the_verifier(
    attempts: list[tuple[bytes, bytes, Any]],
) -> None:
    known = _key_from("K" * 12, "s" * 32)
    verifier = _CountingVerifier(known)

    async def run() -> list[str]:
        cache = KeyCache(pepper=b"p", prefix=PREFIX, verify=verifier.verify, load_state=verifier.load, threads=1)
        auth = KeyAuthentication(cache, FailureCounter(limit=3))
        outcomes = []
        try:
            for authorization, api_key, client in attempts:
                scope = _scope([(b"authorization", authorization), (b"x-api-key", api_key)], client)
                request = GatewayRequest.from_scope(scope, Dialect.OPENAI, "chat/completions")
                try:
                    _, state = await auth.aauthenticate(request)
                    outcomes.append("ok" if state is _STATE else "?")
                except (NotAuthenticated, AuthenticationFailed, Throttled) as refusal:
                    render_error(request.dialect, refusal, request.request_id)  # renders too
                    outcomes.append(type(refusal).__name__)
        finally:
            cache.close()
        return outcomes

    outcomes = asyncio.run(run())

    assert "?" not in outcomes
    assert all(crypto.parse_key(raw, PREFIX) is not None for raw in verifier.calls)


# --- request bodies -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.dictionaries(st.sampled_from(["model", "stream", "messages", "x"]), json_values, max_size=4).map(
        lambda value: json.dumps(value).encode()
    ),
    st.integers(1, 5000).map(lambda depth: b"[" * depth),
    st.integers(1, 3000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.sampled_from(
        [b"NaN", b'{"model": NaN}', b"Infinity", b'{"model": 1e99999}', b"\xef\xbb\xbf{}", b'{"model":"\\ud800"}']
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_any_request_body_is_a_model_or_a_400(body: bytes) -> None:
    try:
        model = require_model(parse_json_object(body))
    except BadRequest as refusal:
        status, _, rendered = render_error(Dialect.ANTHROPIC, refusal, "req_1")
        assert status == 400 and orjson.loads(rendered)["error"]["type"] == "invalid_request_error"
        return
    assert isinstance(model, str) and model.strip() and len(model) <= 256
    assert all(ord(c) >= 32 for c in model)


@FAST
@given(st.sampled_from(list(Dialect)), st.integers(100, 599), st.text(), st.text() | st.none(), st.text() | st.none())
def test_an_error_body_is_valid_json_in_its_dialect_for_any_message(
    dialect: Dialect, status: int, message: str, error_type: str | None, code: str | None
) -> None:
    payload = orjson.loads(error_body(dialect, status=status, message=message, error_type=error_type, code=code))

    if dialect is Dialect.ANTHROPIC:
        assert payload["type"] == "error" and payload["error"]["message"] == message
    else:
        assert payload["error"]["message"] == message


@FAST
@given(st.text(), st.integers(400, 599))
def test_render_error_accepts_any_detail(message: str, status: int) -> None:
    error = APIException(message)
    error.status_code = status

    rendered_status, headers, body = render_error(Dialect.OPENAI, error, "req_1")

    assert rendered_status == status and orjson.loads(body)["error"]["message"] == message
    assert all(isinstance(name, bytes) and isinstance(value, bytes) for name, value in headers)


# --- SSE framing ----------------------------------------------------------------------------------

usage_objects = st.fixed_dictionaries(
    {"prompt_tokens": st.integers(0, 10**6), "completion_tokens": st.integers(0, 10**6)}
) | st.fixed_dictionaries({"input_tokens": st.integers(0, 10**6), "output_tokens": st.integers(0, 10**6)})
payloads = st.one_of(
    st.builds(
        lambda text: {"choices": [{"index": 0, "delta": {"content": text}}], "usage": None},
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    ),
    st.builds(lambda usage: {"choices": [], "usage": usage}, usage_objects),
    st.builds(lambda usage: {"type": "message_delta", "usage": usage}, usage_objects),
    st.builds(lambda usage: {"type": "message_start", "message": {"usage": usage}}, usage_objects),
    st.builds(lambda usage: {"type": "response.completed", "response": {"usage": usage}}, usage_objects),
    st.just("[DONE]"),
    # No lone surrogates: an upstream's stream is UTF-8, which cannot carry them.
    st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30),
)


@st.composite
def event_streams(draw: st.DrawFn) -> bytes:
    """A stream of well-formed events with one line ending throughout, as real upstreams send."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    events = []
    for payload in draw(st.lists(payloads, max_size=12)):
        data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        lines = []
        if draw(st.booleans()):
            lines.append(": keep-alive")
        if draw(st.booleans()):
            lines.append("event: " + draw(st.sampled_from(["message_delta", "message_start", "ping", "error"])))
        lines.append("data: " + data)
        events.append(newline.join(lines) + newline * 2)
    return "".join(events).encode()


def _feed(stream: bytes, cuts: list[int], *, drop: bool) -> tuple[bytes, tuple[int, int], bool]:
    tap = SSETap(drop_injected_usage=drop)
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    out = b"".join(tap.feed(piece) for piece in pieces) + tap.flush()
    return out, (tap.usage.input_tokens, tap.usage.output_tokens), tap.saw_usage


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams(), st.lists(st.integers(0, 10**6), max_size=20), st.booleans())
def test_any_split_of_an_event_stream_forwards_the_same_bytes_and_usage_as_one_chunk(
    stream: bytes, cuts: list[int], drop: bool
) -> None:
    whole = _feed(stream, [], drop=drop)
    split = _feed(stream, cuts, drop=drop)

    assert split == whole
    if not drop:
        assert whole[0] == stream  # nothing re-encoded, nothing lost


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=20), st.booleans())
def test_the_sse_tap_never_raises_and_loses_no_byte_of_any_input(chunks: list[bytes], drop: bool) -> None:
    tap = SSETap(drop_injected_usage=drop)

    out = b"".join(tap.feed(chunk) for chunk in chunks) + tap.flush()

    if not drop:
        assert out == b"".join(chunks)
    assert tap.usage.input_tokens >= 0 and tap.usage.output_tokens >= 0


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_a_usage_event_split_at_every_byte_is_still_counted(newline: bytes) -> None:
    event = b"data: " + orjson.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}})
    stream = b"data: {}" + newline * 2 + event + newline * 2

    for cut in range(len(stream) + 1):
        _, usage, saw = _feed(stream, [cut], drop=False)
        assert (usage, saw) == ((5, 7), True), cut
