"""Hostile input against a real server, byte for byte on a raw socket (an HTTP client would fix
or refuse much of it before sending): every probe gets a 4xx — in the endpoint's dialect when
Keygate answers, or a bare one when the HTTP layer refuses the bytes itself (uvicorn's parser: 400;
``config.serve``'s request-head limit: 431) — never a 5xx; afterwards the server still serves and
its log holds no stack trace.

Already covered elsewhere, not repeated here: bad JSON, an empty body, an array or string body,
a missing/null/number/list/blank/overlong/control-character model, a non-boolean ``stream``
(``tests/gateway/test_errors_live.py``, both dialects); a body over the limit, declared or
chunked (same file); GET/PUT/POST/DELETE on the wrong endpoint (405, same file); unknown,
malformed, expired and revoked keys looking alike (``tests/gateway/test_credentials_live.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from keys import crypto
from tests.conftest_live import LiveKeygate
from tests.security.helpers import RawResponse, csrf_token, failures_in, http_request, raw_request

pytestmark = pytest.mark.live

CHAT = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}'
MESSAGE = b'{"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}'
VERSION = (b"anthropic-version", b"2023-06-01")
JSON = (b"content-type", b"application/json")
DIALECTS = {b"/v1/chat/completions": "openai", b"/v1/messages": "anthropic"}
DEEP = 12_000  # 60 KB of "{"a":" — under the live server's 64 KiB body limit, 12x orjson's depth limit
SQL_INJECTIONS = [
    b"' OR '1'='1",
    b"sk-kg-' OR 1=1--",
    b"admin'--",
    b"1; DROP TABLE keys_apikey;--",
    b'" OR ""="',
    b"%27%20OR%20%271%27%3D%271",
    b"' UNION SELECT key_hash FROM keys_apikey--",
]

# What each probe may get: Keygate's own refusal (JSON in the dialect) or the HTTP layer's.
KEYGATE = "keygate"
# The HTTP layer refuses some bytes itself: malformed HTTP gets a bare 400 (uvicorn/httptools), a
# request head over KEYGATE_MAX_HEADER_BYTES (64 KiB) a bare 431 (config.serve).
HTTP_LAYER = "http-layer"
BIG = 60_000  # a header value well past any real one, still under the 64 KiB head limit: Keygate answers


def _auth(key: str, path: bytes) -> tuple[bytes, bytes]:
    """The key in the header the endpoint's protocol prefers."""
    if DIALECTS[path] == "anthropic":
        return (b"x-api-key", key.encode())
    return (b"authorization", b"Bearer " + key.encode())


def _body_for(path: bytes) -> bytes:
    return MESSAGE if DIALECTS[path] == "anthropic" else CHAT


# --- probes ------------------------------------------------------------------------------------
# Each: (id, build(keys, path) -> request bytes, allowed statuses, who answers).

Build = Callable[[dict[str, str], bytes], bytes]


def _post(body: bytes, *, key: str = "all", extra: list[tuple[bytes, bytes]] | None = None) -> Build:
    def build(keys: dict[str, str], path: bytes) -> bytes:
        return http_request(b"POST", path, [_auth(keys[key], path), VERSION, JSON, *(extra or [])], body)

    return build


def _headers(*headers: tuple[bytes, bytes], key: str | None = "all") -> Build:
    def build(keys: dict[str, str], path: bytes) -> bytes:
        auth = [_auth(keys[key], path)] if key else []
        return http_request(b"POST", path, [*auth, VERSION, JSON, *headers], _body_for(path))

    return build


def _presenting(credential: Callable[[dict[str, str]], bytes], header: bytes) -> Build:
    def build(keys: dict[str, str], path: bytes) -> bytes:
        value = credential(keys)
        sent = (b"authorization", b"Bearer " + value) if header == b"authorization" else (header, value)
        return http_request(b"POST", path, [sent, VERSION, JSON], _body_for(path))

    return build


def _method(method: bytes) -> Build:
    def build(keys: dict[str, str], path: bytes) -> bytes:
        return http_request(method, path, [_auth(keys["all"], path), VERSION, JSON], _body_for(path))

    return build


def _mutated(keys: dict[str, str], how: str) -> bytes:
    key = keys["all"]
    swap = "A" if key[-1] != "A" else "B"
    return {
        "bad-checksum": key[:-1] + swap,
        "truncated": key[:-1],
        "one-char-longer": key + "A",
        "lowercased": key.lower(),
        "other-prefix-keygate": crypto.generate_key("sk-other")[1],
        "openai-project-key": "sk-proj-" + "A1b2C3d4" * 6,
        "anthropic-key": "sk-ant-api03-" + "x" * 93 + "AA",
        "public-id-only": key[: len("sk-kg-") + crypto.PUBLIC_ID_LENGTH],
    }[how].encode()


BODY_PROBES: list[tuple[str, Build, set[int]]] = [
    ("invalid-utf8-in-a-string", _post(b'{"model": "gpt-4o", "messages": [{"content": "\xff\xfe"}]}'), {400}),
    ("invalid-utf8-bytes", _post(b"\xff\xfe\xfd\xfc"), {400}),
    ("utf8-bom", _post(b"\xef\xbb\xbf" + CHAT), {400}),
    ("lone-surrogate", _post(b'{"model": "gpt-4o\\ud800"}'), {400}),
    ("scalar-number", _post(b"42"), {400}),
    ("scalar-true", _post(b"true"), {400}),
    ("scalar-null", _post(b"null"), {400}),
    ("deep-arrays", _post(b"[" * 5 * DEEP), {400}),
    ("deep-objects", _post(b'{"a":' * DEEP), {400}),
    ("deep-inside-a-request", _post(b'{"model": "gpt-4o", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}"), {400, 413}),
    ("nan", _post(b'{"model": "gpt-4o", "temperature": NaN}'), {400}),
    ("infinity", _post(b'{"model": "gpt-4o", "temperature": Infinity}'), {400}),
    ("minus-infinity", _post(b'{"model": "gpt-4o", "temperature": -Infinity}'), {400}),
    ("number-overflowing-a-double", _post(b'{"model": "gpt-4o", "max_tokens": 1e999999}'), {400}),
    ("trailing-garbage", _post(CHAT + b" {}"), {400}),
    ("trailing-nul", _post(CHAT + b"\x00"), {400}),
    ("model-is-an-operator-object", _post(b'{"model": {"$ne": null}}'), {400}),
    ("model-is-true", _post(b'{"model": true}'), {400}),
    ("model-with-a-newline-header", _post(b'{"model": "gpt-4o\\r\\nX-Injected: 1"}'), {400}),
    ("model-sql-injection", _post(b"{\"model\": \"gpt-4o' OR '1'='1\"}", key="gpt-4o"), {403}),
    ("model-path-traversal", _post(b'{"model": "../../../admin"}', key="gpt-4o"), {403}),
    ("content-length-a-terabyte", lambda keys, path: _declared_length(keys, path, 10**12), {413}),
]

HEADER_PROBES: list[tuple[str, Build, set[int], str]] = [
    ("60k-unrelated-header", _headers((b"x-padding", b"a" * BIG)), {200}, KEYGATE),
    ("60k-authorization", _headers((b"authorization", b"Bearer " + b"a" * BIG), key=None), {401}, KEYGATE),
    ("60k-x-api-key", _headers((b"x-api-key", b"k" * BIG), key=None), {401}, KEYGATE),
    ("60k-request-id", _headers((b"x-request-id", b"r" * BIG)), {200}, KEYGATE),
    ("64k-unrelated-header", _headers((b"x-padding", b"a" * 65536)), {431}, HTTP_LAYER),
    ("64k-authorization", _headers((b"authorization", b"Bearer " + b"a" * 65536), key=None), {431}, HTTP_LAYER),
    ("1m-header", _headers((b"x-padding", b"a" * 2**20)), {431}, HTTP_LAYER),
    ("2000-headers", _headers(*[(b"x-h%d" % i, b"v") for i in range(2000)]), {200}, KEYGATE),
    ("nul-in-authorization", _headers((b"authorization", b"Bearer \x00abc"), key=None), {400}, HTTP_LAYER),
    ("control-char-in-x-api-key", _headers((b"x-api-key", b"sk-kg-\x01\x02"), key=None), {400}, HTTP_LAYER),
    ("del-in-anthropic-beta", _headers((b"anthropic-beta", b"a\x7fb")), {400}, HTTP_LAYER),
    ("control-char-in-a-header-name", _headers((b"x-b\x01d", b"v")), {400}, HTTP_LAYER),
    ("bare-cr-in-a-header", _headers((b"x-foo", b"a\rb")), {400}, HTTP_LAYER),
    ("latin1-bytes-in-authorization", _headers((b"authorization", b"Bearer caf\xe9"), key=None), {401}, KEYGATE),
    ("utf8-in-x-api-key", _headers((b"x-api-key", "ключ-🔑".encode()), key=None), {401}, KEYGATE),
    ("latin1-bytes-in-request-id", _headers((b"x-request-id", b"\xff\xfe")), {200}, KEYGATE),
    ("empty-bearer", _headers((b"authorization", b"Bearer"), key=None), {401}, KEYGATE),
    ("two-authorization-headers", _headers((b"authorization", b"Bearer sk-kg-nope")), {200, 401}, KEYGATE),
    *[
        (f"sql-injection-{i}-as-{name}", _presenting(lambda keys, s=sql: s, header), {401}, KEYGATE)
        for i, sql in enumerate(SQL_INJECTIONS)
        for name, header in (("bearer", b"authorization"), ("x-api-key", b"x-api-key"))
    ],
    *[
        (f"key-{how}", _presenting(lambda keys, how=how: _mutated(keys, how), b"authorization"), {401}, KEYGATE)
        for how in (
            "bad-checksum",
            "truncated",
            "one-char-longer",
            "lowercased",
            "other-prefix-keygate",
            "openai-project-key",
            "anthropic-key",
            "public-id-only",
        )
    ],
]

METHOD_PROBES: list[tuple[str, Build, set[int], str]] = [
    ("patch", _method(b"PATCH"), {405}, KEYGATE),
    ("options", _method(b"OPTIONS"), {405}, KEYGATE),
    ("head", _method(b"HEAD"), {405}, KEYGATE),
    ("trace", _method(b"TRACE"), {405}, KEYGATE),
    ("unknown-method", _method(b"FOO"), {400}, HTTP_LAYER),
    ("lowercase-method", _method(b"post"), {400}, HTTP_LAYER),
]

PATH_PROBES: list[tuple[str, bytes, set[int], str]] = [
    ("dot-dot-to-the-admin", b"/v1/../admin/", {404}, KEYGATE),
    ("encoded-dot-dot", b"/v1/%2e%2e/admin/", {404}, KEYGATE),
    ("encoded-nul", b"/v1/chat/completions%00", {404}, KEYGATE),
    ("invalid-utf8-escape", b"/v1/%ff%fe", {404}, KEYGATE),
    ("messages-dot-dot", b"/v1/messages/../../api/v1/keys/", {404}, KEYGATE),
    ("64k-path", b"/v1/" + b"a" * 65536, {431}, HTTP_LAYER),
]

RAW_HTTP_PROBES: list[tuple[str, bytes, set[int]]] = [
    (
        "content-length-not-a-number",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        {400},
    ),
    ("negative-content-length", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", {400}),
    (
        "content-length-and-chunked",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        {400},
    ),
    (
        "invalid-chunk-size",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        {400},
    ),
    ("tls-handshake-on-plain-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, {400}),
    ("binary-garbage", bytes(range(256)) * 4, {400}),
]


def _declared_length(keys: dict[str, str], path: bytes, length: int) -> bytes:
    head = http_request(b"POST", path, [_auth(keys["all"], path), VERSION, JSON], b"", content_length=False)
    return head.replace(b"Connection: close\r\n", b"Content-Length: %d\r\nConnection: close\r\n" % length)


# --- assertions --------------------------------------------------------------------------------


def _assert_refused(response: RawResponse, allowed: set[int], who: str, dialect: str | None) -> None:
    assert response.status is not None, "the server closed the connection without an answer"
    assert response.status < 500, f"{response.status}: {response.text[:300]}"
    assert response.status in allowed, f"{response.status}: {response.text[:300]}"
    assert "Traceback" not in response.text
    if who == HTTP_LAYER or response.status < 400 or dialect is None:
        return
    if response.header("content-type") != "application/json" or not response.body:
        return  # HEAD: no body
    payload = orjson.loads(response.body)
    if dialect == "anthropic":
        assert payload["type"] == "error" and set(payload["error"]) == {"type", "message"}, payload
    else:
        assert set(payload["error"]) >= {"message", "type", "param", "code"}, payload


@pytest.fixture(scope="module")
def log_start(live: LiveKeygate) -> int:
    """Where the server's log stood before this module's probes."""
    return len(live.server.logs())


@pytest.mark.parametrize("path", DIALECTS)
@pytest.mark.parametrize(("name", "build", "allowed"), [pytest.param(*p, id=p[0]) for p in BODY_PROBES])
def test_a_hostile_body_is_a_4xx_in_the_endpoints_dialect(
    live: LiveKeygate, log_start: int, path: bytes, name: str, build: Build, allowed: set[int]
) -> None:
    response = raw_request(live.server.port, build(live.keys, path))

    _assert_refused(response, allowed, KEYGATE, DIALECTS[path])


@pytest.mark.parametrize("path", DIALECTS)
@pytest.mark.parametrize(("name", "build", "allowed", "who"), [pytest.param(*p, id=p[0]) for p in HEADER_PROBES])
def test_a_hostile_header_is_refused_or_harmless(
    live: LiveKeygate, log_start: int, path: bytes, name: str, build: Build, allowed: set[int], who: str
) -> None:
    response = raw_request(live.server.port, build(live.keys, path))

    _assert_refused(response, allowed, who, DIALECTS[path])
    if name.startswith(("sql-", "key-")):
        assert "WWW-Authenticate".lower() in response.head.decode("latin-1").lower()


@pytest.mark.parametrize("path", DIALECTS)
@pytest.mark.parametrize(("name", "build", "allowed", "who"), [pytest.param(*p, id=p[0]) for p in METHOD_PROBES])
def test_a_wrong_method_is_refused(
    live: LiveKeygate, log_start: int, path: bytes, name: str, build: Build, allowed: set[int], who: str
) -> None:
    response = raw_request(live.server.port, build(live.keys, path))

    _assert_refused(response, allowed, who, DIALECTS[path])
    if response.status == 405:
        assert response.header("allow") == "POST"


@pytest.mark.parametrize(("name", "path", "allowed", "who"), [pytest.param(*p, id=p[0]) for p in PATH_PROBES])
def test_a_hostile_path_under_v1_is_refused(
    live: LiveKeygate, log_start: int, name: str, path: bytes, allowed: set[int], who: str
) -> None:
    request = http_request(b"GET", path, [(b"authorization", b"Bearer " + live.keys["all"].encode()), VERSION])

    response = raw_request(live.server.port, request)

    _assert_refused(response, allowed, who, "anthropic" if path.startswith(b"/v1/messages") else "openai")


@pytest.mark.parametrize(("name", "data", "allowed"), [pytest.param(*p, id=p[0]) for p in RAW_HTTP_PROBES])
def test_malformed_http_is_refused_by_the_http_layer(
    live: LiveKeygate, log_start: int, name: str, data: bytes, allowed: set[int]
) -> None:
    response = raw_request(live.server.port, data)

    _assert_refused(response, allowed, HTTP_LAYER, None)


# --- the management API and the sign-in page ---------------------------------------------------

API = b"/api/v1/keys/"


def _api(keys: dict[str, str], body: bytes, *, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    auth = (b"authorization", b"Bearer " + keys["management"].encode())
    return http_request(b"POST", API, [auth, JSON, *(headers or [])], body)


API_PROBES: list[tuple[str, Callable[[dict[str, str]], bytes], set[int]]] = [
    ("invalid-utf8", lambda k: _api(k, b'{"name": "\xff\xfe", "models": ["*"]}'), {400}),
    ("nan", lambda k: _api(k, b'{"name": "n", "models": ["*"], "rpm_limit": NaN}'), {400}),
    ("array-body", lambda k: _api(k, b'[{"name": "n"}]'), {400}),
    ("scalar-body", lambda k: _api(k, b"42"), {400}),
    ("nul-in-name", lambda k: _api(k, b'{"name": "a\\u0000b", "models": ["*"]}'), {400}),
    ("sql-injection-in-models", lambda k: _api(k, b'{"name": "n", "models": ["\' OR \'1\'=\'1"]}'), {400}),
    ("sql-injection-as-owner", lambda k: _api(k, b'{"name": "n", "models": ["*"], "owner": "\' OR 1=1--"}'), {400}),
    ("64k-name", lambda k: _api(k, b'{"name": "' + b"n" * 65536 + b'", "models": ["*"]}'), {400}),
    ("text-plain-body", lambda k: _api_text(k), {415}),
    (
        "sql-injection-as-bearer",
        lambda k: http_request(b"GET", API, [(b"authorization", b"Bearer ' OR '1'='1")]),
        {401},
    ),
    ("latin1-bearer", lambda k: http_request(b"GET", API, [(b"authorization", b"Bearer caf\xe9")]), {401}),
    ("60k-bearer", lambda k: http_request(b"GET", API, [(b"authorization", b"Bearer " + b"a" * BIG)]), {401}),
    ("64k-bearer", lambda k: http_request(b"GET", API, [(b"authorization", b"Bearer " + b"a" * 65536)]), {431}),
    ("no-credential", lambda k: http_request(b"GET", API, []), {401, 403}),
    ("ordinary-key", lambda k: http_request(b"GET", API, [(b"authorization", b"Bearer " + k["all"].encode())]), {403}),
    ("sql-injection-in-a-filter", lambda k: _api_get(k, b"?name=%27%20OR%20%271%27%3D%271&status=active"), {200}),
    ("unknown-status-filter", lambda k: _api_get(k, b"?status=%27%3BDROP"), {400}),
    ("negative-page", lambda k: _api_get(k, b"?page=-1"), {404}),
    ("enormous-page-size", lambda k: _api_get(k, b"?page_size=" + b"9" * 40), {200}),
    ("usage-days-overflow", lambda k: _api_get(k, _public_id(k["all"]) + b"/usage/?days=" + b"9" * 30), {400}),
    ("usage-dates-out-of-range", lambda k: _api_get(k, _public_id(k["all"]) + b"/usage/?start=0000-00-00"), {400}),
    (
        "trace-method",
        lambda k: http_request(b"TRACE", API, [(b"authorization", b"Bearer " + k["management"].encode())]),
        {405},
    ),
    (
        "put-method",
        lambda k: http_request(b"PUT", API, [(b"authorization", b"Bearer " + k["management"].encode())]),
        {405},
    ),
]


def _api_get(keys: dict[str, str], suffix: bytes) -> bytes:
    auth = (b"authorization", b"Bearer " + keys["management"].encode())
    return http_request(b"GET", API + suffix, [auth])


def _public_id(key: str) -> bytes:
    parsed = crypto.parse_key(key, "sk-kg")
    assert parsed is not None
    return parsed.public_id.encode()


def _api_text(keys: dict[str, str]) -> bytes:
    auth = (b"authorization", b"Bearer " + keys["management"].encode())
    return http_request(b"POST", API, [auth, (b"content-type", b"text/plain")], b"name=n")


@pytest.mark.parametrize(("name", "build", "allowed"), [pytest.param(*p, id=p[0]) for p in API_PROBES])
def test_hostile_input_to_the_management_api_is_a_4xx(
    live: LiveKeygate, log_start: int, name: str, build: Callable[[dict[str, str]], bytes], allowed: set[int]
) -> None:
    response = raw_request(live.server.port, build(live.keys))

    _assert_refused(response, allowed, KEYGATE, None)


@pytest.fixture(scope="module")
def login_form(live: LiveKeygate) -> tuple[str, str]:
    """A CSRF cookie and the matching form token from the sign-in page."""
    response = raw_request(live.server.port, http_request(b"GET", b"/accounts/login/", []))
    cookie = response.header("set-cookie") or ""
    return cookie.split(";")[0], csrf_token(response.text)


def _login(form: tuple[str, str], body: bytes, content_type: bytes = b"application/x-www-form-urlencoded") -> bytes:
    cookie, token = form
    data = b"csrfmiddlewaretoken=" + token.encode() + b"&" + body
    headers = [(b"cookie", cookie.encode()), (b"content-type", content_type), (b"referer", b"http://127.0.0.1/")]
    return http_request(b"POST", b"/accounts/login/", headers, data)


LOGIN_PROBES: list[tuple[str, Callable[[tuple[str, str]], bytes], set[int]]] = [
    (
        "no-csrf-token",
        lambda f: http_request(b"POST", b"/accounts/login/", [JSON], b"username=a&password=b"),
        {403},
    ),
    ("sql-injection-username", lambda f: _login(f, b"username=%27+OR+%271%27%3D%271&password=x"), {200, 429}),
    ("sql-injection-password", lambda f: _login(f, b"username=sec-nobody&password=%27+OR+%271%27%3D%271"), {200, 429}),
    ("invalid-utf8-username", lambda f: _login(f, b"username=\xff\xfe%ff&password=x"), {200, 429}),
    ("nul-in-username", lambda f: _login(f, b"username=a%00b&password=x"), {200, 429}),
    ("64k-username", lambda f: _login(f, b"username=" + b"u" * 65536 + b"&password=x"), {200, 429}),
    ("2000-fields", lambda f: _login(f, b"&".join(b"f%d=v" % i for i in range(2000))), {400}),
    ("3-mib-form", lambda f: _login(f, b"username=x&password=" + b"p" * (3 * 2**20)), {400, 413}),
    (
        "broken-multipart",
        lambda f: _login(f, b"--x\r\nContent-Disposition: form-data", b"multipart/form-data; boundary=x"),
        {400, 403},
    ),
    ("json-instead-of-a-form", lambda f: _login(f, b'{"username": "a"}', b"application/json"), {403}),
    ("bad-host", lambda f: b"GET /accounts/login/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n", {400}),
    ("latin1-host", lambda f: b"GET /accounts/login/ HTTP/1.1\r\nHost: ex\xe9mple\r\nConnection: close\r\n\r\n", {400}),
    ("invalid-utf8-in-a-dashboard-path", lambda f: http_request(b"GET", b"/keys/%ff%00/", []), {302, 404}),
]


@pytest.mark.parametrize(("name", "build", "allowed"), [pytest.param(*p, id=p[0]) for p in LOGIN_PROBES])
def test_hostile_input_to_the_sign_in_page_is_refused_cleanly(
    live: LiveKeygate, log_start: int, login_form: tuple[str, str], name: str, build: Any, allowed: set[int]
) -> None:
    response = raw_request(live.server.port, build(login_form))

    _assert_refused(response, allowed, KEYGATE, None)


# Django's ASGI handler reads a whole request body into a spooled temporary file before any view
# (or CSRF check, or authentication) runs; config/asgi.py answers 413 for a declared body over
# KEYGATE_MAX_PAGE_BODY_BYTES before calling Django, and cuts an undeclared one off.
@pytest.mark.parametrize("path", [b"/accounts/login/", b"/api/v1/keys/"])
def test_an_oversized_body_to_a_django_page_is_refused_before_it_is_read(live: LiveKeygate, path: bytes) -> None:
    request = http_request(b"POST", path, [(b"content-type", b"application/x-www-form-urlencoded")], b"")
    request = request.replace(b"Content-Length: 0", b"Content-Length: 107374182400")  # 100 GiB declared

    response = raw_request(live.server.port, request + b"a=b", timeout=1)

    assert response.status == 413


def test_after_every_probe_the_server_still_serves_and_logged_no_stack_trace(live: LiveKeygate, log_start: int) -> None:
    ok = raw_request(live.server.port, _post(CHAT)(live.keys, b"/v1/chat/completions"))
    ok_messages = raw_request(live.server.port, _post(MESSAGE)(live.keys, b"/v1/messages"))
    listed = raw_request(
        live.server.port,
        http_request(b"GET", API, [(b"authorization", b"Bearer " + live.keys["management"].encode())]),
    )

    assert (ok.status, ok_messages.status, listed.status) == (200, 200, 200)
    log = live.server.logs()[log_start:]
    assert failures_in(log) == []
    assert live.server.process is not None and live.server.process.poll() is None
