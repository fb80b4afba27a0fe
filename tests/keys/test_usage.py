"""Usage aggregates (keys/usage.py): per day and model, in the current time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from keys import usage
from keys.models import UsageRecord

pytestmark = pytest.mark.django_db


def record(key, when: datetime, model: str = "gpt-4o", status_code: int = 200, tokens: int = 0, **extra):
    return UsageRecord.objects.create(
        key=key,
        created_at=when,
        endpoint="chat",
        model=model,
        status_code=status_code,
        input_tokens=tokens,
        output_tokens=tokens,
        **extra,
    )


def test_a_period_covers_whole_days_ending_today() -> None:
    now = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
    period = usage.Period.last_days(7, now=now)
    assert (period.start, period.end) == (date(2025, 3, 4), date(2025, 3, 10))
    assert len(period.days) == 7
    start, end = period.bounds()
    assert start == datetime(2025, 3, 4, tzinfo=UTC) and end == datetime(2025, 3, 11, tzinfo=UTC)


def test_requests_per_day_are_grouped_by_model(make_key) -> None:
    key, _ = make_key()
    today = timezone.now()
    record(key, today, "gpt-4o", tokens=5)
    record(key, today, "gpt-4o", status_code=429)
    record(key, today, "claude-x", tokens=1)
    record(key, today - timedelta(days=1), "gpt-4o", tokens=2)
    rows = usage.daily_by_model(key, usage.Period.last_days(7))
    assert [(r["date"], r["model"], r["requests"], r["errors"]) for r in rows] == [
        (timezone.localdate() - timedelta(days=1), "gpt-4o", 1, 0),
        (timezone.localdate(), "claude-x", 1, 0),
        (timezone.localdate(), "gpt-4o", 2, 1),
    ]
    assert rows[-1]["input_tokens"] == 5 and rows[-1]["output_tokens"] == 5


def test_days_follow_the_current_time_zone(make_key, settings) -> None:
    settings.TIME_ZONE = "Asia/Shanghai"
    key, _ = make_key()
    # 20:00 UTC on 3 March is 04:00 on 4 March in Shanghai.
    record(key, datetime(2025, 3, 3, 20, 0, tzinfo=UTC))
    with timezone.override("Asia/Shanghai"):
        rows = usage.daily_by_model(key, usage.Period(date(2025, 3, 1), date(2025, 3, 5)))
    assert [r["date"] for r in rows] == [date(2025, 3, 4)]


def test_the_chart_has_a_value_for_every_day_and_model(make_key) -> None:
    key, _ = make_key()
    now = timezone.now()
    record(key, now, "gpt-4o", tokens=10)
    record(key, now - timedelta(days=2), "claude-x", tokens=3)
    chart = usage.chart_data(key, usage.Period.last_days(5))
    assert chart["models"] == ["claude-x", "gpt-4o"]
    assert chart["requests"]["gpt-4o"] == [0, 0, 0, 0, 1]
    assert chart["requests"]["claude-x"] == [0, 0, 1, 0, 0]
    assert chart["tokens"]["gpt-4o"][-1] == 20
    assert chart["days"][-1] == timezone.localdate().isoformat()


def test_records_outside_the_period_or_of_other_keys_are_left_out(make_key) -> None:
    key, _ = make_key()
    other, _ = make_key(name="other")
    record(key, timezone.now() - timedelta(days=10))
    record(other, timezone.now())
    assert usage.daily_by_model(key, usage.Period.last_days(7)) == []


def test_requests_in_the_last_24_hours_are_counted_per_key_in_one_query(make_key, django_assert_num_queries) -> None:
    first, _ = make_key(name="first")
    second, _ = make_key(name="second")
    idle, _ = make_key(name="idle")
    now = timezone.now()
    record(first, now - timedelta(hours=1))
    record(first, now - timedelta(hours=23))
    record(first, now - timedelta(hours=25))
    record(second, now)
    with django_assert_num_queries(1):
        counts = usage.requests_last_24h([first, second, idle], now=now)
    assert counts == {first.pk: 2, second.pk: 1}
    assert usage.requests_last_24h([]) == {}


def test_the_summary_totals_cost_tokens_and_latency(make_key) -> None:
    key, _ = make_key()
    now = timezone.now()
    record(key, now, "gpt-4o", tokens=10, cost_usd=Decimal("0.25"), latency_ms=100)
    record(key, now, "gpt-4o", tokens=0, status_code=500, cost_usd=Decimal("0.50"), latency_ms=300)
    report = usage.summary(key, usage.Period.last_days(1))
    totals = report["totals"]
    assert totals["requests"] == 2 and totals["errors"] == 1 and totals["input_tokens"] == 10
    assert totals["cost_usd"] == Decimal("0.75") and totals["avg_latency_ms"] == 200
    assert report["by_model"][0]["model"] == "gpt-4o"


def test_an_empty_period_sums_to_zero(make_key) -> None:
    key, _ = make_key()
    totals = usage.summary(key, usage.Period.last_days(30))["totals"]
    assert totals["requests"] == 0 and totals["input_tokens"] == 0 and totals["cost_usd"] == 0


def test_recent_requests_are_newest_first_and_capped(make_key) -> None:
    key, _ = make_key()
    now = timezone.now()
    for n in range(60):
        record(key, now - timedelta(minutes=n), request_id=f"req-{n}")
    recent = usage.recent_requests(key)
    assert len(recent) == usage.RECENT_LIMIT and recent[0].request_id == "req-0"
