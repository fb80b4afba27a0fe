"""Ownership first: a key outside your scope does not exist for you — every URL answers 404.

bob never sees or acts on alice's keys; operator-owned keys (no owner) are staff-only; staff
see everyone's; anonymous visitors are sent to sign in (dashboard) or refused (API).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from keys.models import APIKey, KeyEvent

pytestmark = pytest.mark.django_db

DASHBOARD = [
    pytest.param("get", "keys:detail", id="GET detail"),
    pytest.param("get", "keys:edit", id="GET edit"),
    pytest.param("post", "keys:edit", id="POST edit"),
    pytest.param("get", "keys:rotate", id="GET rotate"),
    pytest.param("post", "keys:rotate", id="POST rotate"),
    pytest.param("get", "keys:revoke", id="GET revoke"),
    pytest.param("post", "keys:revoke", id="POST revoke"),
]

API = [
    pytest.param("get", "api:key-detail", id="GET key"),
    pytest.param("patch", "api:key-detail", id="PATCH key"),
    pytest.param("post", "api:key-rotate", id="POST rotate"),
    pytest.param("post", "api:key-revoke", id="POST revoke"),
    pytest.param("get", "api:key-usage", id="GET usage"),
]

PAYLOADS = {
    "keys:edit": {"name": "hijacked", "models": ["*"], "expiry": "never"},
    "keys:rotate": {"grace": "now", "once": "x"},
    "api:key-detail": {"name": "hijacked"},
    "api:key-rotate": {"grace": "now"},
}


def _dashboard(client, method: str, name: str, key: APIKey):
    url = reverse(name, kwargs={"public_id": key.public_id})
    return getattr(client, method)(url, PAYLOADS.get(name, {}) if method == "post" else None)


def _api(client, method: str, name: str, key: APIKey):
    url = reverse(name, kwargs={"id": key.public_id})
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, PAYLOADS.get(name, {}), content_type="application/json")


@pytest.fixture
def alices_key(alice, make_key) -> APIKey:
    return make_key(name="alice-key", owner=alice)[0]


@pytest.fixture
def operators_key(make_key) -> APIKey:
    return make_key(name="operator-key")[0]


def _untouched(key: APIKey) -> None:
    fresh = APIKey.objects.get(pk=key.pk)
    assert fresh.name == key.name and fresh.revoked_at is None and fresh.expires_at == key.expires_at
    assert not APIKey.objects.filter(rotated_from=key).exists()
    assert list(KeyEvent.objects.filter(key=key).values_list("action", flat=True)) == ["created"]


@pytest.mark.parametrize(("method", "name"), DASHBOARD)
def test_bob_gets_404_for_every_dashboard_url_of_alices_key(client, bob, alices_key, method, name) -> None:
    client.force_login(bob)
    assert _dashboard(client, method, name, alices_key).status_code == 404
    _untouched(alices_key)


@pytest.mark.parametrize(("method", "name"), DASHBOARD)
def test_bob_gets_404_for_every_dashboard_url_of_an_operator_owned_key(client, bob, operators_key, method, name):
    client.force_login(bob)
    assert _dashboard(client, method, name, operators_key).status_code == 404
    _untouched(operators_key)


@pytest.mark.parametrize(("method", "name"), API)
def test_bob_gets_404_for_every_api_url_of_alices_key(client, bob, alices_key, method, name) -> None:
    client.force_login(bob)
    assert _api(client, method, name, alices_key).status_code == 404
    _untouched(alices_key)


@pytest.mark.parametrize(("method", "name"), API)
def test_bobs_management_key_gets_404_for_every_api_url_of_alices_key(client, bob, alices_key, make_key, method, name):
    _, raw = make_key(name="bob-admin", model_patterns="", owner=bob, is_management=True)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    assert _api(client, method, name, alices_key).status_code == 404
    _untouched(alices_key)


@pytest.mark.parametrize(("method", "name"), [p for p in DASHBOARD if p.values[0] == "get"])
def test_staff_see_every_dashboard_page_of_alices_key(client, operator, alices_key, method, name) -> None:
    client.force_login(operator)
    assert _dashboard(client, method, name, alices_key).status_code == 200


@pytest.mark.parametrize(("method", "name"), [p for p in API if p.values[0] == "get"])
def test_staff_see_alices_key_over_the_api(client, operator, alices_key, method, name) -> None:
    client.force_login(operator)
    assert _api(client, method, name, alices_key).status_code == 200


@pytest.mark.parametrize(("method", "name"), DASHBOARD)
def test_anonymous_visitors_are_sent_to_sign_in(client, alices_key, method, name) -> None:
    response = _dashboard(client, method, name, alices_key)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    _untouched(alices_key)


@pytest.mark.parametrize(("method", "name"), API)
def test_anonymous_api_callers_get_401(client, alices_key, method, name) -> None:
    response = _api(client, method, name, alices_key)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    _untouched(alices_key)


def test_bobs_list_never_shows_alices_keys(client, bob, alices_key, make_key) -> None:
    mine, _ = make_key(name="bob-key", owner=bob)
    client.force_login(bob)
    html = client.get(reverse("keys:list") + "?status=").content.decode()
    assert "bob-key" in html and mine.masked in html
    assert "alice-key" not in html and alices_key.public_id not in html
    api = client.get(reverse("api:key-list")).json()
    assert [k["id"] for k in api["results"]] == [mine.public_id]


def test_staff_list_shows_everyones_keys_and_filters_by_owner(client, operator, alice, bob, make_key) -> None:
    make_key(name="alice-key", owner=alice)
    make_key(name="bob-key", owner=bob)
    make_key(name="ops-key")
    client.force_login(operator)
    everything = client.get(reverse("keys:list")).content.decode()
    assert all(name in everything for name in ("alice-key", "bob-key", "ops-key"))
    only_alice = client.get(reverse("keys:list"), {"owner": alice.pk}).content.decode()
    assert "alice-key" in only_alice and "bob-key" not in only_alice and "ops-key" not in only_alice
    ownerless = client.get(reverse("keys:list"), {"owner": "-"}).content.decode()
    assert "ops-key" in ownerless and "alice-key" not in ownerless


def test_an_unknown_or_malformed_key_id_is_404(client, alice) -> None:
    client.force_login(alice)
    assert client.get("/keys/AAAAAAAAAAAA/").status_code == 404
    assert client.get("/keys/not-a-key/").status_code == 404
    assert client.get("/keys/sk-kg-AAAAAAAAAAAA/").status_code == 404
