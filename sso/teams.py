"""OIDC groups → team roles (``OIDC_TEAM_MAP``) and the hook where team membership sync plugs in.

``OIDC_TEAM_MAP`` is a comma-separated list of ``group=team:role``, e.g.
``keygate-ml-admins=ml:admin,keygate-ml=ml:member``: a user in the provider's group ``group``
gets ``role`` (admin, member or viewer) in the team named ``team`` (a team's name is unique; it
may hold spaces, not ``,`` ``=`` or ``:``). A user in several
mapped groups gets the strongest role per team. Parsing is strict: a malformed entry stops
start-up (config/settings.py), it is never skipped.

Teams are not in this app: at every SSO sign-in :func:`sso.signin.apply_claims` sends
:data:`sso_memberships` with the roles the provider's groups grant *now* (an empty dict when
none), inside the sign-in's transaction. :func:`sso.membership_sync.sync_memberships` receives it
and makes the user's memberships of mapped teams exactly that — so losing a group removes the
membership at the next sign-in. It is connected only when the key store has teams; without them
the roles are computed, recorded on the identity, and nothing else happens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.dispatch import Signal

ROLES = ("viewer", "member", "admin")  # weakest first: the strongest one a user holds wins
_NAME = re.compile(r"^[^,=:]+$")

#: Sent at every SSO sign-in with ``user``, ``groups`` (list of str) and ``team_roles``
#: (dict team name → role, from OIDC_TEAM_MAP; teams not mapped for this user are absent).
sso_memberships = Signal()


@dataclass(frozen=True, slots=True)
class TeamGrant:
    """Membership of ``group`` at the provider grants ``role`` in team ``team``."""

    group: str
    team: str
    role: str


def parse_team_map(text: str) -> tuple[TeamGrant, ...]:
    """``"g1=team:role,g2=team:role"`` → grants. Raises ValueError naming the bad entry."""
    grants: list[TeamGrant] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        group, equals, target = entry.partition("=")
        team, colon, role = target.partition(":")
        group, team, role = group.strip(), team.strip(), role.strip().lower()
        if not equals or not colon or not group or not _NAME.match(team) or role not in ROLES:
            raise ValueError(f"{entry!r} is not group=team:role (role one of {', '.join(ROLES)})")
        grants.append(TeamGrant(group, team, role))
    return tuple(grants)


def team_roles(groups: Iterable[str], grants: Iterable[TeamGrant]) -> dict[str, str]:
    """The role per team that ``groups`` grant (the strongest when several do)."""
    held = set(groups)
    roles: dict[str, str] = {}
    for grant in grants:
        if grant.group not in held:
            continue
        current = roles.get(grant.team)
        if current is None or ROLES.index(grant.role) > ROLES.index(current):
            roles[grant.team] = grant.role
    return roles
