"""Usage aggregates read by the dashboard and the REST API.

Every function is one or two queries over :class:`~keys.models.UsageRecord`, grouped in the
database (``TruncDate`` in the current time zone works on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from keys.models import APIKey, UsageRecord

RECENT_LIMIT = 25
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A range of whole days, ``start`` to ``end`` inclusive, in the current time zone."""

    start: date
    end: date

    @classmethod
    def last_days(cls, days: int, *, now: datetime | None = None) -> Period:
        today = timezone.localdate(now or timezone.now())
        return cls(start=today - timedelta(days=max(days, 1) - 1), end=today)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """The aware datetimes ``[start 00:00, end + 1 day 00:00)``."""
        zone = timezone.get_current_timezone()
        start = datetime.combine(self.start, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(self.end + DAY, datetime.min.time(), tzinfo=zone)
        return start, end


def _in_period(key: APIKey, period: Period) -> Any:
    start, end = period.bounds()
    return UsageRecord.objects.filter(key=key, created_at__gte=start, created_at__lt=end)


def requests_last_24h(keys: Iterable[APIKey], *, now: datetime | None = None) -> dict[int, int]:
    """``{key id: requests in the last 24 hours}`` for many keys in one query (absent → 0)."""
    ids = [key.pk for key in keys]
    if not ids:
        return {}
    since = (now or timezone.now()) - DAY
    rows = (
        UsageRecord.objects.filter(key_id__in=ids, created_at__gte=since)
        .values("key_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["key_id"]: row["n"] for row in rows}


def daily_by_model(key: APIKey, period: Period) -> list[dict[str, Any]]:
    """One row per (day, model): ``date, model, requests, errors, input_tokens, output_tokens,
    cost_usd``, oldest first."""
    rows = (
        _in_period(key, period)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "model")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status_code__gte=400)),
            input_tokens=Coalesce(Sum("input_tokens"), 0),
            output_tokens=Coalesce(Sum("output_tokens"), 0),
            cost_usd=Coalesce(Sum("cost_usd"), Decimal(0)),
        )
        .order_by("day", "model")
    )
    return [
        {
            "date": row["day"],
            "model": row["model"],
            "requests": row["requests"],
            "errors": row["errors"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cost_usd": row["cost_usd"],
        }
        for row in rows
    ]


def chart_data(key: APIKey, period: Period) -> dict[str, Any]:
    """The dashboard chart's input: every day of the period, and per model one series of
    requests and one of tokens (zeros on days without traffic)."""
    days = period.days
    index = {day: n for n, day in enumerate(days)}
    requests: dict[str, list[int]] = {}
    tokens: dict[str, list[int]] = {}
    for row in daily_by_model(key, period):
        model = row["model"] or "-"
        position = index.get(row["date"])
        if position is None:
            continue
        requests.setdefault(model, [0] * len(days))[position] += row["requests"]
        tokens.setdefault(model, [0] * len(days))[position] += row["input_tokens"] + row["output_tokens"]
    return {
        "days": [day.isoformat() for day in days],
        "models": sorted(requests),
        "requests": requests,
        "tokens": tokens,
    }


def summary(key: APIKey, period: Period) -> dict[str, Any]:
    """Totals, per-model totals and per-day rows for a period (the REST API's usage report)."""
    records = _in_period(key, period)
    measures = {
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status_code__gte=400)),
        "input_tokens": Coalesce(Sum("input_tokens"), 0),
        "output_tokens": Coalesce(Sum("output_tokens"), 0),
        "cost_usd": Coalesce(Sum("cost_usd"), Decimal(0)),
        "avg_latency_ms": Avg("latency_ms"),
    }
    totals = records.aggregate(**measures)
    by_model = list(records.values("model").annotate(**measures).order_by("-requests", "model"))
    return {"totals": totals, "by_model": by_model, "by_day": daily_by_model(key, period)}


def recent_requests(key: APIKey, limit: int = RECENT_LIMIT) -> list[UsageRecord]:
    """The key's latest requests, newest first."""
    return list(
        UsageRecord.objects.filter(key=key)
        .only(
            "created_at",
            "model",
            "status_code",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "request_id",
            "streamed",
            "endpoint",
        )
        .order_by("-created_at", "-id")[:limit]
    )


def period_start(budget_period: str, now: datetime) -> datetime | None:
    """The start of the UTC budget period containing ``now`` (None for 'total': all time).

    A key without a budget period is measured by calendar month. The same periods as the
    gateway's budgets (day, ISO week from Monday, calendar month, all UTC).
    """
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if budget_period == "day":
        return day
    if budget_period == "week":
        return day - timedelta(days=day.weekday())
    if budget_period == "total":
        return None
    return day.replace(day=1)


def spend_this_period(keys: Iterable[APIKey], *, now: datetime | None = None) -> dict[int, Decimal]:
    """``{key id: USD spent in the key's current budget period}`` (absent → 0).

    One query per distinct period start among ``keys`` (at most four).
    """
    now = now or timezone.now()
    by_start: dict[datetime | None, list[int]] = {}
    for key in keys:
        by_start.setdefault(period_start(key.budget_period, now), []).append(key.pk)
    spent: dict[int, Decimal] = {}
    for start, ids in by_start.items():
        records = UsageRecord.objects.filter(key_id__in=ids)
        if start is not None:
            records = records.filter(created_at__gte=start)
        for row in records.values("key_id").annotate(usd=Sum("cost_usd")).order_by():
            spent[row["key_id"]] = row["usd"] or Decimal(0)
    return spent
