"""Who hears about an event: people by email, endpoints by webhook.

People: the key's owner (for an ownerless key, the user who minted it) and the admins of the
key's team; for an upstream's outage (``provider.*``), the operators who may change providers —
active, with an email address, and not having muted that kind (:class:`notify.models.Preference`).
A team's budget events go to the team's admins. (Where the key store has no teams,
:func:`team_admins` finds nobody.)

Endpoints: every active global endpoint (no owner), the key owner's and the team admins' own
endpoints, for the kinds they subscribed to.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Q

from notify.models import Event, Preference, WebhookEndpoint


def team_admins(team_id: int | None) -> list[Any]:
    """The users with the admin role in team ``team_id`` (nobody without teams)."""
    if not team_id:
        return []
    try:
        membership_model = apps.get_model("keys", "Membership")
    except LookupError:
        return []
    return [m.user for m in membership_model.objects.select_related("user").filter(team_id=team_id, role="admin")]


def provider_operators() -> list[Any]:
    """The operators who run the upstreams: superusers and whoever may change providers."""
    from django.contrib.auth import get_user_model

    may_change = {"permissions__codename": "change_provider", "permissions__content_type__app_label": "gateway"}
    return list(
        get_user_model()
        .objects.filter(
            Q(is_superuser=True)
            | Q(**{f"user_{name}": value for name, value in may_change.items()})
            | Q(**{f"groups__{name}": value for name, value in may_change.items()})
        )
        .distinct()
    )


def people(event: Event) -> list[Any]:
    key = event.key
    if event.kind.startswith("provider."):
        candidates = provider_operators()
    elif key is not None:
        candidates = [key.owner if key.owner_id else key.minted_by, *team_admins(_team_id(event))]
    else:
        candidates = team_admins(_team_id(event))
    seen: dict[int, Any] = {}
    for user in candidates:
        if user is not None and user.is_active and user.email and user.pk not in seen:
            seen[user.pk] = user
    muted = {
        pref.user_id for pref in Preference.objects.filter(user_id__in=seen) if event.kind in (pref.muted_kinds or [])
    }
    return [user for pk, user in seen.items() if pk not in muted]


def _team_id(event: Event) -> int | None:
    if event.key is not None:
        return getattr(event.key, "team_id", None)
    return (event.data.get("team") or {}).get("id")


def endpoints(event: Event) -> list[WebhookEndpoint]:
    """Global endpoints, the key owner's, and those of the admins of the team concerned."""
    owners = {user.pk for user in team_admins(_team_id(event))}
    if event.key is not None and event.key.owner_id:
        owners.add(event.key.owner_id)
    scope = Q(owner__isnull=True) | Q(owner_id__in=owners)
    return [
        endpoint for endpoint in WebhookEndpoint.objects.filter(scope, is_active=True) if endpoint.wants(event.kind)
    ]
