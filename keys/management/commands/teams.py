"""`python manage.py teams …` — manage teams and their members from scripts and terminals.

Errors are one line on stderr and a non-zero exit. The CLI acts as the operator (whoever holds
the server's shell holds its database): ``keys.policy`` is not asked, as for ``keys``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keys import services
from keys.constants import TeamRole
from keys.management.commands.keys import _SubParser
from keys.management.limitargs import add_limit_arguments, limits_from, limits_row
from keys.models import Team

VIA = "cli"


def _row(team: Team) -> dict[str, Any]:
    return {
        "id": team.pk,
        "name": team.name,
        "description": team.description,
        "models": team.model_patterns,
        "limits": limits_row(team),
        "members": [
            {"user": m.user.get_username(), "role": m.role}
            for m in team.memberships.select_related("user").order_by("user__username")
        ],
        "keys": team.keys.count(),
        "created_at": team.created_at.isoformat(),
    }


class Command(BaseCommand):
    help = "Create, list, show and update teams; add and remove members and change their roles."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, parser_class=_SubParser(parser))
        roles = TeamRole.values

        create = sub.add_parser("create", help="create a team")
        create.add_argument("name")
        create.add_argument("--models", default="*", help='comma-separated patterns the team may use (default "*")')
        create.add_argument("--description", default="")
        add_limit_arguments(create)

        update = sub.add_parser("update", help="change a team's name, models, description or limits")
        update.add_argument("team", help="team name or id")
        update.add_argument("--name")
        update.add_argument("--models")
        update.add_argument("--description")
        add_limit_arguments(update)

        add = sub.add_parser("add-member", help="add a user to a team with a role")
        add.add_argument("team")
        add.add_argument("user")
        add.add_argument("--role", choices=roles, default=TeamRole.MEMBER)

        role = sub.add_parser("set-role", help="change a member's role")
        role.add_argument("team")
        role.add_argument("user")
        role.add_argument("--role", choices=roles, required=True)

        remove = sub.add_parser("remove-member", help="take a user out of a team")
        remove.add_argument("team")
        remove.add_argument("user")

        lst = sub.add_parser("list", help="list teams")
        lst.add_argument("--json", action="store_true", help="print JSON instead of a table")

        show = sub.add_parser("show", help="show one team: models, limits, members (JSON)")
        show.add_argument("team")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action'].replace('-', '_')}")(options)
        except services.KeyServiceError as error:
            raise CommandError(error.message) from None

    def _create(self, options: dict[str, Any]) -> None:
        team = services.team_create(
            name=options["name"],
            model_patterns=options["models"],
            description=options["description"],
            via=VIA,
            **limits_from(options),
        )
        self.stdout.write(f"Created team {team.name} (id {team.pk})")

    def _update(self, options: dict[str, Any]) -> None:
        changes = limits_from(options)
        for option, field in (("name", "name"), ("models", "model_patterns"), ("description", "description")):
            if options.get(option) is not None:
                changes[field] = options[option]
        if not changes:
            raise CommandError("nothing to change: give --name, --models, --description or a limit")
        team = services.team_update(team=services.find_team(options["team"]), via=VIA, **changes)
        self.stdout.write(f"Updated team {team.name}")

    def _add_member(self, options: dict[str, Any]) -> None:
        team = services.find_team(options["team"])
        user = services.get_user(options["user"])
        services.member_add(team=team, user=user, role=options["role"], via=VIA)
        self.stdout.write(f"Added {user.get_username()} to {team.name} as {options['role']}")

    def _set_role(self, options: dict[str, Any]) -> None:
        team = services.find_team(options["team"])
        user = services.get_user(options["user"])
        services.member_set_role(team=team, user=user, role=options["role"], via=VIA)
        self.stdout.write(f"{user.get_username()} is now {options['role']} in {team.name}")

    def _remove_member(self, options: dict[str, Any]) -> None:
        team = services.find_team(options["team"])
        user = services.get_user(options["user"])
        services.member_remove(team=team, user=user, via=VIA)
        self.stdout.write(f"Removed {user.get_username()} from {team.name}")

    def _list(self, options: dict[str, Any]) -> None:
        rows = [_row(team) for team in Team.objects.order_by("name")]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        header = ["ID", "NAME", "MODELS", "MEMBERS", "KEYS", "BUDGET"]
        table = [header] + [
            [
                str(r["id"]),
                r["name"],
                ",".join(r["models"]),
                str(len(r["members"])),
                str(r["keys"]),
                _budget(r["limits"]),
            ]
            for r in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

    def _show(self, options: dict[str, Any]) -> None:
        team = services.find_team(options["team"])
        row = _row(team)
        row["events"] = [
            {
                "action": e.action,
                "at": e.created_at.isoformat(),
                "by": e.actor.get_username() if e.actor else e.actor_label or None,
                "ip": e.ip,
                "details": e.details,
            }
            for e in team.events.select_related("actor").order_by("created_at", "id")
        ]
        self.stdout.write(json.dumps(row, indent=2))


def _budget(limits: dict[str, Any]) -> str:
    parts = []
    if limits["budget_tokens"]:
        parts.append(f"{limits['budget_tokens']} tokens")
    if limits["budget_usd"]:
        parts.append(f"${limits['budget_usd']}")
    if not parts:
        return "-"
    return " / ".join(parts) + f" per {limits['budget_period'] or 'period'}"
