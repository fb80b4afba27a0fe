"""`python manage.py prune_usage [--days N]` — delete usage records older than the retention.

The default is KEYGATE_USAGE_RETENTION_DAYS (90). Budgets with a period of "total" count the
usage records they can see, so pruning lowers what such keys have spent: prune them with care.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from keys.models import UsageRecord


class Command(BaseCommand):
    help = "Delete usage records older than the retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="keep this many days (default: the setting)")
        parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.KEYGATE_USAGE_RETENTION_DAYS
        if days < 1:
            raise CommandError("--days must be at least 1")
        cutoff = timezone.now() - timedelta(days=days)
        old = UsageRecord.objects.filter(created_at__lt=cutoff)
        if options["dry_run"]:
            self.stdout.write(f"{old.count()} usage records older than {days} days would be deleted.")
            return
        deleted = 0
        while True:  # in batches, so a large table is not locked for long
            ids = list(old.values_list("pk", flat=True)[:5000])
            if not ids:
                break
            deleted += UsageRecord.objects.filter(pk__in=ids).delete()[0]
        self.stdout.write(f"Deleted {deleted} usage records older than {days} days.")
