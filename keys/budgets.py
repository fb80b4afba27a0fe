"""Spent and remaining of a key's or a team's budgets this period, for people (dashboard, API).

The same UTC periods as the gateway (``keys.usage.period_start``); a team's spending is the
usage of its keys. The gateway's counters also hold requests in flight; this reads the usage
records, so it trails the gateway by the usage writer's flush (about a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from keys.models import APIKey, Team, UsageRecord
from keys.usage import period_start


@dataclass(frozen=True)
class BudgetBar:
    """One budget (tokens or USD): its limit, what was spent, what remains, when it resets."""

    unit: str  # "tokens" or "usd"
    limit: Decimal
    spent: Decimal
    period: str
    resets_at: datetime | None

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.limit - self.spent)

    @property
    def percent(self) -> int:
        """Spent as a whole percentage of the limit, capped at 100 (for a bar's width)."""
        if self.limit <= 0:
            return 100
        return min(100, int(self.spent * 100 / self.limit))

    def as_dict(self) -> dict[str, object]:
        return {
            "unit": self.unit,
            "limit": str(self.limit),
            "spent": str(self.spent),
            "remaining": str(self.remaining),
            "percent": self.percent,
            "period": self.period,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
        }


def period_end(budget_period: str, now: datetime) -> datetime | None:
    """When the UTC budget period containing ``now`` ends (None for 'total')."""
    start = period_start(budget_period or "month", now)
    if start is None:
        return None
    if budget_period == "day":
        return start + timedelta(days=1)
    if budget_period == "week":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def budget_bars(holder: APIKey | Team, *, now: datetime | None = None) -> list[BudgetBar]:
    """The token and USD budgets of a key or a team, with what was spent this period."""
    if not holder.budget_period or not (holder.budget_tokens or holder.budget_usd):
        return []
    now = now or timezone.now()
    start = period_start(holder.budget_period, now)
    records = UsageRecord.objects.filter(key__team=holder) if isinstance(holder, Team) else holder.usage.all()
    if start is not None:
        records = records.filter(created_at__gte=start)
    totals = records.aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"), c=Sum("cost_usd"))
    ends = period_end(holder.budget_period, now.astimezone(UTC))
    bars = []
    if holder.budget_tokens:
        spent = Decimal((totals["i"] or 0) + (totals["o"] or 0))
        bars.append(BudgetBar("tokens", Decimal(holder.budget_tokens), spent, holder.budget_period, ends))
    if holder.budget_usd:
        bars.append(BudgetBar("usd", holder.budget_usd, totals["c"] or Decimal(0), holder.budget_period, ends))
    return bars
