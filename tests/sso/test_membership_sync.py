"""OIDC_TEAM_MAP applied at sign-in (sso/membership_sync.py): the mapped teams' memberships follow
the provider's groups. Runs where the key store has teams (issue #13); skipped before."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from sso import membership_sync
from sso.signin import apply_claims
from sso.teams import parse_team_map

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not membership_sync.teams_available(), reason="the key store has no teams yet (issue #13)"),
]

SSO = {
    "OIDC_ISSUER": "https://id.example.com",
    "OIDC_TEAM_MAP": parse_team_map("ml-admins=ML:admin,ml=ML:member,web=Web:viewer,ghosts=Nowhere:member"),
}


def _claims(*groups: str) -> dict[str, Any]:
    return {"sub": "u-42", "email": "dana@example.com", "email_verified": True, "groups": list(groups)}


def _roles(user: Any) -> dict[str, str]:
    from keys.models import Membership

    return {m.team.name: m.role for m in Membership.objects.filter(user=user).select_related("team")}


@pytest.fixture
def teams() -> None:
    from keys import services

    for name in ("ML", "Web", "Unmapped"):
        services.team_create(name=name)


@override_settings(**SSO)
def test_the_groups_set_the_mapped_memberships_and_losing_a_group_removes_it(teams: None) -> None:
    from keys import services

    dana = apply_claims(_claims("ml", "web", "ghosts"))
    assert _roles(dana) == {"ML": "member", "Web": "viewer"}  # "Nowhere" does not exist: logged
    services.member_add(team=services.find_team("Unmapped"), user=dana, role="admin")
    apply_claims(_claims("ml-admins", "ml"))
    assert _roles(dana) == {"ML": "admin", "Unmapped": "admin"}  # unmapped teams are left alone
    apply_claims(_claims())
    assert _roles(dana) == {"Unmapped": "admin"}


@override_settings(**SSO)
def test_each_change_is_audited_as_single_sign_on(teams: None) -> None:
    from keys.models import TeamEvent

    apply_claims(_claims("ml"))
    assert TeamEvent.objects.filter(actor_label="single sign-on").exists()
