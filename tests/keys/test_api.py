"""The management REST API (/api/v1/): sessions and management keys, never a hash, the
plaintext only in the create and rotate responses, clear 400s for bad input."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from keys import services
from keys.models import APIKey, KeyEvent, UsageRecord

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/keys/"


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def alice_api(alice, make_key) -> Client:
    """alice's management key, as a client."""
    _, raw = make_key(name="alice-ci", model_patterns="", owner=alice, is_management=True)
    return bearer(raw)


def post(client: Client, url: str, data: dict | None = None, **extra):
    return client.post(url, json.dumps(data or {}), content_type="application/json", **extra)


def patch(client: Client, url: str, data: dict):
    return client.patch(url, json.dumps(data), content_type="application/json")


def never_secret(body: dict | list, *secrets: str) -> None:
    text = json.dumps(body)
    assert "argon2" not in text and "key_hash" not in text
    for secret in secrets:
        assert secret not in text


# --- authentication -----------------------------------------------------------------------------


def test_a_management_key_made_by_the_cli_flag_may_manage_keys(tmp_path) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("keys", "create", "--name", "ci-bot", "--management", stdout=out, stderr=StringIO())
    raw = out.getvalue().strip()
    key = APIKey.objects.get(name="ci-bot")
    assert key.is_management and key.model_patterns == []
    assert bearer(raw).get(KEYS).status_code == 200


def test_an_ordinary_key_cannot_call_the_api(make_key, alice) -> None:
    _, raw = make_key(name="model-key", owner=alice)
    response = bearer(raw).get(KEYS)
    assert response.status_code == 403
    assert "cannot manage keys" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer sk-kg-nonsense", id="malformed key"),
        pytest.param("Bearer sk-kg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", id="bad checksum"),
        pytest.param("Bearer", id="no key"),
        pytest.param("Bearer a b", id="two words"),
    ],
)
def test_a_bad_key_gets_401_with_a_clear_message(db, header) -> None:
    response = Client(HTTP_AUTHORIZATION=header).get(KEYS)
    assert response.status_code == 401 and response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_management_key_gets_401(alice, make_key) -> None:
    key, raw = make_key(model_patterns="", owner=alice, is_management=True)
    services.key_revoke(key=key)
    response = bearer(raw).get(KEYS)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_a_disabled_owners_management_key_gets_401(alice, make_key) -> None:
    _, raw = make_key(model_patterns="", owner=alice, is_management=True)
    alice.is_active = False
    alice.save()
    assert bearer(raw).get(KEYS).status_code == 401


def test_the_session_needs_the_csrf_token_for_writes(alice) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(KEYS).status_code == 200
    response = post(client, KEYS, {"name": "x", "models": ["*"]})
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_a_management_key_records_when_it_was_used(alice, make_key) -> None:
    key, raw = make_key(model_patterns="", owner=alice, is_management=True)
    bearer(raw).get(KEYS, REMOTE_ADDR="192.0.2.4")
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_ip == "192.0.2.4"


# --- create -------------------------------------------------------------------------------------


def test_create_returns_the_key_once_with_no_store(alice, alice_api) -> None:
    response = post(
        alice_api,
        KEYS,
        {"name": "ci-runner", "models": ["gpt-4o", "claude-*"], "expires_in": "30d", "rpm_limit": 60},
        REMOTE_ADDR="192.0.2.9",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    key = APIKey.objects.get(public_id=body["id"])
    assert services.verify_key(body["key"]).id == key.pk
    assert body["owner"] == "alice" and body["models"] == ["gpt-4o", "claude-*"] and body["rpm_limit"] == 60
    assert body["masked_key"] == key.masked and body["status"] == "active"
    assert "no-store" in response["Cache-Control"]
    never_secret(body, key.key_hash)
    event = key.events.get()
    assert event.actor == alice and event.actor_label.startswith("api:") and event.ip == "192.0.2.9"


def test_after_creation_no_response_carries_the_key(alice, alice_api) -> None:
    raw = post(alice_api, KEYS, {"name": "once", "models": ["*"]}).json()["key"]
    key = APIKey.objects.get(name="once")
    for response in (alice_api.get(KEYS), alice_api.get(f"{KEYS}{key.public_id}/")):
        assert response.status_code == 200
        never_secret(response.json(), raw, raw[18:], key.key_hash)
        assert "key" not in (response.json().get("results") or [response.json()])[0]


def test_a_session_user_creates_keys_for_themselves(client, alice) -> None:
    client.force_login(alice)
    body = post(client, KEYS, {"name": "mine", "models": ["*"], "expires_at": None}).json()
    assert body["owner"] == "alice"
    assert KeyEvent.objects.get().actor_label == "api"


def test_a_user_cannot_choose_another_owner(alice_api, bob) -> None:
    response = post(alice_api, KEYS, {"name": "x", "models": ["*"], "owner": "bob"})
    assert response.status_code == 400 and "owner" in response.json()
    assert not APIKey.objects.filter(name="x").exists()


def test_staff_may_create_keys_for_anyone_or_for_the_operators(client, operator, alice) -> None:
    client.force_login(operator)
    assert post(client, KEYS, {"name": "a", "models": ["*"], "owner": "alice"}).json()["owner"] == "alice"
    assert post(client, KEYS, {"name": "o", "models": ["*"], "owner": None}).json()["owner"] is None
    assert post(client, KEYS, {"name": "n", "models": ["*"], "owner": "nobody"}).status_code == 400


def test_an_ownerless_management_key_acts_for_the_operators(alice, bob, make_key) -> None:
    alices, _ = make_key(name="alice-key", owner=alice)
    make_key(name="bob-key", owner=bob)
    _, raw = make_key(name="ops-bot", model_patterns="", is_management=True)
    api = bearer(raw)
    names = {k["name"] for k in api.get(KEYS).json()["results"]}
    assert {"alice-key", "bob-key", "ops-bot"} <= names
    response = post(api, f"{KEYS}{alices.public_id}/revoke/")
    assert response.status_code == 200
    event = alices.events.get(action="revoked")
    assert event.actor is None and event.actor_label.startswith("api:")
    created = post(api, KEYS, {"name": "made-by-bot", "models": ["*"]}).json()
    assert created["owner"] is None


def test_a_management_key_can_create_a_management_key_but_not_with_models(alice_api) -> None:
    assert post(alice_api, KEYS, {"name": "m", "management": True}).json()["management"] is True
    response = post(alice_api, KEYS, {"name": "m2", "management": True, "models": ["*"]})
    assert response.status_code == 400 and "models" in response.json()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param({"models": ["*"]}, "name", id="no name"),
        pytest.param({"name": "x"}, "models", id="no models"),
        pytest.param({"name": "x", "models": ["gpt 4o!"]}, "models", id="bad pattern"),
        pytest.param({"name": "x", "models": "gpt-4o"}, "models", id="models not a list"),
        pytest.param({"name": "x", "models": ["*"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at", id="past"),
        pytest.param({"name": "x", "models": ["*"], "expires_at": "soon"}, "expires_at", id="not a date"),
        pytest.param({"name": "x", "models": ["*"], "expires_in": "forever"}, "expires_in", id="bad duration"),
        pytest.param({"name": "x", "models": ["*"], "rpm_limit": 0}, "rpm_limit", id="zero limit"),
        pytest.param({"name": "x", "models": ["*"], "rpm_limit": "many"}, "rpm_limit", id="text limit"),
        pytest.param({"name": "x", "models": ["*"], "budget_usd": "-1"}, "budget_usd", id="negative budget"),
        pytest.param({"name": "x", "models": ["*"], "budget_period": "year"}, "budget_period", id="bad period"),
        pytest.param({"name": "x", "models": ["*"], "allowed_ips": ["nope"]}, "allowed_ips", id="bad network"),
        pytest.param({"name": "x", "models": ["*"], "metadata": [1]}, "metadata", id="metadata not an object"),
        pytest.param({"name": "\x00bad", "models": ["*"]}, "name", id="control characters"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(alice_api, payload, field) -> None:
    response = post(alice_api, KEYS, payload)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()


def test_a_body_that_is_not_json_is_a_400(alice_api) -> None:
    response = alice_api.post(KEYS, "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["detail"]


# --- list, retrieve, update -------------------------------------------------------------------


def test_the_list_is_paginated_and_filterable(alice, alice_api, make_key) -> None:
    make_key(name="gpt-only", owner=alice, model_patterns="gpt-4o")
    make_key(name="claude-all", owner=alice, model_patterns="claude-*")
    gone, _ = make_key(name="gone", owner=alice)
    services.key_revoke(key=gone)
    names = lambda response: sorted(k["name"] for k in response.json()["results"])  # noqa: E731
    assert alice_api.get(KEYS).json()["count"] == 4
    assert names(alice_api.get(KEYS, {"status": "revoked"})) == ["gone"]
    assert names(alice_api.get(KEYS, {"name": "CLAUDE"})) == ["claude-all"]
    assert names(alice_api.get(KEYS, {"model": "claude-sonnet-4-5"})) == ["claude-all", "gone"]
    page = alice_api.get(KEYS, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    assert alice_api.get(KEYS, {"status": "sleepy"}).status_code == 400


def test_staff_filter_the_list_by_owner(client, operator, alice, bob, make_key) -> None:
    make_key(name="a", owner=alice)
    make_key(name="b", owner=bob)
    make_key(name="o")
    client.force_login(operator)
    assert [k["name"] for k in client.get(KEYS, {"owner": "bob"}).json()["results"]] == ["b"]
    assert [k["name"] for k in client.get(KEYS, {"owner": "-"}).json()["results"]] == ["o"]


def test_update_changes_name_models_expiry_and_limits(alice, alice_api, make_key) -> None:
    key, _ = make_key(name="old", owner=alice)
    expiry = (timezone.now() + timedelta(days=5)).replace(microsecond=0)
    response = patch(
        alice_api,
        f"{KEYS}{key.public_id}/",
        {"name": "new", "models": ["gpt-4o"], "expires_at": expiry.isoformat(), "tpm_limit": 1000, "allowed_ips": []},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["models"], body["tpm_limit"]) == ("new", ["gpt-4o"], 1000)
    key.refresh_from_db()
    assert key.expires_at == expiry
    assert key.events.get(action="updated").details["fields"] == ["expires_at", "model_patterns", "name", "tpm_limit"]
    assert patch(alice_api, f"{KEYS}{key.public_id}/", {"expires_at": None}).json()["expires_at"] is None


def test_update_refuses_a_revoked_key_with_409(alice, alice_api, make_key) -> None:
    key, _ = make_key(owner=alice)
    services.key_revoke(key=key)
    response = patch(alice_api, f"{KEYS}{key.public_id}/", {"name": "x"})
    assert response.status_code == 409 and "revoked" in response.json()["detail"]


def test_an_empty_update_is_a_400(alice, alice_api, make_key) -> None:
    key, _ = make_key(owner=alice)
    assert patch(alice_api, f"{KEYS}{key.public_id}/", {}).status_code == 400


def test_put_and_delete_are_not_offered(alice, alice_api, make_key) -> None:
    key, _ = make_key(owner=alice)
    url = f"{KEYS}{key.public_id}/"
    assert alice_api.put(url, "{}", content_type="application/json").status_code == 405
    assert alice_api.delete(url).status_code == 405


# --- rotate, revoke ----------------------------------------------------------------------------


def test_rotate_returns_the_new_key_once_and_the_old_keys_new_expiry(alice, alice_api, make_key) -> None:
    old, old_raw = make_key(name="rolling", owner=alice)
    response = post(alice_api, f"{KEYS}{old.public_id}/rotate/", {"grace": "1h"})
    assert response.status_code == 201, response.content
    body = response.json()
    new = APIKey.objects.get(rotated_from=old)
    assert body["id"] == new.public_id and services.verify_key(body["key"]).id == new.pk
    assert body["rotated_from"] == old.public_id and body["previous"]["rotated_to"] == new.public_id
    assert body["previous"]["status"] == "expiring"
    assert "no-store" in response["Cache-Control"]
    never_secret(body, old_raw, old.key_hash, new.key_hash)


def test_rotate_defaults_to_24_hours_of_grace(alice, alice_api, make_key) -> None:
    old, _ = make_key(owner=alice)
    post(alice_api, f"{KEYS}{old.public_id}/rotate/")
    old.refresh_from_db()
    assert abs(old.expires_at - timezone.now() - timedelta(hours=24)) < timedelta(minutes=1)


def test_rotate_rejects_a_bad_grace_and_a_revoked_key(alice, alice_api, make_key) -> None:
    key, _ = make_key(owner=alice)
    assert post(alice_api, f"{KEYS}{key.public_id}/rotate/", {"grace": "a while"}).status_code == 400
    services.key_revoke(key=key)
    assert post(alice_api, f"{KEYS}{key.public_id}/rotate/", {"grace": "now"}).status_code == 409


def test_revoke_stops_the_key_and_a_second_revoke_is_409(alice, alice_api, make_key) -> None:
    key, raw = make_key(owner=alice)
    response = post(alice_api, f"{KEYS}{key.public_id}/revoke/")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert services.verify_key(raw).inactive_reason(timezone.now()) == "revoked"
    again = post(alice_api, f"{KEYS}{key.public_id}/revoke/")
    assert again.status_code == 409 and "already revoked" in again.json()["detail"]


# --- usage -------------------------------------------------------------------------------------


def test_usage_aggregates_over_a_period(alice, alice_api, make_key) -> None:
    key, _ = make_key(owner=alice)
    now = timezone.now()
    rows = [
        (now, "gpt-4o", 200, 10, 20),
        (now, "gpt-4o", 500, 0, 0),
        (now - timedelta(days=1), "claude-x", 200, 5, 5),
        (now - timedelta(days=40), "gpt-4o", 200, 1000, 1000),
    ]
    for created, model, status_code, tokens_in, tokens_out in rows:
        UsageRecord.objects.create(
            key=key,
            created_at=created,
            endpoint="chat",
            model=model,
            status_code=status_code,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd="0.001",
        )
    body = alice_api.get(f"{KEYS}{key.public_id}/usage/", {"days": 7}).json()
    assert body["totals"]["requests"] == 3 and body["totals"]["errors"] == 1
    assert body["totals"]["input_tokens"] == 15 and body["totals"]["output_tokens"] == 25
    assert {m["model"]: m["requests"] for m in body["by_model"]} == {"gpt-4o": 2, "claude-x": 1}
    assert len(body["by_day"]) == 2
    start = (timezone.localdate() - timedelta(days=45)).isoformat()
    wide = alice_api.get(f"{KEYS}{key.public_id}/usage/", {"start": start}).json()
    assert wide["totals"]["requests"] == 4


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"days": 0}, id="zero days"),
        pytest.param({"days": "many"}, id="text days"),
        pytest.param({"start": "2025-02-01", "end": "2025-01-01"}, id="start after end"),
        pytest.param({"start": "2020-01-01", "end": "2025-01-01"}, id="too long"),
        pytest.param({"days": 3, "start": "2025-01-01"}, id="both"),
        pytest.param({"end": "2025-01-01"}, id="end alone"),
    ],
)
def test_a_bad_usage_period_is_a_400(alice, alice_api, make_key, query) -> None:
    key, _ = make_key(owner=alice)
    assert alice_api.get(f"{KEYS}{key.public_id}/usage/", query).status_code == 400


# --- schema and docs -------------------------------------------------------------------------


def test_the_openapi_schema_is_valid_and_documents_the_api(client) -> None:
    from drf_spectacular.validation import validate_schema

    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert set(schema["paths"]) == {
        "/api/v1/keys/",
        "/api/v1/keys/{id}/",
        "/api/v1/keys/{id}/rotate/",
        "/api/v1/keys/{id}/revoke/",
        "/api/v1/keys/{id}/pause/",
        "/api/v1/keys/{id}/resume/",
        "/api/v1/keys/{id}/usage/",
        "/api/v1/teams/",
        "/api/v1/teams/{id}/",
        "/api/v1/teams/{id}/members/",
        "/api/v1/teams/{id}/members/{username}/",
        "/api/v1/usage/",
    }
    assert schema["components"]["securitySchemes"]["managementKey"]["scheme"] == "bearer"
    assert "key_hash" not in json.dumps(schema)


def test_the_schema_generates_without_warnings() -> None:
    from io import StringIO

    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


def test_the_docs_are_served_with_local_assets_only(client) -> None:
    response = client.get("/api/docs/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "//cdn" not in html and "https://" not in html
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content
    bundle = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert bundle.status_code == 200


def test_pause_and_resume_change_the_status_and_are_audited_as_the_api(alice, alice_api, make_key) -> None:
    key, _ = make_key(owner=alice)
    paused = alice_api.post(f"{KEYS}{key.public_id}/pause/")
    assert paused.status_code == 200 and paused.json()["status"] == "paused" and paused.json()["paused_at"]
    assert alice_api.post(f"{KEYS}{key.public_id}/pause/").status_code == 409
    resumed = alice_api.post(f"{KEYS}{key.public_id}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active" and resumed.json()["paused_at"] is None
    assert alice_api.post(f"{KEYS}{key.public_id}/resume/").status_code == 409
    vias = list(key.events.filter(action__in=["paused", "resumed"]).values_list("actor_label", flat=True))
    assert len(vias) == 2 and all(via.startswith("api:") for via in vias)


def test_bob_cannot_pause_alices_key(alice, bob, make_key) -> None:
    key, _ = make_key(owner=alice)
    _, raw = make_key(name="bob-ci", model_patterns="", owner=bob, is_management=True)
    assert bearer(raw).post(f"{KEYS}{key.public_id}/pause/").status_code == 404
    key.refresh_from_db()
    assert not key.is_paused


def test_the_list_filters_paused_keys(alice, alice_api, make_key) -> None:
    key, _ = make_key(name="paused-one", owner=alice)
    make_key(name="working-one", owner=alice)
    services.key_pause(key=key)
    names = [k["name"] for k in alice_api.get(KEYS, {"status": "paused"}).json()["results"]]
    assert names == ["paused-one"]
    usable = [k["name"] for k in alice_api.get(KEYS, {"status": "usable"}).json()["results"]]
    assert "paused-one" not in usable and "working-one" in usable
