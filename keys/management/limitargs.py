"""The limit options of the ``keys`` and ``teams`` commands, read from the one declaration
(:data:`keys.limits.LIMIT_FIELDS`): one option per field, ``none`` removes a limit."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from keys.limits import COUNT_FIELDS, LIMIT_FIELDS

# The option name of each field, where it differs from the field's name.
_OPTION_NAMES = {"rpm_limit": "rpm", "tpm_limit": "tpm"}
_HELP = {
    "rpm_limit": ("N", "requests per minute"),
    "tpm_limit": ("N", "tokens per minute"),
    "max_parallel": ("N", "requests in flight at once"),
    "budget_tokens": ("N", "tokens per budget period"),
    "budget_usd": ("X", "US dollars per budget period (needs a price table)"),
    "budget_period": ("P", "day, week, month or total"),
    "allowed_ips": ("CIDR,…", "client networks allowed"),
}
LIMIT_OPTIONS = tuple((_OPTION_NAMES.get(field, field), field) for field in LIMIT_FIELDS)


def add_limit_arguments(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("limits (give 'none' to remove one)")
    for option, field in LIMIT_OPTIONS:
        metavar, text = _HELP[field]
        group.add_argument(f"--{option.replace('_', '-')}", dest=option, metavar=metavar, help=text)


def limits_from(options: dict[str, Any]) -> dict[str, Any]:
    """The limit options given, as service keyword arguments."""
    limits: dict[str, Any] = {}
    for option, field in LIMIT_OPTIONS:
        text = options.get(option)
        if text is None:
            continue
        if text.strip().lower() in ("none", ""):
            limits[field] = [] if field == "allowed_ips" else ("" if field == "budget_period" else None)
        elif field not in COUNT_FIELDS:
            limits[field] = text
        elif text.strip().isdigit():
            limits[field] = int(text)
        else:
            raise CommandError(f"--{option.replace('_', '-')} must be a positive whole number or 'none'")
    return limits


def limits_row(obj: Any) -> dict[str, Any]:
    """A key's or a team's limits as JSON-ready values, by option name."""
    row: dict[str, Any] = {}
    for option, field in LIMIT_OPTIONS:
        value = getattr(obj, field)
        if field == "budget_usd":
            value = str(value) if value is not None else None
        elif field == "budget_period":
            value = value or None
        row[option] = value
    return row
