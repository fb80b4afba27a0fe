"""/security/ endpoints: GitHub partner batches, organisation alerts, public leak reports."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from keys import crypto, secret_scanning, services
from keys.constants import KeyAction
from keys.models import APIKey
from keys.views import security
from tests.support.github import FakeGitHub, Signer, hub_signature

pytestmark = pytest.mark.django_db(transaction=True)

PARTNER = "/security/secret-scanning/github"
ALERTS = "/security/secret-scanning/github-alerts"
REPORT = "/security/report-leak"
WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture
def github(settings):
    with FakeGitHub() as fake:
        fake.add_signer("current-key-id")
        settings.KEYGATE_GITHUB_SCANNING_KEYS_URL = fake.keys_url
        settings.KEYGATE_GITHUB_API_URL = fake.url
        settings.KEYGATE_GITHUB_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.KEYGATE_GITHUB_TOKEN = "test-github-token"
        yield fake


def _batch(*tokens: str, url: str = "https://github.com/o/r/blob/abc/app.py") -> bytes:
    return json.dumps(
        [{"token": t, "type": "keygate_api_key", "url": url, "source": "content"} for t in tokens]
    ).encode()


def _post_signed(client: Client, github: FakeGitHub, body: bytes, **extra: str):
    return client.post(PARTNER, data=body, content_type="application/json", **github.signers[0].headers(body), **extra)


def _other_prefix_key() -> str:
    return crypto.generate_key("sk-other")[1]


# --- partner batches ----------------------------------------------------------------------


def test_a_signed_batch_revokes_the_live_key_and_labels_every_token(client, github, make_key, alice) -> None:
    live, live_raw = make_key(name="live", owner=alice)
    dead, dead_raw = make_key(name="dead", owner=alice)
    services.key_revoke(key=dead)
    unknown = crypto.generate_key("sk-kg")[1]  # our shape and checksum, no such key
    tokens = [live_raw, dead_raw, _other_prefix_key(), unknown, "sk-kg-" + "x" * 50, "hello"]

    response = _post_signed(client, github, _batch(*tokens))

    assert response.status_code == 200, response.content
    assert response.json() == [
        {"token_hash": secret_scanning.token_hash(t), "token_type": "keygate_api_key", "label": label}
        for t, label in zip(
            tokens,
            ["true_positive", "true_positive", "false_positive", "false_positive", "false_positive", "false_positive"],
            strict=True,
        )
    ]
    live.refresh_from_db()
    event = live.events.get(action=KeyAction.REVOKED)
    assert live.is_revoked
    assert event.actor_label == "secret scanning"
    assert event.details == {"reason": "leaked", "url": "https://github.com/o/r/blob/abc/app.py", "source": "content"}
    assert dead.events.filter(action=KeyAction.REVOKED).count() == 1  # a no-op, not a second event


def test_the_token_hash_is_the_hex_sha256_of_the_token() -> None:
    assert secret_scanning.token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _assert_refused_and_unchanged(response, key: APIKey) -> None:
    assert response.status_code == 401, response.content
    assert "error" in response.json()
    key.refresh_from_db()
    assert not key.is_revoked


def test_an_unsigned_batch_is_401_and_changes_nothing(client, github, make_key) -> None:
    key, raw = make_key()
    _assert_refused_and_unchanged(client.post(PARTNER, data=_batch(raw), content_type="application/json"), key)


def test_a_batch_signed_by_another_key_is_401(client, github, make_key) -> None:
    key, raw = make_key()
    body = _batch(raw)
    impostor = Signer("current-key-id")  # same identifier, different key pair
    response = client.post(PARTNER, data=body, content_type="application/json", **impostor.headers(body))
    _assert_refused_and_unchanged(response, key)


def test_a_signed_body_replayed_with_a_change_is_401(client, github, make_key) -> None:
    key, raw = make_key()
    original = _batch("harmless-token")
    headers = github.signers[0].headers(original)
    tampered = _batch(raw)
    response = client.post(PARTNER, data=tampered, content_type="application/json", **headers)
    _assert_refused_and_unchanged(response, key)


def test_an_unknown_key_identifier_is_401(client, github, make_key) -> None:
    key, raw = make_key()
    body = _batch(raw)
    headers = github.signers[0].headers(body) | {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": "no-such-key"}
    _assert_refused_and_unchanged(client.post(PARTNER, data=body, content_type="application/json", **headers), key)


@pytest.mark.parametrize("signature", ["", "not base64!!", "QUJD", "A" * 5000])
def test_a_malformed_signature_is_401(client, github, make_key, signature) -> None:
    key, raw = make_key()
    body = _batch(raw)
    headers = github.signers[0].headers(body) | {"HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": signature}
    _assert_refused_and_unchanged(client.post(PARTNER, data=body, content_type="application/json", **headers), key)


def test_the_key_list_is_fetched_once_and_unknown_identifiers_do_not_refetch_it(client, github, make_key) -> None:
    for _ in range(3):
        assert _post_signed(client, github, _batch("x")).status_code == 200
    body = _batch("x")
    for n in range(5):
        headers = github.signers[0].headers(body) | {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": f"made-up-{n}"}
        assert client.post(PARTNER, data=body, content_type="application/json", **headers).status_code == 401
    assert github.key_list_fetches() == 1


def test_a_new_signing_key_is_picked_up_after_the_refresh_interval(client, github, monkeypatch) -> None:
    assert _post_signed(client, github, _batch("x")).status_code == 200
    newer = github.add_signer("newer-key-id")
    monkeypatch.setattr(secret_scanning, "REFRESH_AT_MOST_EVERY", 0.0)
    body = _batch("x")
    response = client.post(PARTNER, data=body, content_type="application/json", **newer.headers(body))
    assert response.status_code == 200
    assert github.key_list_fetches() == 2


def test_an_unreachable_key_list_is_503_not_500(client, settings) -> None:
    settings.KEYGATE_GITHUB_SCANNING_KEYS_URL = "http://127.0.0.1:9/meta/public_keys/secret_scanning"
    body = _batch("x")
    headers = {"HTTP_GITHUB_PUBLIC_KEY_IDENTIFIER": "k", "HTTP_GITHUB_PUBLIC_KEY_SIGNATURE": "QUJD"}
    response = client.post(PARTNER, data=body, content_type="application/json", **headers)
    assert response.status_code == 503 and "error" in response.json()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"not json", 400, id="not-json"),
        pytest.param(b'{"token": "x"}', 400, id="object-not-array"),
        pytest.param(b'[{"type": "x"}]', 400, id="no-token"),
        pytest.param(b'[{"token": 5}]', 400, id="token-not-a-string"),
        pytest.param(b'[{"token": "x", "url": 5}]', 400, id="url-not-a-string"),
        pytest.param(b"[]", 200, id="empty-batch"),
        pytest.param(json.dumps([{"token": "x"}] * 1001).encode(), 413, id="too-many-tokens"),
    ],
)
def test_bad_signed_bodies_get_a_clear_4xx(client, github, body, status) -> None:
    response = _post_signed(client, github, body)
    assert response.status_code == status, response.content
    if status != 200:
        assert "error" in response.json()


def test_an_oversized_body_is_413_before_the_signature_is_checked(client, github, settings) -> None:
    settings.KEYGATE_SECURITY_MAX_BODY_BYTES = 1000
    response = _post_signed(client, github, _batch(*["x" * 100] * 20))
    assert response.status_code == 413
    assert github.key_list_fetches() == 0


def test_get_is_405_with_allow(client) -> None:
    response = client.get(PARTNER)
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_a_batch_of_garbage_costs_no_database_query(client, github) -> None:
    body = _batch(*[_other_prefix_key() for _ in range(50)], *["sk-kg-" + "A" * 50] * 50)
    _post_signed(client, github, _batch("warm-up"))  # fetch the key list outside the measurement
    with CaptureQueriesContext(connection) as queries:
        response = _post_signed(client, github, body)
    assert response.status_code == 200
    assert {item["label"] for item in response.json()} == {"false_positive"}
    assert [q["sql"] for q in queries if "keys_" in q["sql"]] == []


# --- organisation alerts ------------------------------------------------------------------


def _alert_event(repo: str = "acme/app", number: int = 7, action: str = "created", **extra) -> bytes:
    payload = {"action": action, "alert": {"number": number, **extra}, "repository": {"full_name": repo}}
    return json.dumps(payload).encode()


def _post_alert(client: Client, body: bytes, *, event: str = "secret_scanning_alert", secret: str = WEBHOOK_SECRET):
    return client.post(
        ALERTS,
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=hub_signature(secret, body),
        HTTP_X_GITHUB_EVENT=event,
    )


def test_an_alert_webhook_fetches_the_secret_and_revokes_the_key(client, github, make_key) -> None:
    key, raw = make_key()
    html_url = "https://github.com/acme/app/security/secret-scanning/7"
    github.alerts[("acme/app", 7)] = {"number": 7, "secret": raw, "secret_type": "keygate", "html_url": html_url}

    response = _post_alert(client, _alert_event())

    assert response.status_code == 200, response.content
    assert response.json() == {"result": "revoked"}
    key.refresh_from_db()
    event = key.events.get(action=KeyAction.REVOKED)
    assert key.is_revoked and event.actor_label == "secret scanning"
    assert event.details == {"reason": "leaked", "url": html_url, "source": "github alert acme/app#7"}
    ((method, path, headers),) = [r for r in github.requests if "/alerts/" in r[1]]
    assert (method, path, headers["Authorization"]) == (
        "GET",
        "/repos/acme/app/secret-scanning/alerts/7",
        "Bearer test-github-token",
    )


def test_an_alert_never_makes_keygate_follow_a_url_from_the_payload(client, github, make_key) -> None:
    _, raw = make_key()
    github.alerts[("acme/app", 7)] = {"number": 7, "secret": raw}
    body = _alert_event(url="http://169.254.169.254/latest/meta-data", locations_url="http://evil.example/")
    assert _post_alert(client, body).status_code == 200
    assert [path for _, path, _ in github.requests] == ["/repos/acme/app/secret-scanning/alerts/7"]


@pytest.mark.parametrize("repo", ["../../admin", "acme/app/../x", "acme", "acme/app?x=1", "a/b@evil.example"])
def test_an_alert_with_a_strange_repository_name_is_400_and_fetches_nothing(client, github, repo) -> None:
    response = _post_alert(client, _alert_event(repo=repo))
    assert response.status_code == 400
    assert github.requests == []


def test_an_alert_with_a_wrong_hub_signature_is_401(client, github, make_key) -> None:
    key, raw = make_key()
    github.alerts[("acme/app", 7)] = {"number": 7, "secret": raw}
    assert _post_alert(client, _alert_event(), secret="wrong").status_code == 401
    unsigned = client.post(ALERTS, data=_alert_event(), content_type="application/json")
    assert unsigned.status_code == 401
    key.refresh_from_db()
    assert not key.is_revoked and github.requests == []


def test_alert_webhooks_are_404_until_a_secret_is_configured(client, settings) -> None:
    settings.KEYGATE_GITHUB_WEBHOOK_SECRET = ""
    assert client.post(ALERTS, data=b"{}", content_type="application/json").status_code == 404


def test_ping_and_other_actions_need_nothing(client, github) -> None:
    assert _post_alert(client, b'{"zen": "hi"}', event="ping").status_code == 200
    assert _post_alert(client, _alert_event(action="resolved")).status_code == 202
    assert _post_alert(client, _alert_event(), event="push").status_code == 202
    assert github.requests == []


def test_an_alert_github_cannot_serve_is_502(client, github) -> None:
    response = _post_alert(client, _alert_event(number=404))
    assert response.status_code == 502 and "error" in response.json()


def test_an_alert_for_a_foreign_secret_revokes_nothing(client, github, make_key) -> None:
    key, _ = make_key()
    github.alerts[("acme/app", 7)] = {"number": 7, "secret": _other_prefix_key()}
    assert _post_alert(client, _alert_event()).json() == {"result": "not_ours"}
    key.refresh_from_db()
    assert not key.is_revoked


# --- public reports -----------------------------------------------------------------------


def _wait_for_reports(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while security.pending_reports() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert security.pending_reports() == 0


def _report(client: Client, keys: list, **extra):
    return client.post(REPORT, data=json.dumps({"keys": keys}), content_type="application/json", **extra)


def test_a_report_revokes_a_live_key_off_the_response_path(client, make_key) -> None:
    key, raw = make_key()
    response = _report(client, [raw, "garbage"])
    assert (response.status_code, response.content) == (202, b"")
    _wait_for_reports()
    key.refresh_from_db()
    event = key.events.get(action=KeyAction.REVOKED)
    assert key.is_revoked
    assert (event.actor_label, event.details["reason"], event.details["source"]) == ("leak report", "leaked", "report")


def test_the_background_thread_keeps_no_database_connection_once_the_reports_are_done(
    client, make_key, connections_kept_a_minute
) -> None:
    # An idle connection held by this thread kept a PostgreSQL server slot for good, and the
    # test database could not be dropped at the end of the run.
    key, raw = make_key()
    assert _report(client, [raw]).status_code == 202
    _wait_for_reports()
    key.refresh_from_db()
    assert key.is_revoked  # the thread did use the database
    # One worker: this runs after the report's job has returned, on the same thread.
    assert security._background.submit(lambda: connection.connection is None).result(timeout=10)


def _comparable(response) -> tuple:
    headers = {name: value for name, value in response.items() if name.lower() not in {"date"}}
    return response.status_code, response.content, headers


def test_a_hit_and_a_miss_get_identical_answers(client, make_key) -> None:
    _, raw = make_key()
    miss = crypto.generate_key("sk-kg")[1]
    hit_response = _report(client, [raw])
    miss_response = _report(client, [miss])
    _wait_for_reports()
    assert _comparable(hit_response) == _comparable(miss_response)
    assert hit_response.status_code == 202 and hit_response.content == b""


def test_the_response_path_makes_no_database_query_for_a_hit_or_a_miss(client, make_key) -> None:
    _, raw = make_key()
    for keys in ([raw], [crypto.generate_key("sk-kg")[1]], ["garbage"]):
        with CaptureQueriesContext(connection) as queries:  # this thread's queries: the request's
            assert _report(client, keys).status_code == 202
        _wait_for_reports()
        assert len(queries) == 0, keys


def test_a_hit_answers_as_fast_as_a_miss_even_with_real_argon2(client, settings, make_key) -> None:
    """The work a hit causes (an argon2id verify at production cost, ~35 ms here, and the
    revocation) happens after the answer; answered inline it would show as a gap of tens of ms."""
    settings.KEYGATE_ARGON2 = {"time_cost": 2, "memory_cost_kib": 19 * 1024, "parallelism": 1}
    settings.KEYGATE_LEAK_REPORTS_PER_MINUTE = 0
    hits = [make_key(name=f"hit{i}")[1] for i in range(8)]
    timings: dict[str, list[float]] = {"hit": [], "miss": []}
    for raw in hits:
        for kind, keys in (("hit", [raw]), ("miss", [crypto.generate_key("sk-kg")[1]])):
            _wait_for_reports()
            started = time.perf_counter()
            assert _report(client, keys).status_code == 202
            timings[kind].append(time.perf_counter() - started)
    _wait_for_reports()
    assert APIKey.objects.filter(revoked_at__isnull=False).count() == len(hits)
    median = {kind: sorted(values)[len(values) // 2] for kind, values in timings.items()}
    assert abs(median["hit"] - median["miss"]) < 0.010, median


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"keys": []}', id="no-keys"),
        pytest.param(b'{"keys": "sk-kg-x"}', id="not-a-list"),
        pytest.param(json.dumps({"keys": ["x"] * 101}).encode(), id="too-many"),
        pytest.param(b'{"keys": [1]}', id="not-strings"),
        pytest.param(b"[]", id="array"),
    ],
)
def test_a_report_of_the_wrong_shape_is_400(client, body) -> None:
    response = client.post(REPORT, data=body, content_type="application/json")
    assert response.status_code == 400 and "error" in response.json()


def test_reports_are_rate_limited_per_address_before_any_work(client, settings, make_key, monkeypatch) -> None:
    settings.KEYGATE_LEAK_REPORTS_PER_MINUTE = 3
    processed: list = []
    monkeypatch.setattr(security.leaks, "revoke_leaked", lambda findings, **kw: processed.append(findings))
    statuses = [_report(client, ["x"]).status_code for _ in range(5)]
    statuses.append(client.post(REPORT, data=b"not json", content_type="application/json").status_code)
    other = _report(client, ["x"], REMOTE_ADDR="10.9.9.9").status_code
    _wait_for_reports()
    assert statuses == [202, 202, 202, 429, 429, 429]
    assert other == 202
    assert len(processed) == 4


def test_live_keys_not_verified_within_the_budget_are_left_out_and_revoked_in_the_background(
    client, github, settings, make_key, monkeypatch
) -> None:
    settings.KEYGATE_ARGON2 = {"time_cost": 2, "memory_cost_kib": 19 * 1024, "parallelism": 1}  # ~36 ms a verify
    monkeypatch.setattr(security, "PARTNER_VERIFY_BUDGET", 0.001)  # less than one verify
    raws = [make_key(name=f"live{i}")[1] for i in range(6)]

    response = _post_signed(client, github, _batch(*raws, "garbage"))

    answered = {item["token_hash"]: item["label"] for item in response.json()}
    assert response.status_code == 200
    assert answered[secret_scanning.token_hash("garbage")] == "false_positive"
    assert len(answered) < 7  # some live keys were still being verified
    assert all(answered.get(secret_scanning.token_hash(raw), "true_positive") == "true_positive" for raw in raws)
    _wait_for_reports()
    assert APIKey.objects.filter(revoked_at__isnull=True).count() == 0
