"""Team admins hear about their team's keys and budgets (notify/recipients.py, scan_team_budgets).
Runs where the key store has teams (issue #13); skipped before."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from keys import services
from keys.models import UsageRecord
from notify import events
from notify.management.commands.notify import one_pass
from notify.models import Delivery, Event, Kind


def _has_teams() -> bool:
    try:
        apps.get_model("keys", "Team")
    except LookupError:
        return False
    return True


pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not _has_teams(), reason="no teams yet (issue #13)")]


@pytest.fixture
def ml(alice, bob):  # bob is the ML team's admin, alice a member
    team = services.team_create(name="ML", budget_usd=Decimal("100"), budget_period="month")
    services.member_add(team=team, user=bob, role="admin")
    services.member_add(team=team, user=alice, role="member")
    return team


def test_the_team_admin_is_told_when_a_key_of_the_team_is_revoked(alice, bob, ml) -> None:
    key, _raw = services.key_create(name="shared", model_patterns="*", owner=alice, team=ml)
    services.key_revoke(key=key)
    one_pass(scan=False)
    told = Delivery.objects.filter(event__kind=Kind.KEY_REVOKED, channel="email")
    assert sorted(d.user.username for d in told) == ["alice", "bob"]


def test_a_team_budget_warns_its_admins_once_per_period(alice, bob, ml) -> None:
    key, _raw = services.key_create(name="shared", model_patterns="*", owner=alice, team=ml)
    UsageRecord.objects.create(key=key, endpoint="chat", model="gpt-4o", status_code=200, cost_usd=Decimal("85"))
    assert events.scan_team_budgets(timezone.now()) == 1
    assert events.scan_team_budgets(timezone.now()) == 0
    [warning] = Event.objects.filter(kind=Kind.TEAM_BUDGET_WARNING)
    assert warning.data["team"] == {"id": ml.pk, "name": "ML"} and warning.key is None
    one_pass(scan=False)
    assert [d.user.username for d in Delivery.objects.filter(event=warning)] == ["bob"]
