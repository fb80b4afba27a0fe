"""Who hears about an event: people by email, endpoints by webhook.

People: the key's owner (for an ownerless key, the user who minted it) — active, with an email
address, and not having muted that kind (:class:`notify.models.Preference`). Team admins join
here once teams exist: :func:`team_admins` is the one place to fill in (it returns nobody today).

Endpoints: every active operator endpoint (no owner) and the owner's own endpoints, for the kinds
they subscribed to.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from keys.models import APIKey
from notify.models import Event, Preference, WebhookEndpoint


def team_admins(key: APIKey) -> list[Any]:
    """The admins of the key's team. Teams do not exist yet: nobody. (When they do: the users
    with the admin role in ``key.team``.)"""
    return []


def people(event: Event) -> list[Any]:
    key = event.key
    if key is None:
        return []
    candidates = [key.owner if key.owner_id else key.minted_by, *team_admins(key)]
    seen: dict[int, Any] = {}
    for user in candidates:
        if user is not None and user.is_active and user.email and user.pk not in seen:
            seen[user.pk] = user
    muted = {
        pref.user_id for pref in Preference.objects.filter(user_id__in=seen) if event.kind in (pref.muted_kinds or [])
    }
    return [user for pk, user in seen.items() if pk not in muted]


def endpoints(event: Event) -> list[WebhookEndpoint]:
    owner_id = event.key.owner_id if event.key is not None else None
    scope = Q(owner__isnull=True) | (Q(owner_id=owner_id) if owner_id else Q(pk__in=[]))
    return [
        endpoint for endpoint in WebhookEndpoint.objects.filter(scope, is_active=True) if endpoint.wants(event.kind)
    ]
