"""Who may do what with keys (keys/policy.py), asked by the dashboard and the REST API alike.

The cast: alice owns a key; bob is an ordinary user; sally is staff with no permissions (the
admin refuses her, and so does everything else); vera may view every key (keys.view_apikey);
olga is an operator by permission (view, change and add on keys, not a superuser, not staff);
operator is a superuser.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from keys import policy, services
from keys.models import APIKey, KeyEvent
from tests.support.wait import wait_until

pytestmark = pytest.mark.django_db

# Within the state bound (KEYGATE_STATE_TTL, 1 s) plus slack: how long a change may take to bite.
STATE_BOUND = 2.0


def _grant(user: User, *codenames: str) -> User:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="keys", codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh object: Django caches permissions per instance


@pytest.fixture
def sally(db: None) -> User:
    return User.objects.create_user("sally", "sally@example.com", "sally-password-1", is_staff=True)


@pytest.fixture
def vera(db: None) -> User:
    return _grant(User.objects.create_user("vera", "vera@example.com", "vera-password-1"), "view_apikey")


@pytest.fixture
def olga(db: None) -> User:
    user = User.objects.create_user("olga", "olga@example.com", "olga-password-1")
    return _grant(user, "view_apikey", "change_apikey", "add_apikey")


@pytest.fixture
def cast(alice, bob, sally, vera, olga, operator) -> dict[str, User]:
    return {u.username: u for u in (alice, bob, sally, vera, olga, operator)}


@pytest.fixture
def alices_key(alice, make_key) -> APIKey:
    return make_key(name="alice-key", owner=alice)[0]


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post_json(client: Client, url: str, data: dict | None = None):
    return client.post(url, json.dumps(data or {}), content_type="application/json")


def _bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


# --- the table: every surface, every member of the cast -------------------------------------------

SEES = {"alice", "vera", "olga", "operator"}  # may see alice's key
CHANGES = {"alice", "olga", "operator"}  # may change, rotate and revoke it
MINTS = {"olga", "operator"}  # may create keys for others, or ownerless


def _dashboard_calls(key: APIKey) -> list[tuple[str, str, dict | None]]:
    url = lambda name: reverse(name, kwargs={"public_id": key.public_id})  # noqa: E731
    return [
        ("see", "get", url("keys:detail"), None),
        ("change", "get", url("keys:edit"), None),
        ("change", "post", url("keys:edit"), {"name": "renamed", "models": ["*"], "expiry": "never"}),
        ("change", "get", url("keys:rotate"), None),
        ("change", "get", url("keys:revoke"), None),
        ("change", "post", url("keys:revoke"), {}),
    ]


@pytest.mark.parametrize("who", ["alice", "bob", "sally", "vera", "olga", "operator"])
def test_the_dashboard_follows_the_policy_for_alices_key(cast, alices_key, who) -> None:
    client = _as(cast[who])
    listed = client.get(reverse("keys:list"), {"status": ""}).content.decode()
    assert ("alice-key" in listed) == (who in SEES)
    for need, method, url, data in _dashboard_calls(alices_key):
        response = getattr(client, method)(url, data) if method == "post" else client.get(url)
        allowed = who in (SEES if need == "see" else CHANGES)
        if allowed:
            assert response.status_code in (200, 302), (who, method, url)
        else:
            # Not visible: 404 (the key does not exist for them). Visible but not changeable: 403.
            assert response.status_code == (403 if who in SEES else 404), (who, method, url)
    fresh = APIKey.objects.get(pk=alices_key.pk)
    assert fresh.is_revoked == (who in CHANGES)


def _api_calls(key: APIKey) -> list[tuple[str, str, str, dict | None]]:
    detail = reverse("api:key-detail", kwargs={"id": key.public_id})
    return [
        ("see", "get", detail, None),
        ("see", "get", reverse("api:key-usage", kwargs={"id": key.public_id}), None),
        ("change", "patch", detail, {"name": "renamed"}),
        ("change", "post", reverse("api:key-revoke", kwargs={"id": key.public_id}), None),
    ]


@pytest.mark.parametrize("who", ["alice", "bob", "sally", "vera", "olga", "operator"])
def test_the_api_follows_the_policy_for_alices_key(cast, alices_key, who) -> None:
    client = _as(cast[who])
    listed = {k["name"] for k in client.get("/api/v1/keys/").json()["results"]}
    assert ("alice-key" in listed) == (who in SEES)
    for need, method, url, data in _api_calls(alices_key):
        if method == "get":
            response = client.get(url)
        else:
            response = getattr(client, method)(url, json.dumps(data or {}), content_type="application/json")
        allowed = who in (SEES if need == "see" else CHANGES)
        expected = {200} if allowed else {403 if who in SEES else 404}
        assert response.status_code in expected, (who, method, url, response.status_code)
    assert APIKey.objects.get(pk=alices_key.pk).is_revoked == (who in CHANGES)


@pytest.mark.parametrize("who", ["alice", "bob", "sally", "vera", "olga", "operator"])
def test_only_those_with_add_permission_create_keys_for_others_or_ownerless(cast, who) -> None:
    client = _as(cast[who])
    for_bob = _post_json(client, "/api/v1/keys/", {"name": f"{who}-for-bob", "models": ["*"], "owner": "bob"})
    ownerless = _post_json(client, "/api/v1/keys/", {"name": f"{who}-bot", "management": True, "owner": None})
    own = _post_json(client, "/api/v1/keys/", {"name": f"{who}-own", "models": ["*"]})
    expected = 201 if who in MINTS else 400
    assert (for_bob.status_code, ownerless.status_code, own.status_code) == (expected, expected, 201)
    assert APIKey.objects.get(name=f"{who}-own").owner == cast[who]
    # The dashboard's create form offers an owner only to the same people.
    form = _as(cast[who]).get(reverse("keys:create")).content.decode()
    assert ('name="owner"' in form) == (who in MINTS)


def test_a_staff_user_without_permissions_cannot_escalate(alice, sally, make_key) -> None:
    """The repro of issue #10, finding 6: list every key, revoke alice's, mint an ownerless
    management key that outlives her staff status. Each step is now refused."""
    alices, _ = make_key(name="alice-key", owner=alice)
    client = _as(sally)
    assert client.get("/api/v1/keys/").json()["results"] == []
    assert "alice-key" not in client.get(reverse("keys:list"), {"status": ""}).content.decode()
    assert _post_json(client, f"/api/v1/keys/{alices.public_id}/revoke/").status_code == 404
    assert client.post(reverse("keys:revoke", kwargs={"public_id": alices.public_id})).status_code == 404
    response = _post_json(client, "/api/v1/keys/", {"name": "backdoor", "management": True, "owner": None})
    assert response.status_code == 400
    dashboard = client.get(reverse("keys:create"))
    assert 'name="owner"' not in dashboard.content.decode()
    assert not APIKey.objects.filter(name="backdoor").exists()
    assert not APIKey.objects.get(pk=alices.pk).is_revoked
    assert not KeyEvent.objects.exclude(action="created").exists()


# --- ownerless management keys answer to their minter ---------------------------------------------


def _mint(client: Client, name: str = "ops-bot") -> str:
    response = _post_json(client, "/api/v1/keys/", {"name": name, "management": True, "owner": None})
    assert response.status_code == 201, response.content
    return response.json()["key"]


def test_an_ownerless_key_records_who_minted_it(olga) -> None:
    raw = _mint(_as(olga))
    key = APIKey.objects.get(name="ops-bot")
    assert key.owner is None and key.minted_by == olga
    # A key it mints answers to the same person; so does its successor after a rotation.
    made = _post_json(_bearer(raw), "/api/v1/keys/", {"name": "child-bot", "management": True}).json()
    assert made["owner"] is None and APIKey.objects.get(name="child-bot").minted_by == olga
    successor, _ = services.key_rotate(key=key, grace=services.parse_duration("now"))
    assert successor.minted_by == olga


def test_an_ownerless_key_made_by_the_cli_has_no_minter_and_every_key_permission(alice, make_key) -> None:
    key, raw = make_key(name="cli-bot", model_patterns="", is_management=True)
    assert key.minted_by is None
    make_key(name="alice-key", owner=alice)
    assert "alice-key" in {k["name"] for k in _bearer(raw).get("/api/v1/keys/").json()["results"]}
    identity = policy.MintedKeyUser(None)
    assert identity.has_perm(policy.CHANGE_ALL) and not identity.has_perm("gateway.change_provider")


def test_an_ownerless_key_stops_working_when_its_minter_is_disabled(olga) -> None:
    api = _bearer(_mint(_as(olga)))
    assert api.get("/api/v1/keys/").status_code == 200
    olga.is_active = False
    olga.save()
    wait_until(lambda: api.get("/api/v1/keys/").status_code == 401, timeout=STATE_BOUND)


@pytest.mark.parametrize("lost", ["add_apikey", "all"])
def test_an_ownerless_key_stops_working_when_its_minter_loses_the_permission(olga, lost) -> None:
    api = _bearer(_mint(_as(olga)))
    assert api.get("/api/v1/keys/").status_code == 200
    if lost == "all":
        olga.user_permissions.clear()
    else:
        olga.user_permissions.remove(Permission.objects.get(codename=lost, content_type__app_label="keys"))
    wait_until(lambda: api.get("/api/v1/keys/").status_code == 401, timeout=STATE_BOUND)


def test_an_ownerless_keys_powers_are_its_minters_never_more(alice, make_key) -> None:
    minter = _grant(User.objects.create_user("mia", "mia@example.com", "mia-password-1"), "add_apikey", "view_apikey")
    alices, _ = make_key(name="alice-key", owner=alice)
    api = _bearer(_mint(_as(minter)))
    assert "alice-key" in {k["name"] for k in api.get("/api/v1/keys/").json()["results"]}
    assert _post_json(api, f"/api/v1/keys/{alices.public_id}/revoke/").status_code == 403
    assert not APIKey.objects.get(pk=alices.pk).is_revoked
    # Losing view narrows the key at once: its identity asks the minter at every request.
    minter.user_permissions.remove(Permission.objects.get(codename="view_apikey", content_type__app_label="keys"))
    assert api.get("/api/v1/keys/").json()["results"] == []


def test_a_staff_flag_alone_gives_a_key_no_powers(sally, make_key, alice) -> None:
    make_key(name="alice-key", owner=alice)
    _, raw = make_key(name="sally-bot", model_patterns="", owner=sally, is_management=True)
    assert _bearer(raw).get("/api/v1/keys/").json()["results"][0]["name"] == "sally-bot"
    assert len(_bearer(raw).get("/api/v1/keys/").json()["results"]) == 1


def test_the_admin_asks_the_same_policy(client, sally, vera, olga) -> None:
    User.objects.filter(pk__in=[vera.pk, olga.pk]).update(is_staff=True)  # the admin's own door
    client.force_login(sally)
    assert client.get("/admin/keys/apikey/").status_code == 403
    client.force_login(vera)
    assert client.get("/admin/keys/apikey/").status_code == 200
    assert client.get("/admin/keys/apikey/add/").status_code == 403
    client.force_login(olga)
    assert client.get("/admin/keys/apikey/add/").status_code in (200, 302)
