"""The teams admin: every write through keys.services (one TeamEvent each, via "admin")."""

from __future__ import annotations

import pytest
from django.test import Client

from keys import services
from keys.models import Team

pytestmark = pytest.mark.django_db


def _inline(**rows) -> dict:
    data = {
        "memberships-TOTAL_FORMS": str(len(rows.get("forms", []))),
        "memberships-INITIAL_FORMS": str(rows.get("initial", 0)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, form in enumerate(rows.get("forms", [])):
        data.update({f"memberships-{i}-{name}": value for name, value in form.items()})
    return data


def test_an_operator_creates_a_team_with_a_member_in_the_admin(operator, alice) -> None:
    c = Client()
    c.force_login(operator)
    data = {
        "name": "search",
        "description": "",
        "patterns": "gpt-*, claude-*",
        "budget_tokens": "5000",
        "budget_period": "day",
        "allowed_ips": "",
        **_inline(forms=[{"user": str(alice.pk), "role": "admin", "team": ""}]),
    }
    response = c.post("/admin/keys/team/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    team = Team.objects.get(name="search")
    assert team.model_patterns == ["gpt-*", "claude-*"] and team.budget_tokens == 5000
    assert team.memberships.get().user == alice
    assert [(e.action, e.actor_label) for e in team.events.order_by("id")] == [
        ("created", "admin"),
        ("member_added", "admin"),
    ]


def test_a_bad_pattern_in_the_admin_is_refused_with_the_services_message(operator) -> None:
    c = Client()
    c.force_login(operator)
    data = {"name": "bad", "patterns": "gpt 4", "budget_period": "", "allowed_ips": "", **_inline()}
    response = c.post("/admin/keys/team/add/", data, follow=True)
    assert not Team.objects.filter(name="bad").exists()
    assert "invalid model pattern" in response.content.decode()


def test_the_admin_changes_a_teams_limits_through_the_services(operator) -> None:
    team = services.team_create(name="t")
    c = Client()
    c.force_login(operator)
    data = {"name": "t", "patterns": "*", "rpm_limit": "9", "budget_period": "", "allowed_ips": "", **_inline()}
    assert c.post(f"/admin/keys/team/{team.pk}/change/", data).status_code == 302
    team.refresh_from_db()
    assert team.rpm_limit == 9
    assert team.events.filter(action="updated").get().details == {"fields": ["rpm_limit"]}


def test_an_operator_creates_a_team_key_in_the_admin_inside_the_teams_models(operator) -> None:
    from keys.models import APIKey

    team = services.team_create(name="search", model_patterns="gpt-*")
    c = Client()
    c.force_login(operator)
    base = {"name": "k", "team": str(team.pk), "budget_period": "", "allowed_ips": ""}
    refused = c.post("/admin/keys/apikey/add/", {**base, "model_patterns": "claude-*"})
    assert "outside team search" in refused.content.decode() and not APIKey.objects.exists()
    made = c.post("/admin/keys/apikey/add/", {**base, "model_patterns": "gpt-4o"})
    assert made.status_code == 200 and APIKey.objects.get().team == team
    assert "search" in c.get("/admin/keys/apikey/").content.decode()
