"""Validation shared by every write: names, model patterns, expiry, limits. Refusals are typed
(:class:`KeyServiceError` and its subclasses) and carry a message for people and the field."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from keys.constants import MAX_NAME_LENGTH, MAX_PATTERNS, BudgetPeriod
from keys.limits import COUNT_FIELDS, patterns_within
from keys.limits import patterns_allow as model_allowed

__all__ = ["model_allowed"]

PATTERN_RE = re.compile(r"^[A-Za-z0-9._:/@+*-]{1,128}$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class KeyServiceError(Exception):
    """A request the key store refuses: bad input or a lifecycle rule. The message is for people."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class KeyAlreadyRevoked(KeyServiceError):
    """:func:`key_revoke` on a key that is revoked already (nothing was written)."""


class Conflict(KeyServiceError):
    """The write clashes with what exists (a team name taken, a member already in the team)."""


class OutsideTeam(KeyServiceError):
    """A key in a team asked for more than the team allows (a model pattern outside the team's)."""


def clean_model_patterns(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """Normalise patterns given as a list or a comma-separated string; raise on a bad one."""
    items = value.split(",") if isinstance(value, str) else list(value)
    patterns: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise KeyServiceError(_("model patterns must be strings"), field="model_patterns")
        pattern = item.strip()
        if not pattern:
            continue
        if not PATTERN_RE.match(pattern):
            raise KeyServiceError(
                _("invalid model pattern %(pattern)r: use letters, digits, . _ - : / @ + and * as a wildcard")
                % {"pattern": pattern},
                field="model_patterns",
            )
        if pattern not in patterns:
            patterns.append(pattern)
    if not patterns:
        raise KeyServiceError(
            _("at least one model pattern is required (e.g. 'gpt-4o' or '*')"), field="model_patterns"
        )
    if len(patterns) > MAX_PATTERNS:
        raise KeyServiceError(_("at most %(n)d model patterns") % {"n": MAX_PATTERNS}, field="model_patterns")
    return patterns


def clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise KeyServiceError(_("a name is required"), field="name")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise KeyServiceError(_("the name is longer than %(n)d characters") % {"n": MAX_NAME_LENGTH}, field="name")
    if any(ord(c) < 32 for c in name):
        raise KeyServiceError(_("the name contains control characters"), field="name")
    return name


def clean_expires_at(expires_at: datetime | None, *, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if timezone.is_naive(expires_at):
        raise KeyServiceError(_("the expiry must carry a time zone"), field="expires_at")
    if expires_at <= now:
        raise KeyServiceError(_("the expiry is in the past"), field="expires_at")
    return expires_at


def clean_allowed_ips(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise KeyServiceError(
                _("invalid IP network %(network)r (use CIDR, e.g. 10.0.0.0/8)") % {"network": text}, field="allowed_ips"
            )
    return networks


def parse_duration(text: str) -> timedelta:
    """Parse '90d', '24h', '30m', '45s', '2w' or 'now' into a timedelta."""
    if text.strip().lower() in {"now", "0"}:
        return timedelta(0)
    match = DURATION_RE.match(text)
    if not match:
        raise KeyServiceError(_("invalid duration %(text)r: use e.g. 30m, 24h, 90d, 2w or now") % {"text": text})
    return timedelta(**{_DURATION_UNITS[match[2]]: int(match[1])})


def clean_limits(fields: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name in COUNT_FIELDS:
        if name in fields:
            value = fields[name]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise KeyServiceError(
                    _("%(field)s must be a positive whole number or empty") % {"field": name}, field=name
                )
            cleaned[name] = value
    if "budget_usd" in fields:
        value = fields["budget_usd"]
        if value is not None:
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                raise KeyServiceError(_("budget_usd must be a number"), field="budget_usd")
            if not value.is_finite() or value <= 0:
                raise KeyServiceError(_("budget_usd must be a positive number"), field="budget_usd")
        cleaned["budget_usd"] = value
    if "budget_period" in fields:
        value = fields["budget_period"] or ""
        if value and value not in BudgetPeriod.values:
            raise KeyServiceError(
                _("budget_period must be one of %(choices)s") % {"choices": ", ".join(BudgetPeriod.values)},
                field="budget_period",
            )
        cleaned["budget_period"] = value
    if "allowed_ips" in fields:
        cleaned["allowed_ips"] = clean_allowed_ips(fields["allowed_ips"])
    return cleaned


def check_within_team(patterns: list[str], team_patterns: list[str] | tuple[str, ...], team_name: str) -> None:
    """Refuse (:class:`OutsideTeam`) model patterns that reach outside the team's."""
    outside = patterns_within(patterns, team_patterns)
    if outside:
        raise OutsideTeam(
            _("model patterns %(outside)s are outside team %(team)s's models (%(allowed)s)")
            % {"outside": ", ".join(outside), "team": team_name, "allowed": ", ".join(team_patterns)},
            field="model_patterns",
        )
