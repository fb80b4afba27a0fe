"""`python manage.py keys …` — manage Keygate keys from scripts and terminals.

`create` and `rotate` print the new key *alone* on stdout (details go to stderr), so
`KEY=$(python manage.py keys create --name ci --models 'gpt-4o')` works. Errors are one
line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from keys import scan, services
from keys.management.limitargs import add_limit_arguments, limits_from, limits_row
from keys.models import APIKey

VIA = "cli"


def _parse_when(text: str) -> datetime:
    """An ISO date (midnight, local time zone) or datetime (local time zone if naive)."""
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise services.KeyServiceError(f"invalid date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _fmt(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _row(key: APIKey) -> dict[str, Any]:
    return {
        "public_id": key.public_id,
        "name": key.name,
        "owner": key.owner.get_username() if key.owner else None,
        "masked_key": key.masked,
        "models": key.model_patterns,
        "management": key.is_management,
        "status": key.status().value,
        "created_at": key.created_at.isoformat(),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "paused_at": key.paused_at.isoformat() if key.paused_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "rotated_from": key.rotated_from.public_id if key.rotated_from_id else None,
        "description": key.description,
        "team": key.team.name if key.team_id else None,
        "limits": limits_row(key),
    }


class Command(BaseCommand):
    help = "Create, list, show, rotate, update, pause, resume and revoke Keygate keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=_SubParser(parser))

        create = sub.add_parser("create", help="create a key and print it alone on stdout")
        create.add_argument("--name", required=True)
        create.add_argument("--models", help='comma-separated patterns, e.g. "gpt-4o,claude-*" or "*"')
        create.add_argument(
            "--management",
            action="store_true",
            help="a key for the REST API (/api/v1/) that may manage keys but cannot call any model",
        )
        create.add_argument("--owner", help="username of the owner")
        create.add_argument("--team", help="the team the key belongs to (name or id); its models bound the key's")
        create.add_argument("--description", default="")
        self._add_expiry(create)
        add_limit_arguments(create)

        lst = sub.add_parser("list", help="list keys")
        lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
        lst.add_argument("--owner", help="only this user's keys")
        lst.add_argument("--team", help="only this team's keys")
        lst.add_argument("--all", action="store_true", help="include revoked and expired keys")

        show = sub.add_parser("show", help="show one key (never its secret)")
        show.add_argument("id", help="public id or masked key")

        revoke = sub.add_parser("revoke", help="revoke a key for good")
        revoke.add_argument("id")

        pause = sub.add_parser("pause", help="pause a key: refused until resumed")
        pause.add_argument("id")

        resume = sub.add_parser("resume", help="resume a paused key")
        resume.add_argument("id")

        rotate = sub.add_parser("rotate", help="replace a key; print the new one alone on stdout")
        rotate.add_argument("id")
        rotate.add_argument("--grace", default="24h", help="how long the old key keeps working: now, 1h, 24h, 7d, …")

        scan.add_arguments(sub.add_parser("scan", help="find Keygate keys in files (exit 1 if any); see keys/scan.py"))

        update = sub.add_parser("update", help="change a key's name, models, expiry or description")
        update.add_argument("id")
        update.add_argument("--name")
        update.add_argument("--models")
        update.add_argument("--description")
        update.add_argument("--no-expiry", action="store_true", help="remove the expiry")
        self._add_expiry(update)
        add_limit_arguments(update)

    @staticmethod
    def _add_expiry(parser: ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--expires-in", help="e.g. 30d, 24h, 2w")
        group.add_argument("--expires-at", help="YYYY-MM-DD or an ISO datetime")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except services.KeyServiceError as error:
            raise CommandError(error.message) from None

    def _expiry(self, options: dict[str, Any]) -> tuple[bool, datetime | None]:
        if options.get("expires_in"):
            return True, timezone.now() + services.parse_duration(options["expires_in"])
        if options.get("expires_at"):
            return True, _parse_when(options["expires_at"])
        return False, None

    def _create(self, options: dict[str, Any]) -> None:
        if options["management"] and options["models"]:
            raise CommandError("--management keys cannot call models: leave out --models")
        if not options["models"] and not options["management"]:
            raise CommandError('--models is required, e.g. --models "gpt-4o,claude-*" (or "*" for all)')
        owner = services.get_user(options["owner"]) if options["owner"] else None
        team = services.find_team(options["team"]) if options["team"] else None
        _, expires_at = self._expiry(options)
        key, raw = services.key_create(
            name=options["name"],
            model_patterns=options["models"] or "",
            owner=owner,
            team=team,
            expires_at=expires_at,
            description=options["description"],
            is_management=options["management"],
            via=VIA,
            **limits_from(options),
        )
        self._announce("Created", key)
        self.stdout.write(raw)

    def _list(self, options: dict[str, Any]) -> None:
        keys = APIKey.objects.select_related("owner", "team", "rotated_from").order_by("-created_at", "-id")
        if options["owner"]:
            keys = keys.filter(owner=services.get_user(options["owner"]))
        if options["team"]:
            keys = keys.filter(team=services.find_team(options["team"]))
        rows = [_row(k) for k in keys]
        if not options["all"]:
            rows = [r for r in rows if r["status"] not in ("revoked", "expired")]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        header = ["PUBLIC ID", "NAME", "OWNER", "KEY", "MODELS", "STATUS", "CREATED", "EXPIRES", "LAST USED"]
        table = [header] + [
            [
                r["public_id"],
                r["name"],
                r["owner"] or "-",
                r["masked_key"],
                ",".join(r["models"]) or ("(management)" if r["management"] else "-"),
                r["status"],
                _fmt(datetime.fromisoformat(r["created_at"])),
                _fmt(datetime.fromisoformat(r["expires_at"])) if r["expires_at"] else "never",
                _fmt(datetime.fromisoformat(r["last_used_at"])) if r["last_used_at"] else "never",
            ]
            for r in rows
        ]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
        for row in table:
            cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())

    def _show(self, options: dict[str, Any]) -> None:
        key = services.find_key(options["id"])
        row = _row(key)
        row["events"] = [
            {
                "action": e.action,
                "at": e.created_at.isoformat(),
                "by": e.actor.get_username() if e.actor else e.actor_label or None,
                "ip": e.ip,
                "details": e.details,
            }
            for e in key.events.select_related("actor").order_by("created_at", "id")
        ]
        self.stdout.write(json.dumps(row, indent=2))

    def _revoke(self, options: dict[str, Any]) -> None:
        key = services.key_revoke(key=services.find_key(options["id"]), via=VIA)
        self._announce("Revoked", key)

    def _pause(self, options: dict[str, Any]) -> None:
        key = services.key_pause(key=services.find_key(options["id"]), via=VIA)
        self._announce("Paused", key)

    def _resume(self, options: dict[str, Any]) -> None:
        key = services.key_resume(key=services.find_key(options["id"]), via=VIA)
        self._announce("Resumed", key)

    def _rotate(self, options: dict[str, Any]) -> None:
        grace = services.parse_duration(options["grace"])
        old = services.find_key(options["id"])
        new, raw = services.key_rotate(key=old, grace=grace, via=VIA)
        old.refresh_from_db()
        self._announce("Rotated", old)
        self.stderr.write(f"The old key stops working at {_fmt(old.expires_at)}.")
        self._announce("New key", new)
        self.stdout.write(raw)

    def _scan(self, options: dict[str, Any]) -> None:
        if status := scan.run(options, self.stdout, self.stderr):
            sys.exit(status)

    def _update(self, options: dict[str, Any]) -> None:
        key = services.find_key(options["id"])
        changes: dict[str, Any] = {}
        for option, field in (("name", "name"), ("models", "model_patterns"), ("description", "description")):
            if options[option] is not None:
                changes[field] = options[option]
        has_expiry, expires_at = self._expiry(options)
        if options["no_expiry"]:
            if has_expiry:
                raise CommandError("--no-expiry cannot be combined with --expires-in/--expires-at")
            changes["expires_at"] = None
        elif has_expiry:
            changes["expires_at"] = expires_at
        changes.update(limits_from(options))
        if not changes:
            raise CommandError("nothing to update: give --name, --models, --description, an expiry or a limit option")
        key = services.key_update(key=key, via=VIA, **changes)
        self._announce("Updated", key)

    def _announce(self, verb: str, key: APIKey) -> None:
        owner = key.owner.get_username() if key.owner else "-"
        expiry = _fmt(key.expires_at) if key.expires_at else "never"
        self.stderr.write(
            f"{verb} {key.masked} name={key.name!r} owner={owner} models={','.join(key.model_patterns) or '-'} "
            f"status={key.status().value} expires={expiry}"
        )


def _SubParser(parent: CommandParser) -> type:
    """Sub-parsers that report errors like the parent (one line, exit 2) instead of printing usage."""

    class SubParser(CommandParser):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("called_from_command_line", parent.called_from_command_line)
            super().__init__(**kwargs)

        def error(self, message: str) -> None:
            if self.called_from_command_line:
                sys.stderr.write(f"{self.prog}: error: {message}\n")
                sys.exit(2)
            raise CommandError(f"Error: {message}")

    return SubParser
