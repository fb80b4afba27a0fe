"""`python manage.py gateway …` — the declarative configuration file and the routers' state.

- ``check FILE``: validate a file (every problem on stderr as ``FILE:LINE: message``, exit 1);
  applies nothing.
- ``reload [--file FILE]``: apply ``KEYGATE_CONFIG`` (or FILE) to the database now; running
  gateways pick the change up at their next routes refresh (at once with Redis).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway import config_file


class Command(BaseCommand):
    help = "Validate or apply the declarative gateway configuration file (KEYGATE_CONFIG)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="validate a file; applies nothing")
        check.add_argument("file")
        reload = sub.add_parser("reload", help="apply KEYGATE_CONFIG (or --file) now")
        reload.add_argument("--file", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "check":
            config = self._load(options["file"])
            self.stdout.write(
                f"{options['file']}: valid — {len(config.providers)} providers, {len(config.routes)} routes, "
                f"{sum(len(r['deployments']) for r in config.routes)} deployments, {len(config.prices)} prices"
            )
            return
        path = options["file"] or settings.KEYGATE_CONFIG
        if not path:
            raise CommandError("set KEYGATE_CONFIG or pass --file")
        config = self._load(path)
        try:
            changed = config_file.apply(config, path)
        except config_file.ConfigError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{path}: {'applied' if changed else 'unchanged'}")

    def _load(self, path: str) -> config_file.Config:
        try:
            return config_file.load(path)
        except config_file.ConfigError as error:
            self.stderr.write(str(error))
            raise CommandError(f"{path}: {len(error.problems)} problem(s); nothing was applied") from None
