"""The optional limits a key and a team both carry, declared once, with the rules about them.

``LIMIT_FIELDS`` names them for every surface (model fields in ``keys.models.LimitFields``,
services, forms, serializers, the CLI, the admin); :class:`Limits` is their value in memory,
as the gateway reads it. Model patterns are a scope rather than a limit but nest the same way:
a key in a team may only narrow the team's (:func:`patterns_within`). Pure code, no ORM.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import lru_cache
from typing import Any

# Whole-number limits (positive or empty).
COUNT_FIELDS = ("rpm_limit", "tpm_limit", "max_parallel", "budget_tokens")
LIMIT_FIELDS = (*COUNT_FIELDS, "budget_usd", "budget_period", "allowed_ips")


@dataclass(frozen=True, slots=True)
class Limits:
    """One key's or one team's limits (all optional: None / "" / () means none)."""

    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel: int | None = None
    budget_tokens: int | None = None
    budget_usd: Decimal | None = None
    budget_period: str = ""
    allowed_ips: tuple[str, ...] = ()

    @classmethod
    def of(cls, obj: Any) -> Limits:
        """The limits of a model instance (or anything with the ``LIMIT_FIELDS`` attributes)."""
        values = {name: getattr(obj, name) for name in LIMIT_FIELDS}
        values["allowed_ips"] = tuple(values["allowed_ips"] or ())
        values["budget_period"] = values["budget_period"] or ""
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def has_budget(self) -> bool:
        return bool(self.budget_period and (self.budget_tokens or self.budget_usd))

    @property
    def is_counted(self) -> bool:
        """Does the gateway keep counters for these limits (rates, parallel, a budget)?"""
        return bool(self.rpm_limit or self.tpm_limit or self.max_parallel or self.has_budget)

    def ip_allowed(self, client_ip: str | None) -> bool:
        """True when no networks are set, or one holds ``client_ip`` (unknown or unparsable
        addresses are refused when networks are set)."""
        if not self.allowed_ips:
            return True
        if not client_ip:
            return False
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(address in _network(network) for network in self.allowed_ips)


@lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def patterns_allow(patterns: tuple[str, ...] | list[str], model: str) -> bool:
    """True when ``model`` matches one of ``patterns`` (``*`` is the only wildcard)."""
    # "*" alone (the commonest pattern) skips fnmatch: it is on every proxied request.
    return any(p == model or p == "*" or ("*" in p and fnmatch.fnmatchcase(model, p)) for p in patterns)


def pattern_within(pattern: str, outer: tuple[str, ...] | list[str]) -> bool:
    """Does every model ``pattern`` matches also match one of ``outer``?

    ``pattern``'s ``*`` is read as a literal character that only an outer ``*`` may absorb:
    ``claude-3-*`` is within ``claude-*``, ``gpt-4o`` within ``gpt-*``, ``*`` only within ``*``.
    Sound (never says yes wrongly) and exact for the patterns people write; a pattern that is
    narrower only through a union of outer patterns is refused, which errs on the safe side.
    """
    return any(p == pattern or ("*" in p and fnmatch.fnmatchcase(pattern, p)) for p in outer)


def patterns_within(patterns: tuple[str, ...] | list[str], outer: tuple[str, ...] | list[str]) -> list[str]:
    """The ``patterns`` that are not within ``outer`` (empty: all are)."""
    return [pattern for pattern in patterns if not pattern_within(pattern, outer)]
