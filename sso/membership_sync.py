"""OIDC_TEAM_MAP applied to team memberships: the receiver of :data:`sso.teams.sso_memberships`.

The teams named in OIDC_TEAM_MAP are *managed by the provider*: at every SSO sign-in the user's
membership of each of them is made exactly what their groups grant — added, re-roled or removed
through ``keys.services`` (``member_add`` / ``member_set_role`` / ``member_remove``, each audited
with "single sign-on" as the channel). Teams not named in the map are never touched, and a
mapped team that does not exist is logged, not created (operators create teams).

Connected by :class:`sso.apps.SSOConfig` only when the key store has teams (``keys.Team``,
``keys.Membership`` and the member services): until then, sign-in records the roles and stops.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.conf import settings

logger = logging.getLogger("keygate.sso")
VIA = "single sign-on"
_SERVICES = ("member_add", "member_remove", "member_set_role")


def teams_available() -> bool:
    """Does the key store have teams and the services that change memberships?"""
    try:
        apps.get_model("keys", "Team")
        apps.get_model("keys", "Membership")
    except LookupError:
        return False
    from keys import services

    return all(hasattr(services, name) for name in _SERVICES)


def sync_memberships(sender: Any, user: Any, groups: list[str], team_roles: dict[str, str], **kwargs: Any) -> None:
    """Make ``user``'s memberships of the mapped teams exactly ``team_roles``."""
    from keys import services

    team_model, membership_model = apps.get_model("keys", "Team"), apps.get_model("keys", "Membership")
    mapped = {grant.team for grant in settings.OIDC_TEAM_MAP}
    if not mapped:
        return
    teams = {team.name: team for team in team_model.objects.filter(name__in=mapped)}
    held = {
        membership.team.name: membership
        for membership in membership_model.objects.select_related("team").filter(user=user, team__name__in=mapped)
    }
    for name in sorted(mapped):
        team, wanted, membership = teams.get(name), team_roles.get(name), held.get(name)
        if team is None:
            if wanted:
                logger.warning("OIDC_TEAM_MAP names team %r, which does not exist: create it", name)
            continue
        if wanted and membership is None:
            services.member_add(team=team, user=user, role=wanted, via=VIA)
        elif wanted and membership.role != wanted:
            services.member_set_role(team=team, user=user, role=wanted, via=VIA)
        elif not wanted and membership is not None:
            services.member_remove(team=team, user=user, via=VIA)
