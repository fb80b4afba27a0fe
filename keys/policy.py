"""Who may do what with keys: the one policy the dashboard, the REST API, the admin and the CLI ask.

Everyone signed in (and active) may see and change their own keys. Operator powers follow
Django's model permissions on ``keys.APIKey`` — never ``is_staff`` alone (SECURITY.md, "Who may
do what"):

- ``keys.view_apikey`` (or ``keys.change_apikey``, which implies it, as in the admin): see every
  key, including ownerless (operator-owned) ones;
- ``keys.change_apikey``: change, rotate and revoke keys that are not one's own;
- ``keys.add_apikey``: create a key for someone else, or an ownerless key.

Superusers have every permission (Django's ``has_perm``). A key outside what a user may see does
not exist for them: callers answer 404, never 403. A key they may see but not change is a 403.

Teams (``keys.Team``, roles in ``keys.constants.TeamRole``) add powers, never take any away:

- operators: ``keys.view_team`` sees every team; ``keys.add_team`` creates teams;
  ``keys.change_team`` changes any team's models and limits and manages its members;
- a team's **admins** manage its members and every key in it (create, change, rotate, revoke);
- its **members** see its keys and create, change, rotate and revoke keys of their own in it;
- its **viewers** only read: the team, its keys (masked, as every key is) and its usage.

A team's models and limits are the platform's bound on what the team may spend, so only
operators change them. The owner of a key in a team holds owner powers over it only while they
are a member or admin of the team; leaving it (or becoming a viewer) leaves the key the team's.

An ownerless management key acts as :class:`MintedKeyUser`: with its minter's permissions,
checked on every request, never more. It stops working (``KeyState.inactive_reason`` →
``minter_inactive``) when the minter is disabled or loses ``keys.add_apikey``, the permission
that let them mint it. One made by the CLI has no minter: the CLI is run by whoever holds the
server's shell, database and secrets, so such a key holds every ``keys`` permission — and
nothing else.
"""

from __future__ import annotations

from typing import Any

VIEW_ALL = "keys.view_apikey"
CHANGE_ALL = "keys.change_apikey"
ADD_FOR_OTHERS = "keys.add_apikey"
KEY_PERMISSIONS = frozenset({VIEW_ALL, CHANGE_ALL, ADD_FOR_OTHERS})
# What a minter must keep for their ownerless management keys to keep working.
MINTER_PERMISSION = ADD_FOR_OTHERS
VIEW_TEAMS = "keys.view_team"
CHANGE_TEAMS = "keys.change_team"
ADD_TEAMS = "keys.add_team"
TEAM_PERMISSIONS = frozenset({VIEW_TEAMS, CHANGE_TEAMS, ADD_TEAMS})
ADMIN, MEMBER, VIEWER = "admin", "member", "viewer"  # keys.constants.TeamRole values
_ROLES_CACHE = "_keygate_team_roles"


def is_signed_in(user: Any) -> bool:
    """An authenticated, active user (or key identity)."""
    return user is not None and bool(getattr(user, "is_authenticated", False)) and bool(user.is_active)


def _has(user: Any, permission: str) -> bool:
    return is_signed_in(user) and user.has_perm(permission)


def can_view_all_keys(user: Any) -> bool:
    """May ``user`` see every key (others' and ownerless ones)?"""
    return _has(user, VIEW_ALL) or _has(user, CHANGE_ALL)


def can_change_all_keys(user: Any) -> bool:
    """May ``user`` change, rotate and revoke keys that are not their own?"""
    return _has(user, CHANGE_ALL)


def can_create_for_others(user: Any) -> bool:
    """May ``user`` choose a key's owner (another user, or none)?"""
    return _has(user, ADD_FOR_OTHERS)


def team_roles(user: Any) -> dict[int, str]:
    """``{team id: role}`` of ``user``'s memberships, read once per user object (a request)."""
    fixed = getattr(user, "keygate_team_roles", None)
    if fixed is not None:  # a management key scoped to one team (TeamKeyUser)
        return fixed if is_signed_in(user) else {}
    if not is_signed_in(user) or user.pk is None:
        return {}
    roles = getattr(user, _ROLES_CACHE, None)
    if roles is None:
        from keys.models import Membership

        roles = dict(Membership.objects.filter(user_id=user.pk).values_list("team_id", "role"))
        try:
            setattr(user, _ROLES_CACHE, roles)
        except AttributeError:  # an identity that takes no attributes: read each time
            pass
    return roles


def forget_roles(user: Any) -> None:
    """Drop the roles read for ``user`` (after a membership change in the same request)."""
    if hasattr(user, _ROLES_CACHE):
        delattr(user, _ROLES_CACHE)


def role_in(user: Any, team_id: int | None) -> str | None:
    return team_roles(user).get(team_id) if team_id is not None else None


def can_view_all_teams(user: Any) -> bool:
    return _has(user, VIEW_TEAMS) or _has(user, CHANGE_TEAMS)


def can_change_all_teams(user: Any) -> bool:
    return _has(user, CHANGE_TEAMS)


def can_create_team(user: Any) -> bool:
    return _has(user, ADD_TEAMS)


def can_view_team(user: Any, team: Any) -> bool:
    return can_view_all_teams(user) or role_in(user, team.pk) is not None


def can_change_team(user: Any, team: Any) -> bool:
    """May ``user`` change ``team``'s name, models and limits? (Operators only.)"""
    return can_change_all_teams(user)


def can_manage_members(user: Any, team: Any) -> bool:
    """Operators, and the team's admins (people: a team's management key manages keys only)."""
    return can_change_all_teams(user) or (user.pk is not None and role_in(user, team.pk) == ADMIN)


def can_create_management_key_in(user: Any, team: Any) -> bool:
    """May ``user`` make a management key scoped to ``team``? (It acts as an admin of the
    team's keys: only those who manage the team may.)"""
    return can_create_for_others(user) or can_manage_members(user, team)


def can_create_key_in(user: Any, team: Any) -> bool:
    """May ``user`` create a key (of their own) in ``team``?"""
    return can_create_for_others(user) or role_in(user, team.pk) in (ADMIN, MEMBER)


def owns(user: Any, key: Any) -> bool:
    """Is ``key`` ``user``'s own? (An identity without a database row owns nothing; a team key is
    its owner's only while they are a member or admin of the team.)"""
    if not (is_signed_in(user) and user.pk is not None and key.owner_id == user.pk):
        return False
    return key.team_id is None or role_in(user, key.team_id) in (ADMIN, MEMBER)


def can_view_key(user: Any, key: Any) -> bool:
    return owns(user, key) or can_view_all_keys(user) or role_in(user, key.team_id) is not None


def can_change_key(user: Any, key: Any) -> bool:
    """May ``user`` edit, rotate or revoke ``key``?"""
    return owns(user, key) or can_change_all_keys(user) or role_in(user, key.team_id) == ADMIN


def minter_may_act(minter: Any, team_id: int | None = None) -> bool:
    """Does an ownerless management key minted by ``minter`` still work? (None: made by the CLI.)
    One scoped to a team also works while its minter still manages that team."""
    if minter is None or _has(minter, MINTER_PERMISSION):
        return True
    return team_id is not None and (_has(minter, CHANGE_TEAMS) or role_in(minter, team_id) == ADMIN)


class MintedKeyUser:
    """The identity of an ownerless management key on the REST API.

    Not a database user (``pk`` is None, so it owns no key and writes record no actor; their
    ``via`` names the key). Its permissions are its minter's, looked up at each request; a
    CLI-made key (no minter) holds every ``keys`` permission.
    """

    pk = None
    id = None
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True
    username = ""

    def __init__(self, minter: Any = None) -> None:
        self.minter = minter

    @property
    def is_active(self) -> bool:
        return minter_may_act(self.minter)

    def has_perm(self, permission: str, obj: Any = None) -> bool:
        if permission not in KEY_PERMISSIONS | TEAM_PERMISSIONS:
            return False
        if self.minter is None:
            return True
        return _has(self.minter, permission)

    def get_username(self) -> str:
        return ""

    def __str__(self) -> str:
        return "operator key"


class TeamKeyUser:
    """The identity of a management key scoped to one team on the REST API: an admin of that
    team's keys (it sees, creates, changes, rotates and revokes them) and nothing else — no
    operator permission, no personal keys, no other team, no member management. It works while
    its holder (owner, or minter) is active and still an admin of the team (or an operator)."""

    pk = None
    id = None
    is_staff = False
    is_superuser = False
    is_anonymous = False
    is_authenticated = True
    username = ""

    def __init__(self, team_id: int, holder: Any = None) -> None:
        self.team_id = team_id
        self.holder = holder
        self.keygate_team_roles = {team_id: ADMIN}

    @property
    def is_active(self) -> bool:
        """The holder is active and still manages the team (or may make keys for others)."""
        holder = self.holder
        return holder is None or (bool(holder.is_active) and minter_may_act(holder, self.team_id))

    @property
    def minter(self) -> Any:
        return self.holder

    def has_perm(self, permission: str, obj: Any = None) -> bool:
        return False

    def get_username(self) -> str:
        return ""

    def __str__(self) -> str:
        return "team key"


def acting_user(user: Any, state: Any) -> Any:
    """Who a REST API request acts as: ``user``, unless ``state`` (a ``KeyState``) is a
    management key scoped to a team (a :class:`TeamKeyUser`) or an ownerless management key
    (a :class:`MintedKeyUser` for its minter)."""
    if getattr(state, "is_management", False) and getattr(state, "team", None) is not None:
        from django.contrib.auth import get_user_model

        holder_id = state.owner_id or state.minted_by_id
        holder = get_user_model().objects.filter(pk=holder_id).first() if holder_id else None
        return TeamKeyUser(state.team.id, holder)
    if not getattr(state, "is_management", False) or state.owner_id is not None:
        return user
    if state.minted_by_id is None:
        return MintedKeyUser(None)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    # A minter that no longer exists (PROTECT makes this a race at most) may do nothing.
    return MintedKeyUser(get_user_model().objects.filter(pk=state.minted_by_id).first() or AnonymousUser())
