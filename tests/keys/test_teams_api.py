"""/api/v1/teams/ and teams on /api/v1/keys/: who may do what (keys.policy), as a table.

The cast: an operator (superuser); in team "search" alice (admin), bob (member), carol
(viewer); dave is admin of another team; erin is in no team.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from keys import services
from keys.models import APIKey, Team

pytestmark = pytest.mark.django_db

TEAMS = "/api/v1/teams/"
KEYS = "/api/v1/keys/"


@pytest.fixture
def cast(operator) -> dict[str, User]:
    people = {"operator": operator}
    for name in ("alice", "bob", "carol", "dave", "erin"):
        people[name] = User.objects.create_user(name, f"{name}@example.com", "pw-for-tests-1")
    search = services.team_create(name="search", model_patterns="gpt-*", budget_tokens=1000, budget_period="day")
    other = services.team_create(name="other")
    services.member_add(team=search, user=people["alice"], role="admin")
    services.member_add(team=search, user=people["bob"], role="member")
    services.member_add(team=search, user=people["carol"], role="viewer")
    services.member_add(team=other, user=people["dave"], role="admin")
    return people


def client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def send(user: User, method: str, url: str, data: dict | None = None):
    c = client(user)
    if method == "get":
        return c.get(url)
    return getattr(c, method)(url, json.dumps(data or {}), content_type="application/json")


def _team(name: str = "search") -> Team:
    return Team.objects.get(name=name)


def _bobs_key() -> APIKey:
    return services.key_create(
        name="bob-search", model_patterns="gpt-4o", team=_team(), owner=User.objects.get(username="bob")
    )[0]


@pytest.mark.parametrize(
    ("who", "expected"),
    [("operator", 200), ("alice", 200), ("bob", 200), ("carol", 200), ("dave", 404), ("erin", 404)],
)
def test_who_may_see_a_team(cast, who, expected) -> None:
    assert send(cast[who], "get", f"{TEAMS}{_team().pk}/").status_code == expected


def test_the_team_list_holds_only_the_teams_one_is_in(cast) -> None:
    names = lambda who: [t["name"] for t in send(cast[who], "get", TEAMS).json()["results"]]  # noqa: E731
    assert names("operator") == ["other", "search"]
    assert names("alice") == ["search"] and names("erin") == []


@pytest.mark.parametrize(("who", "expected"), [("operator", 201), ("alice", 403), ("erin", 403)])
def test_only_operators_create_teams(cast, who, expected) -> None:
    response = send(cast[who], "post", TEAMS, {"name": f"new-{who}", "models": ["claude-*"], "rpm_limit": 5})
    assert response.status_code == expected
    if expected == 201:
        assert response.json()["models"] == ["claude-*"] and response.json()["rpm_limit"] == 5


@pytest.mark.parametrize(("who", "expected"), [("operator", 200), ("alice", 403), ("carol", 403), ("dave", 404)])
def test_only_operators_change_a_teams_limits(cast, who, expected) -> None:
    assert send(cast[who], "patch", f"{TEAMS}{_team().pk}/", {"rpm_limit": 7}).status_code == expected


@pytest.mark.parametrize(
    ("who", "expected"), [("operator", 201), ("alice", 201), ("bob", 403), ("carol", 403), ("dave", 404)]
)
def test_team_admins_and_operators_add_members(cast, who, expected) -> None:
    response = send(cast[who], "post", f"{TEAMS}{_team().pk}/members/", {"user": "erin", "role": "viewer"})
    assert response.status_code == expected


def test_a_team_admin_changes_a_role_and_removes_a_member_with_events(cast) -> None:
    url = f"{TEAMS}{_team().pk}/members/carol/"
    assert send(cast["alice"], "patch", url, {"role": "member"}).json()["role"] == "member"
    assert send(cast["alice"], "delete", url).status_code == 204
    actions = list(_team().events.filter(actor=cast["alice"]).values_list("action", flat=True))
    assert sorted(actions) == ["member_removed", "role_changed"]


def test_adding_a_member_twice_is_a_409(cast) -> None:
    response = send(cast["alice"], "post", f"{TEAMS}{_team().pk}/members/", {"user": "bob"})
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("who", "expected"), [("operator", 201), ("alice", 201), ("bob", 201), ("carol", 403), ("dave", 400)]
)
def test_who_may_create_a_key_in_a_team(cast, who, expected) -> None:
    response = send(cast[who], "post", KEYS, {"name": "k", "models": ["gpt-4o"], "team": "search"})
    assert response.status_code == expected
    if expected == 201:
        assert response.json()["team"] == "search"
    if expected == 400:  # a team one cannot see does not exist
        assert "no team matches" in response.json()["team"][0]


def test_a_key_asking_for_models_outside_its_team_is_a_400_on_models(cast) -> None:
    response = send(cast["bob"], "post", KEYS, {"name": "k", "models": ["claude-*"], "team": "search"})
    assert response.status_code == 400 and "outside team search" in response.json()["models"][0]


@pytest.mark.parametrize(
    ("who", "see", "revoke"),
    [
        ("operator", 200, 200),
        ("alice", 200, 200),  # the team's admin
        ("bob", 200, 200),  # its owner, a member
        ("carol", 200, 403),  # a viewer reads, never changes
        ("dave", 404, 404),
        ("erin", 404, 404),
    ],
)
def test_who_may_see_and_revoke_a_teams_key(cast, who, see, revoke) -> None:
    key = _bobs_key()
    assert send(cast[who], "get", f"{KEYS}{key.public_id}/").status_code == see
    assert send(cast[who], "post", f"{KEYS}{key.public_id}/revoke/").status_code == revoke


def test_a_member_who_leaves_the_team_loses_its_keys(cast) -> None:
    key = _bobs_key()
    services.member_remove(team=_team(), user=cast["bob"])
    assert send(cast["bob"], "get", f"{KEYS}{key.public_id}/").status_code == 404


def test_keys_are_filtered_by_team(cast) -> None:
    _bobs_key()
    services.key_create(name="personal", model_patterns="*", owner=cast["alice"])
    names = lambda q: sorted(k["name"] for k in send(cast["alice"], "get", f"{KEYS}?{q}").json()["results"])  # noqa: E731
    assert names("team=search") == ["bob-search"]
    assert names("team=-") == ["personal"]
    assert names(f"team={_team().pk}") == ["bob-search"]


def test_a_team_shows_its_budget_spent_and_remaining(cast) -> None:
    from keys.models import UsageRecord

    key = _bobs_key()
    UsageRecord.objects.create(key=key, endpoint="chat", status_code=200, input_tokens=100, output_tokens=150)
    (bar,) = send(cast["carol"], "get", f"{TEAMS}{_team().pk}/").json()["budgets"]
    assert (bar["unit"], bar["limit"], bar["spent"], bar["remaining"], bar["percent"]) == (
        "tokens",
        "1000",
        "250",
        "750",
        25,
    )
    assert bar["resets_at"].endswith("T00:00:00+00:00")


# --- a management key scoped to one team ----------------------------------------------------------


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def team_key(cast) -> str:
    response = send(cast["alice"], "post", KEYS, {"name": "search-ci", "management": True, "team": "search"})
    assert response.status_code == 201, response.content
    return response.json()["key"]


def test_only_a_teams_admins_make_a_management_key_for_it(cast) -> None:
    response = send(cast["bob"], "post", KEYS, {"name": "m", "management": True, "team": "search"})
    assert response.status_code == 403


def test_a_teams_management_key_sees_and_manages_only_the_teams_keys(cast, team_key) -> None:
    bobs = _bobs_key()
    services.key_create(name="alice-personal", model_patterns="*", owner=cast["alice"])
    api = bearer(team_key)
    listed = sorted(k["name"] for k in api.get(KEYS).json()["results"])
    assert listed == ["bob-search", "search-ci"]
    made = api.post(KEYS, json.dumps({"name": "svc", "models": ["gpt-4o"]}), content_type="application/json")
    assert made.status_code == 201 and made.json()["team"] == "search" and made.json()["owner"] is None
    assert api.post(f"{KEYS}{bobs.public_id}/revoke/").status_code == 200
    personal = APIKey.objects.get(name="alice-personal")
    assert api.get(f"{KEYS}{personal.public_id}/").status_code == 404
    elsewhere = api.post(
        KEYS, json.dumps({"name": "x", "models": ["*"], "team": "other"}), content_type="application/json"
    )
    assert elsewhere.status_code == 400
    add = api.post(f"{TEAMS}{_team().pk}/members/", json.dumps({"user": "erin"}), content_type="application/json")
    assert add.status_code == 403
    assert api.post(TEAMS, json.dumps({"name": "mine"}), content_type="application/json").status_code == 403


def test_a_teams_management_key_stops_when_its_holder_no_longer_manages_the_team(cast, team_key) -> None:
    services.member_set_role(team=_team(), user=cast["alice"], role="member")
    assert bearer(team_key).get(KEYS).status_code == 403
