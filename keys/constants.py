"""Constants of the key domain."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from keys.limits import LIMIT_FIELDS

EXPIRING_SOON = timedelta(days=7)


class KeyStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    EXPIRING = "expiring", _("expiring")
    EXPIRED = "expired", _("expired")
    PAUSED = "paused", _("paused")
    REVOKED = "revoked", _("revoked")


class KeyAction(models.TextChoices):
    CREATED = "created", _("created")
    ROTATED = "rotated", _("rotated")
    REVOKED = "revoked", _("revoked")
    UPDATED = "updated", _("updated")
    REPLACED = "replaced", _("replaced")
    PAUSED = "paused", _("paused")
    RESUMED = "resumed", _("resumed")


class TeamRole(models.TextChoices):
    """A member's role in a team: admins manage its keys and members; members create keys for
    themselves in it and see its keys and usage; viewers only read (keys masked, usage, audit)."""

    ADMIN = "admin", pgettext_lazy("team role", "admin")
    MEMBER = "member", pgettext_lazy("team role", "member")
    VIEWER = "viewer", pgettext_lazy("team role", "viewer")


class TeamAction(models.TextChoices):
    CREATED = "created", _("created")
    UPDATED = "updated", _("updated")
    MEMBER_ADDED = "member_added", _("member added")
    MEMBER_REMOVED = "member_removed", _("member removed")
    ROLE_CHANGED = "role_changed", _("role changed")


class BudgetPeriod(models.TextChoices):
    DAY = "day", _("day")
    WEEK = "week", _("week")
    MONTH = "month", _("month")
    TOTAL = "total", _("total")


# The grace choices offered when rotating (Stripe's "roll key").
GRACE_CHOICES: dict[str, timedelta] = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}

# Fields key_update() may change; everything else is fixed at creation.
UPDATABLE_FIELDS = frozenset({"name", "description", "model_patterns", "metadata", "expires_at", *LIMIT_FIELDS})

MAX_NAME_LENGTH = 100
MAX_PATTERNS = 100
