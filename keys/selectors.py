"""Reads of the key store shared by the dashboard and the REST API: who may see which keys.

The one rule, decided by :mod:`keys.policy`: users with ``keys.view_apikey`` (or superusers)
see every key, including operator-owned keys (``owner=None``); everyone else — ``is_staff`` or
not — sees their own personal keys and every key of the teams they are in (any role). A key
outside a user's scope does not exist for them, so
views answer 404, never 403 — a 403 would confirm that the id is real.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from keys import policy
from keys.constants import EXPIRING_SOON, KeyStatus
from keys.models import APIKey, Team
from keys.services import model_allowed


def visible_keys(user: Any) -> QuerySet[APIKey]:
    """The keys ``user`` may see and act on (none for an anonymous or inactive user)."""
    keys = APIKey.objects.select_related("owner", "team", "rotated_from", "rotated_to")
    if not policy.is_signed_in(user):
        return keys.none()
    if policy.can_view_all_keys(user):
        return keys
    teams = list(policy.team_roles(user))
    if user.pk is None:  # a key identity owns nothing; one scoped to a team sees that team's keys
        return keys.filter(team_id__in=teams)
    return keys.filter(Q(owner_id=user.pk, team__isnull=True) | Q(team_id__in=teams))


def visible_teams(user: Any) -> QuerySet[Team]:
    """The teams ``user`` may see: every team for operators, else the teams they are in."""
    teams = Team.objects.all()
    if not policy.is_signed_in(user):
        return teams.none()
    if policy.can_view_all_teams(user):
        return teams
    return teams.filter(pk__in=list(policy.team_roles(user)))


def filter_status(keys: QuerySet[APIKey], status: str, *, now: datetime | None = None) -> QuerySet[APIKey]:
    """Keys in one :class:`~keys.constants.KeyStatus` (an unknown status filters nothing)."""
    now = now or timezone.now()
    live = Q(revoked_at__isnull=True)
    working = Q(revoked_at__isnull=True, paused_at__isnull=True)
    match status:
        case KeyStatus.REVOKED:
            return keys.filter(revoked_at__isnull=False)
        case KeyStatus.EXPIRED:
            return keys.filter(live, expires_at__lte=now)
        case KeyStatus.PAUSED:
            return keys.filter(live, paused_at__isnull=False).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        case KeyStatus.EXPIRING:
            return keys.filter(working, expires_at__gt=now, expires_at__lte=now + EXPIRING_SOON)
        case KeyStatus.ACTIVE:
            return keys.filter(working).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now + EXPIRING_SOON))
        case "usable":  # active or expiring: what still works
            return keys.filter(working).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return keys


def filter_model(keys: QuerySet[APIKey], model: str) -> QuerySet[APIKey]:
    """Keys whose patterns allow ``model`` (``gpt-4o`` matches a key scoped to ``gpt-*``).

    Patterns are globs, so this matches in Python over the (already narrowed) key ids.
    """
    allowed = [pk for pk, patterns in keys.values_list("pk", "model_patterns") if model_allowed(patterns, model)]
    return keys.filter(pk__in=allowed)
