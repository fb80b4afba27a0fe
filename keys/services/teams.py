"""Every write to a team: create, update (name, description, models, limits) and membership
(add, remove, change role). Each writes one :class:`~keys.models.TeamEvent` (actor, via, IP).

A team's models and limits are part of every one of its keys' state, so a change announces
each of the team's keys through :data:`keys.signals.key_changed` after commit: gateway caches
drop them at once in this process and, through Redis, in the others (docs/architecture.md).
Membership changes touch no key's state (roles matter to people, not to the gateway).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from keys.constants import TeamAction, TeamRole
from keys.limits import LIMIT_FIELDS
from keys.models import APIKey, Membership, Team, TeamEvent
from keys.services.validation import Conflict, KeyServiceError, clean_limits, clean_model_patterns, clean_name
from keys.signals import key_changed

TEAM_FIELDS = frozenset({"name", "description", "model_patterns", *LIMIT_FIELDS})


def _record(
    team: Team, action: str, *, actor: AbstractBaseUser | None, via: str, ip: str | None, **details: Any
) -> None:
    TeamEvent.objects.create(
        team=team,
        action=action,
        actor=actor if actor is not None and actor.is_authenticated and actor.pk is not None else None,
        actor_label=via[:64],
        ip=ip or None,
        details=details,
    )


def _announce_keys(team: Team) -> None:
    keys = list(APIKey.objects.filter(team=team).values_list("pk", "public_id"))

    def send() -> None:
        for key_id, public_id in keys:
            key_changed.send(sender=APIKey, key_id=key_id, public_id=public_id)

    transaction.on_commit(send)


def _clean(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - TEAM_FIELDS
    if unknown:
        raise KeyServiceError(_("these fields cannot be changed: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    cleaned: dict[str, Any] = {}
    if "name" in changes:
        cleaned["name"] = clean_name(changes["name"])
    if "description" in changes:
        cleaned["description"] = changes["description"] or ""
    if "model_patterns" in changes:
        cleaned["model_patterns"] = clean_model_patterns(changes["model_patterns"])
    cleaned.update(clean_limits(changes))
    return cleaned


def team_create(
    *,
    name: str,
    model_patterns: str | list[str] = "*",
    description: str = "",
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
    **limits: Any,
) -> Team:
    """Create a team (models ``*`` unless given; limits optional). A taken name is a :class:`Conflict`."""
    values = _clean({"name": name, "description": description, "model_patterns": model_patterns, **limits})
    try:
        with transaction.atomic():
            team = Team.objects.create(**values)
            _record(team, TeamAction.CREATED, actor=actor, via=via, ip=ip, name=team.name)
    except IntegrityError:
        raise Conflict(_("a team named %(name)r exists already") % {"name": values["name"]}, field="name") from None
    return team


def team_update(
    *, team: Team, actor: AbstractBaseUser | None = None, via: str = "", ip: str | None = None, **changes: Any
) -> Team:
    """Change a team's name, description, models or limits; only changed fields are written.

    Narrowing the team's models narrows its keys at once (both must allow a model), without
    rewriting the keys' own patterns.
    """
    cleaned = _clean(changes)
    try:
        with transaction.atomic():
            locked = Team.objects.select_for_update().get(pk=team.pk)
            changed = {name: value for name, value in cleaned.items() if getattr(locked, name) != value}
            if not changed:
                return locked
            for name, value in changed.items():
                setattr(locked, name, value)
            locked.save(update_fields=list(changed))
            _record(locked, TeamAction.UPDATED, actor=actor, via=via, ip=ip, fields=sorted(changed))
            _announce_keys(locked)
    except IntegrityError:
        taken = cleaned.get("name")
        raise Conflict(_("a team named %(name)r exists already") % {"name": taken}, field="name") from None
    team.refresh_from_db()
    return team


def _role(role: str) -> str:
    if role not in TeamRole.values:
        raise KeyServiceError(
            _("role must be one of %(choices)s") % {"choices": ", ".join(TeamRole.values)}, field="role"
        )
    return role


def member_add(
    *,
    team: Team,
    user: AbstractBaseUser,
    role: str = TeamRole.MEMBER,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
) -> Membership:
    """Add ``user`` to ``team`` with ``role``; one already in it is a :class:`Conflict`."""
    role = _role(role)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=user, role=role)
            _record(team, TeamAction.MEMBER_ADDED, actor=actor, via=via, ip=ip, user=user.get_username(), role=role)
    except IntegrityError:
        raise Conflict(
            _("%(user)s is already in team %(team)s") % {"user": user.get_username(), "team": team.name}, field="user"
        ) from None
    return membership


def _membership(team: Team, user: AbstractBaseUser) -> Membership:
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        raise KeyServiceError(
            _("%(user)s is not in team %(team)s") % {"user": user.get_username(), "team": team.name}, field="user"
        )
    return membership


def member_remove(
    *,
    team: Team,
    user: AbstractBaseUser,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
) -> None:
    """Take ``user`` out of ``team``. Keys they made in the team stay the team's (and keep
    working); they lose every power over them that came from the team."""
    with transaction.atomic():
        membership = _membership(team, user)
        role = membership.role
        membership.delete()
        _record(team, TeamAction.MEMBER_REMOVED, actor=actor, via=via, ip=ip, user=user.get_username(), role=role)


def member_set_role(
    *,
    team: Team,
    user: AbstractBaseUser,
    role: str,
    actor: AbstractBaseUser | None = None,
    via: str = "",
    ip: str | None = None,
) -> Membership:
    """Change ``user``'s role in ``team`` (nothing is written when it is the same)."""
    role = _role(role)
    with transaction.atomic():
        membership = _membership(team, user)
        if membership.role == role:
            return membership
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        _record(
            team, TeamAction.ROLE_CHANGED, actor=actor, via=via, ip=ip, user=user.get_username(), role=role, was=before
        )
    return membership


def find_team(identifier: str | int) -> Team:
    """The team named ``identifier`` (its name, or its numeric id)."""
    text = str(identifier).strip()
    team = Team.objects.filter(name=text).first()
    if team is None and text.isdigit():
        team = Team.objects.filter(pk=int(text)).first()
    if team is None:
        raise KeyServiceError(_("no team matches %(id)r") % {"id": text}, field="team")
    return team
