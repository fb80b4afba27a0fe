"""The usage report: requests, errors, tokens and cost by day, team, key and model — the rows
behind the operator usage page, its CSV export and ``GET /api/v1/usage/``.

Scoped by :func:`keys.selectors.visible_keys`: operators read every key's usage, everyone else
their personal keys' and their teams' (a team's usage is the usage of its keys). One grouped
query per call; the CSV and the API give the same rows, so finance can reconcile them against
provider invoices.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from keys.models import Team, UsageRecord
from keys.selectors import visible_keys
from keys.usage import Period

COLUMNS = (
    "date",
    "team",
    "key",
    "key_name",
    "model",
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
TOP = 5


def usage_rows(user: Any, period: Period, *, team: Team | None = None) -> list[dict[str, Any]]:
    """One row per (day, team, key, model) in ``period`` over the keys ``user`` may see."""
    start, end = period.bounds()
    keys = visible_keys(user)
    if team is not None:
        keys = keys.filter(team=team)
    rows = (
        UsageRecord.objects.filter(key__in=keys.values("pk"), created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "key__team__name", "key__public_id", "key__name", "model")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status_code__gte=400)),
            input_tokens=Coalesce(Sum("input_tokens"), 0),
            output_tokens=Coalesce(Sum("output_tokens"), 0),
            cost_usd=Coalesce(Sum("cost_usd"), Decimal(0)),
        )
        # Personal keys (no team) first on every database: PostgreSQL puts NULLs last by default.
        .order_by("day", F("key__team__name").asc(nulls_first=True), "key__name", "key__public_id", "model")
    )
    return [
        {
            "date": row["day"],
            "team": row["key__team__name"] or "",
            "key": row["key__public_id"],
            "key_name": row["key__name"],
            "model": row["model"],
            "requests": row["requests"],
            "errors": row["errors"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cost_usd": row["cost_usd"],
        }
        for row in rows
    ]


def totals(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sums over ``rows``, with the error rate (errors / requests, 0 when there were none)."""
    result: dict[str, Any] = {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": Decimal(0)}
    for row in rows:
        for name in result:
            result[name] += row[name]
    result["error_rate"] = result["errors"] / result["requests"] if result["requests"] else 0.0
    return result


def grouped(rows: Iterable[dict[str, Any]], *fields: str) -> list[dict[str, Any]]:
    """``rows`` summed by ``fields`` (e.g. ``"team"``, or ``"key", "key_name"``), costliest first."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[f] for f in fields), []).append(row)
    result = [{**dict(zip(fields, key, strict=True)), **totals(members)} for key, members in groups.items()]
    return sorted(result, key=lambda r: (-r["cost_usd"], -r["input_tokens"] - r["output_tokens"]))


def top_spenders(rows: Iterable[dict[str, Any]], n: int = TOP) -> list[dict[str, Any]]:
    return grouped(rows, "key", "key_name", "team")[:n]


def as_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The rows as CSV (a header line, then one line per row; dates ISO, cost in full)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row["date"].isoformat() if row["date"] else "", *(_cell(row[c]) for c in COLUMNS[1:])])
    return out.getvalue()


def _cell(value: Any) -> str:
    text = f"{value:.8f}" if isinstance(value, Decimal) else str(value)
    # A cell a spreadsheet would run as a formula (CSV injection) is quoted as text.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def chart(rows: Iterable[dict[str, Any]], period: Period, labels: dict[str, str]) -> dict[str, Any]:
    """The dashboard chart's input (static/keygate/chart.js) from report rows: every day of the
    period, and per model one series of requests and one of tokens (zeros on quiet days)."""
    days = period.days
    index = {day: n for n, day in enumerate(days)}
    requests: dict[str, list[int]] = {}
    tokens: dict[str, list[int]] = {}
    for row in rows:
        position = index.get(row["date"])
        if position is None:
            continue
        model = row["model"] or "-"
        requests.setdefault(model, [0] * len(days))[position] += row["requests"]
        tokens.setdefault(model, [0] * len(days))[position] += row["input_tokens"] + row["output_tokens"]
    return {
        "days": [day.isoformat() for day in days],
        "models": sorted(requests),
        "requests": requests,
        "tokens": tokens,
        "labels": labels,
    }
