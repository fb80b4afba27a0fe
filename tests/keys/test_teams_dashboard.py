"""Team pages and teams on key pages (dashboard): who may do what (keys.policy), as a table.

The cast as in test_teams_api: an operator; in team "search" alice (admin), bob (member),
carol (viewer); dave is admin of another team; erin is in no team.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from keys import services
from keys.models import APIKey, Team, UsageRecord
from tests.keys.test_teams_api import cast  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _team() -> Team:
    return Team.objects.get(name="search")


def _bobs_key() -> APIKey:
    return services.key_create(
        name="bob-search", model_patterns="gpt-4o", team=_team(), owner=User.objects.get(username="bob")
    )[0]


@pytest.mark.parametrize(
    ("who", "expected"),
    [("operator", 200), ("alice", 200), ("bob", 200), ("carol", 200), ("dave", 404), ("erin", 404)],
)
def test_who_may_see_a_team_page(cast, who, expected) -> None:  # noqa: F811
    assert client(cast[who]).get(f"/teams/{_team().pk}/").status_code == expected


@pytest.mark.parametrize(
    ("who", "expected"), [("operator", 302), ("alice", 302), ("bob", 403), ("carol", 403), ("dave", 404)]
)
def test_who_may_add_a_member_on_the_team_page(cast, who, expected) -> None:  # noqa: F811
    response = client(cast[who]).post(f"/teams/{_team().pk}/members", {"username": "erin", "role": "viewer"})
    assert response.status_code == expected
    assert _team().memberships.filter(user__username="erin").exists() is (expected == 302)


def test_a_team_admin_changes_a_role_and_removes_a_member_on_the_page(cast) -> None:  # noqa: F811
    url = f"/teams/{_team().pk}/members/{cast['carol'].pk}"
    as_alice = client(cast["alice"])
    as_alice.post(url, {f"m{cast['carol'].pk}-role": "member"})
    assert _team().memberships.get(user=cast["carol"]).role == "member"
    as_alice.post(url, {"remove": "1"})
    assert not _team().memberships.filter(user=cast["carol"]).exists()


@pytest.mark.parametrize(
    ("who", "see", "revoke"),
    [("alice", 200, 302), ("bob", 200, 302), ("carol", 200, 403), ("dave", 404, 404), ("erin", 404, 404)],
)
def test_who_may_see_and_revoke_a_teams_key_on_the_dashboard(cast, who, see, revoke) -> None:  # noqa: F811
    key = _bobs_key()
    c = client(cast[who])
    assert c.get(f"/keys/{key.public_id}/").status_code == see
    assert c.post(f"/keys/{key.public_id}/revoke").status_code == revoke


def test_a_viewer_sees_the_teams_keys_masked_and_no_change_controls(cast) -> None:  # noqa: F811
    key = _bobs_key()
    page = client(cast["carol"]).get(f"/teams/{_team().pk}/").content.decode()
    assert key.masked in page and "Add member" not in page and "Create key in this team" not in page


def test_the_team_page_shows_members_roles_and_the_budget_spent_this_period(cast) -> None:  # noqa: F811
    key = _bobs_key()
    UsageRecord.objects.create(key=key, endpoint="chat", status_code=200, input_tokens=100, output_tokens=150)
    page = client(cast["alice"]).get(f"/teams/{_team().pk}/").content.decode()
    assert "250 of 1000 tokens spent, 750 left" in page and 'value="25"' in page
    assert "Resets" in page and "Add member" in page
    for name in ("alice", "bob", "carol"):
        assert name in page


def test_a_key_page_shows_its_team_and_the_teams_budget(cast) -> None:  # noqa: F811
    key = _bobs_key()
    page = client(cast["bob"]).get(f"/keys/{key.public_id}/").content.decode()
    assert "search" in page and "Team budget this period" in page and "0 of 1000 tokens spent" in page


def test_a_key_page_shows_spent_and_remaining_of_its_own_budget(alice) -> None:
    key, _ = services.key_create(name="k", model_patterns="*", owner=alice, budget_usd="10", budget_period="month")
    UsageRecord.objects.create(key=key, endpoint="chat", status_code=200, cost_usd="2.5")
    page = client(alice).get(f"/keys/{key.public_id}/").content.decode()
    assert "$2.5000 of $10.0000 spent, $7.5000 left" in page


def test_the_create_form_offers_the_teams_one_may_create_keys_in(cast) -> None:  # noqa: F811
    assert "search" in client(cast["bob"]).get("/keys/new").content.decode()
    assert 'name="team"' not in client(cast["carol"]).get("/keys/new").content.decode()  # a viewer only
    assert 'name="team"' not in client(cast["erin"]).get("/keys/new").content.decode()


def _create(user: User, **fields):
    c = client(user)
    form = c.get("/keys/new").content.decode()
    once = form.split('name="once" value="')[1].split('"')[0]
    data = {"name": "t", "patterns": "gpt-4o", "expiry": "never", "team": _team().pk, "once": once, **fields}
    return c.post("/keys/new", data)


def test_a_member_creates_a_key_in_the_team_from_the_form(cast) -> None:  # noqa: F811
    assert _create(cast["bob"]).status_code == 200
    key = APIKey.objects.get(name="t")
    assert key.team == _team() and key.owner == cast["bob"]


def test_the_form_refuses_models_outside_the_team_on_the_models_field(cast) -> None:  # noqa: F811
    page = _create(cast["bob"], patterns="claude-*").content.decode()
    assert "outside team search" in page and not APIKey.objects.filter(name="t").exists()


def test_a_viewer_cannot_post_a_team_key(cast) -> None:  # noqa: F811
    _create(cast["carol"])  # the form has no team field for her: at most a personal key
    assert not APIKey.objects.filter(team=_team()).exists()


def test_the_team_list_shows_only_ones_teams(cast) -> None:  # noqa: F811
    assert "search" in client(cast["carol"]).get("/teams/").content.decode()
    page = client(cast["erin"]).get("/teams/").content.decode()
    assert "search" not in page and "You are in no team" in page


def test_a_viewer_gets_no_change_buttons_on_a_teams_key_page(cast) -> None:  # noqa: F811
    key = _bobs_key()
    page = client(cast["carol"]).get(f"/keys/{key.public_id}/").content.decode()
    assert key.masked in page and f"/keys/{key.public_id}/revoke" not in page
    assert f"/keys/{key.public_id}/revoke" in client(cast["alice"]).get(f"/keys/{key.public_id}/").content.decode()


def test_the_team_page_shows_usage_by_key_and_model_and_its_keys_events(cast) -> None:  # noqa: F811
    key = _bobs_key()
    UsageRecord.objects.create(key=key, endpoint="chat", model="gpt-4o", status_code=200, cost_usd="1.25")
    page = client(cast["carol"]).get(f"/teams/{_team().pk}/?days=7").content.decode()
    assert "By key" in page and "bob-search" in page and "1.2500" in page
    assert "Key bob-search: created" in page


def test_the_key_list_names_each_keys_team(cast) -> None:  # noqa: F811
    _bobs_key()
    page = client(cast["carol"]).get("/").content.decode()
    assert "bob-search" in page and f'href="/teams/{_team().pk}/"' in page


@pytest.mark.parametrize(("who", "expected"), [("operator", 302), ("alice", 403), ("erin", 403)])
def test_only_operators_create_a_team_on_the_dashboard(cast, who, expected) -> None:  # noqa: F811
    data = {"name": f"new-{who}", "patterns": "gpt-*", "budget_tokens": "100", "budget_period": "day"}
    assert client(cast[who]).post("/teams/new", data).status_code == expected
    assert Team.objects.filter(name=f"new-{who}").exists() is (expected == 302)


@pytest.mark.parametrize(("who", "expected"), [("operator", 302), ("alice", 403), ("dave", 404)])
def test_only_operators_change_a_teams_limits_on_the_dashboard(cast, who, expected) -> None:  # noqa: F811
    data = {"name": "search", "patterns": "gpt-*", "rpm_limit": "42", "budget_tokens": "1000", "budget_period": "day"}
    assert client(cast[who]).post(f"/teams/{_team().pk}/edit", data).status_code == expected
    assert (_team().rpm_limit == 42) is (expected == 302)


def test_a_bad_team_pattern_is_shown_on_the_models_field(cast) -> None:  # noqa: F811
    page = client(cast["operator"]).post("/teams/new", {"name": "x", "patterns": "gpt 4"}).content.decode()
    assert "invalid model pattern" in page and not Team.objects.filter(name="x").exists()
