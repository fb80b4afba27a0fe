"""One pass through everything Keygate does with keys and provider credentials, on the live
server at LOG_LEVEL=DEBUG, then a scan of everything it wrote: its log, every HTTP response
(headers and body), every row of every table and the database files' raw bytes.

A key's plaintext may appear in exactly one place: the answer that created it (the CLI's stdout,
the API's 201, the dashboard's or admin's "copy it now" page). Anywhere else — including any
8-character piece of its secret part — is a leak. An upstream credential may appear nowhere.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import sqlite3
from dataclasses import dataclass, field

import httpx
import pytest

from keys import crypto
from tests.conftest_live import (
    UPSTREAM_SECRET,
    WRONG_UPSTREAM_SECRET,
    LiveKeygate,
    new_request_id,
    unknown_key,
    wait_until,
)
from tests.security.helpers import csrf_token, form_post, leaked_keys, secret_windows, sign_in

pytestmark = pytest.mark.live

KEY_IN_HTML = re.compile(r"sk-kg-[0-9A-Za-z]{50}")
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
STORED_CREDENTIAL = "sec-stored-credential-" + secrets.token_hex(16)


@dataclass
class Recorder:
    """Every response seen, by label; and which label created which key."""

    responses: list[tuple[str, str]] = field(default_factory=list)
    created_by: dict[str, str] = field(default_factory=dict)  # key → the one label allowed to show it
    request_ids: list[str] = field(default_factory=list)

    def keep(self, label: str, response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.multi_items())
        self.responses.append((label, f"{response.status_code}\n{headers}\n\n{response.text}"))
        return response

    def created(self, label: str, key: str) -> str:
        assert crypto.parse_key(key, "sk-kg") is not None, f"{label} did not show a key"
        self.created_by[key] = label
        return key


def _shown_key(html: str) -> str:
    match = KEY_IN_HTML.search(html)
    assert match, "the page shows no key"
    return match.group(0)


def _public_id(key: str) -> str:
    parsed = crypto.parse_key(key, "sk-kg")
    assert parsed is not None
    return parsed.public_id


def _once(client: httpx.Client, path: str) -> tuple[str, str]:
    html = client.get(path).text
    return csrf_token(html), re.search(r'name="once" value="([^"]+)"', html).group(1)


# --- the pass ---------------------------------------------------------------------------------------


def _through_the_cli(live: LiveKeygate, rec: Recorder) -> list[str]:
    created = live.server.manage("keys", "create", "--name", "sec-cli", "--models", "*")
    key = rec.created("cli-create", created.stdout.strip())
    rec.responses.append(("cli-create-stderr", created.stderr))
    listing = live.server.manage("keys", "list", "--json", "--all")
    rotated = live.server.manage("keys", "rotate", _public_id(key), "--grace", "1h")
    new = rec.created("cli-rotate", rotated.stdout.strip())
    rec.responses += [("cli-list", listing.stdout + listing.stderr), ("cli-rotate-stderr", rotated.stderr)]
    return [key, new]


def _through_the_api(live: LiveKeygate, rec: Recorder) -> list[str]:
    api = httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {live.keys['management']}"}, timeout=10)
    with api:
        created = rec.keep("api-create", api.post("/api/v1/keys/", json={"name": "sec-api", "models": ["*"]}))
        key = rec.created("api-create", created.json()["key"])
        public_id = _public_id(key)
        rotated = rec.keep("api-rotate", api.post(f"/api/v1/keys/{public_id}/rotate/", json={"grace": "1h"}))
        new = rec.created("api-rotate", rotated.json()["key"])
        for path in (
            "/api/v1/keys/",
            f"/api/v1/keys/{public_id}/",
            f"/api/v1/keys/{_public_id(new)}/",
            f"/api/v1/keys/{public_id}/usage/",
            "/api/v1/keys/?name=sec",
            "/api/v1/schema/",
            f"/api/v1/keys/{key}/",  # a key pasted where its id belongs
        ):
            rec.keep(f"api GET {path[:40]}", api.get(path))
        rec.keep("api-patch", api.patch(f"/api/v1/keys/{_public_id(new)}/", json={"description": "scanned"}))
        rec.keep("api-revoke", api.post(f"/api/v1/keys/{_public_id(new)}/revoke/"))
    for bad in (key + "x", key[:-1] + ("A" if key[-1] != "A" else "B"), new.lower()):
        rec.keep("api-bad-key", live.request("GET", "/api/v1/keys/", key=bad))
    return [key, new]


def _through_the_dashboard(live: LiveKeygate, rec: Recorder, password: str) -> list[str]:
    with contextlib.closing(sign_in(live.url, "sec-alice", password)) as browser:
        token, once = _once(browser, "/keys/new")
        page = rec.keep(
            "dash-create",
            browser.post(
                "/keys/new",
                data={"name": "sec-dash", "models": ["*"], "expiry": "90d", "once": once, "csrfmiddlewaretoken": token},
                headers={"Referer": live.url + "/keys/new"},
            ),
        )
        key = rec.created("dash-create", _shown_key(page.text))
        public_id = _public_id(key)
        for path in ("/", f"/keys/{public_id}/", f"/keys/{public_id}/edit", "/keys/new", f"/keys/{key}/", "/api/docs/"):
            rec.keep(f"dash GET {path[:30]}", browser.get(path))
        token, once = _once(browser, f"/keys/{public_id}/rotate")
        page = rec.keep(
            "dash-rotate",
            browser.post(
                f"/keys/{public_id}/rotate",
                data={"grace": "1h", "once": once, "csrfmiddlewaretoken": token},
                headers={"Referer": live.url + f"/keys/{public_id}/rotate"},
            ),
        )
        new = rec.created("dash-rotate", _shown_key(page.text))
        rec.keep("dash-replay-rotate", browser.post(
            f"/keys/{public_id}/rotate",
            data={"grace": "1h", "once": once, "csrfmiddlewaretoken": token},
            headers={"Referer": live.url + f"/keys/{public_id}/rotate"},
        ))  # fmt: skip
        rec.keep("dash-revoke", form_post(browser, f"/keys/{_public_id(new)}/revoke", {}))
        for path in ("/", f"/keys/{_public_id(new)}/", "/?status=revoked"):
            rec.keep(f"dash GET {path}", browser.get(path))
    return [key, new]


def _through_the_admin(live: LiveKeygate, rec: Recorder, password: str) -> list[str]:
    with contextlib.closing(sign_in(live.url, "sec-operator", password, path="/admin/login/")) as admin:
        page = rec.keep(
            "admin-create", form_post(admin, "/admin/keys/apikey/add/", {"name": "sec-admin", "model_patterns": "*"})
        )
        key = rec.created("admin-create", _shown_key(page.text))
        rec.keep(
            "admin-provider-add",
            form_post(
                admin,
                "/admin/gateway/provider/add/",
                {
                    "name": "sec-stored",
                    "kind": "openai",
                    "base_url": live.upstream.url + "/v1",
                    "credential": STORED_CREDENTIAL,
                    "connect_timeout": "2",
                    "first_byte_timeout": "5",
                    "idle_timeout": "5",
                    "is_enabled": "on",
                    "routes-TOTAL_FORMS": "1",
                    "routes-INITIAL_FORMS": "0",
                    "routes-MIN_NUM_FORMS": "0",
                    "routes-MAX_NUM_FORMS": "1000",
                    "routes-0-model_pattern": "sec-stored-model",
                    "routes-0-priority": "5",
                    "routes-0-is_enabled": "on",
                    "routes-0-upstream_model": "",
                    "routes-0-listed_models": "[]",
                },
            ),
        )
        paths = [
            "/admin/",
            "/admin/keys/apikey/",
            "/admin/keys/apikey/?q=sec",
            "/admin/keys/keyevent/",
            "/admin/keys/usagerecord/",
            "/admin/gateway/provider/",
            "/admin/gateway/route/",
            "/admin/auth/user/",
            "/admin/axes/accesslog/",
            "/admin/axes/accessattempt/",
        ]
        for path in paths:
            rec.keep(f"admin GET {path}", admin.get(path))
        listing = admin.get("/admin/gateway/provider/").text
        for provider_id in set(re.findall(r'href="/admin/gateway/provider/(\d+)/change/', listing)):
            rec.keep("admin provider change", admin.get(f"/admin/gateway/provider/{provider_id}/change/"))
        for key_id in set(re.findall(r'href="/admin/keys/apikey/(\d+)/change/', admin.get("/admin/keys/apikey/").text)):
            rec.keep("admin key change", admin.get(f"/admin/keys/apikey/{key_id}/change/"))
    return [key]


def _through_the_gateway(live: LiveKeygate, rec: Recorder, keys: list[str]) -> None:
    wait_until(lambda: live.request("GET", "/v1/models/sec-stored-model").status_code == 200, timeout=10)
    client = httpx.Client(base_url=live.url, timeout=10)

    def call(label: str, path: str, key: str | None, body: dict, **headers: str) -> None:
        request_id = new_request_id()
        sent = {"anthropic-version": "2023-06-01", "x-request-id": request_id, **headers}
        if key is not None:
            sent["authorization"] = f"Bearer {live.keys.get(key, key)}"
        response = rec.keep(label, client.post(path, json=body, headers=sent))
        if response.status_code not in (401, 403, 404):
            rec.request_ids.append(request_id)

    with client:
        for key in [*keys, *live.keys.values()]:
            for headers in ({}, {"x-debug-auth": "true"}):
                call("gw-chat", "/v1/chat/completions", key, CHAT, **headers)
                call("gw-messages", "/v1/messages", None, MESSAGE, **{"x-api-key": key, **headers})
            for bad in (key + "x", key[:-1] + ("A" if key[-1] != "A" else "B"), key.upper()):
                call("gw-bad-key", "/v1/chat/completions", bad, CHAT, **{"x-debug-auth": "true"})
            rec.keep("gw-key-in-query", client.get(f"/v1/models?api_key={key}", headers={"x-api-key": key}))
        for model in (
            "sec-stored-model",
            "badcred-model",
            "mock-error-400",
            "mock-error-401",
            "mock-error-500",
            "mock-error-503",
            "mock-error-529",
            "mock-invalid-json",
            "mock-redirect",
            "dead-model",
        ):
            call(f"gw-fault {model}", "/v1/chat/completions", "all", {**CHAT, "model": model})
        for model in ("mock-reset", "mock-stall", "sec-stored-model"):
            call(f"gw-stream {model}", "/v1/chat/completions", "all", {**CHAT, "model": model, "stream": True})
        for model in ("claude-mock-error-529", "claude-mock-reset", "claude-dead"):
            call(f"gw-fault {model}", "/v1/messages", "all", {**MESSAGE, "model": model})
        call("gw-unknown-key", "/v1/chat/completions", unknown_key(), CHAT)


# --- the scan ---------------------------------------------------------------------------------------


def _database_dump(live: LiveKeygate) -> str:
    database = live.server.workdir / "keygate.sqlite3"
    chunks: list[str] = []
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                chunks.extend(str(value) for value in row)
    raw = b"".join(path.read_bytes() for path in database.parent.glob("keygate.sqlite3*"))
    return "\n".join(chunks) + "\n" + raw.decode("latin-1")


def _leaks(text: str, secrets_: dict[str, list[str]]) -> list[str]:
    return [name for name, pieces in secrets_.items() if any(piece in text for piece in pieces)]


def _where(text: str, secrets_: dict[str, list[str]]) -> list[str]:
    """The lines of ``text`` holding a piece of a secret (for the failure message)."""
    every_piece = [piece for pieces in secrets_.values() for piece in pieces]
    return [line[:3000] for line in text.splitlines() if any(piece in line for piece in every_piece)][:10]


def test_no_key_or_credential_is_written_anywhere_but_where_it_is_created(
    live: LiveKeygate, live_accounts: dict[str, str]
) -> None:
    rec = Recorder()
    log_start = len(live.server.logs())
    keys = _through_the_cli(live, rec)
    keys += _through_the_api(live, rec)
    keys += _through_the_dashboard(live, rec, live_accounts["sec-alice"])
    keys += _through_the_admin(live, rec, live_accounts["sec-operator"])
    _through_the_gateway(live, rec, keys)
    live.usage(*rec.request_ids, timeout=10)  # every usage record is written
    log = live.access_logged(*rec.request_ids, timeout=10)  # and every access-log line
    database = _database_dump(live)
    every_key = {**{f"session key {name}": key for name, key in live.keys.items()}, **{k: k for k in keys}}
    key_pieces = {name: [key, *secret_windows(key)] for name, key in every_key.items()}
    credentials = {
        "upstream credential": [UPSTREAM_SECRET],
        "wrong upstream credential": [WRONG_UPSTREAM_SECRET],
        "stored provider credential": [STORED_CREDENTIAL],
    }

    assert "DEBUG" in log[log_start:] or "debug" in log[log_start:]  # the log is at DEBUG level
    assert _leaks(log, {**key_pieces, **credentials}) == [], _where(log, {**key_pieces, **credentials})
    assert leaked_keys(log) == [], "a well-formed key in the server log"
    assert _leaks(database, {**key_pieces, **credentials}) == [], _where(database, {**key_pieces, **credentials})
    assert leaked_keys(database) == [], "a well-formed key in the database"
    for label, text in rec.responses:
        allowed = {key for key, creator in rec.created_by.items() if creator == label}
        pieces = {name: p for name, p in key_pieces.items() if every_key[name] not in allowed}
        assert _leaks(text, {**pieces, **credentials}) == [], f"in the response to {label!r}"
        assert set(leaked_keys(text)) <= allowed, f"a key in the response to {label!r}"
    created_labels = set(rec.created_by.values())
    assert {"cli-create", "api-create", "dash-create", "admin-create", "api-rotate", "dash-rotate"} <= created_labels
    print(
        f"\nsecrets scan: {len(every_key)} keys and {len(credentials)} credentials, {len(rec.responses)} responses, "
        f"{len(rec.request_ids)} usage records, {len(log) // 1024} KiB of log, {len(database) // 1024} KiB of database"
        f" — no leak"
    )


@pytest.mark.live
def test_the_scan_would_see_a_leak() -> None:
    """The scanner finds a key, or a piece of its secret, where it must not be (so silence means something)."""
    key = crypto.generate_key("sk-kg")[1]
    secret = key[len("sk-kg-") + crypto.PUBLIC_ID_LENGTH :][: crypto.SECRET_LENGTH]

    assert leaked_keys("prefix " + key + " suffix") == [key]
    assert leaked_keys("prefix " + key[:-1] + "?") == []
    assert _leaks("..." + secret[10:18] + "...", {"k": secret_windows(key)}) == ["k"]
    assert _leaks("..." + key[:18] + "...", {"k": secret_windows(key)}) == []  # the public id is not secret


# The gateway's 404 (unknown model) and 403 (model out of scope) name the model; a key pasted as a
# model name is masked after its public id there, in usage records and in the access log.
@pytest.mark.live
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/v1/models/{key}", None, id="models-retrieve"),
        pytest.param("POST", "/v1/chat/completions", {"model": "{key}", "messages": []}, id="chat-model"),
    ],
)
def test_a_key_pasted_as_a_model_name_is_not_echoed_back(live: LiveKeygate, method: str, path: str, body) -> None:
    key = live.keys["gpt-4o"]
    sent = {"model": key, "messages": []} if body else None

    response = live.request(method, path.format(key=key), key="gpt-4o", json=sent)

    assert response.status_code in (403, 404)
    assert leaked_keys(response.text) == [] and not _leaks(response.text, {"k": secret_windows(key)})
