"""Where notices come from (notify/events.py): key changes in the same transaction, and the
expiry and budget scans — each mark once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from keys import leaks, services
from keys.models import APIKey, UsageRecord
from notify import events
from notify.models import Event, Kind

pytestmark = pytest.mark.django_db

START = "2026-03-01 12:00:00+00:00"


def _kinds() -> list[str]:
    return list(Event.objects.order_by("id").values_list("kind", flat=True))


def test_creating_rotating_and_revoking_a_key_each_write_one_event(alice, make_key) -> None:
    key, _raw = make_key(owner=alice)
    new, _raw2 = services.key_rotate(key=key, grace=timedelta(hours=1))
    services.key_revoke(key=new, actor=alice)
    assert _kinds() == [Kind.KEY_CREATED, Kind.KEY_ROTATED, Kind.KEY_REVOKED]
    rotated = Event.objects.get(kind=Kind.KEY_ROTATED)
    assert rotated.data["successor"] == new.public_id and rotated.data["key"]["id"] == key.public_id


def test_a_change_rolled_back_leaves_no_event(alice, make_key) -> None:
    key, _raw = make_key(owner=alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.key_revoke(key=key)
        raise RuntimeError("the surrounding work failed")
    assert _kinds() == [Kind.KEY_CREATED]


def test_a_key_revoked_as_leaked_says_where_it_was_found(alice, make_key) -> None:
    key, raw = make_key(owner=alice)
    leaks.revoke_leaked(
        [leaks.Finding(raw, url="https://github.com/acme/app/blob/main/.env", source="commit")], via="secret scanning"
    )
    leaked = Event.objects.get(kind=Kind.KEY_LEAKED)
    assert leaked.key == key
    assert leaked.data["url"] == "https://github.com/acme/app/blob/main/.env"
    assert leaked.data["by"] == "secret scanning"
    assert raw not in str(leaked.data)


def _key_expiring_in(days: float, *, born_days_ago: float = 90, **fields) -> APIKey:
    now = timezone.now()
    key, _raw = services.key_create(
        name="expiring", model_patterns="*", expires_at=now + timedelta(days=days), **fields
    )
    APIKey.objects.filter(pk=key.pk).update(created_at=now - timedelta(days=born_days_ago))
    return key


def test_an_expiring_key_gets_one_event_per_mark_however_often_the_worker_scans(alice) -> None:
    with time_machine.travel(START, tick=False) as clock:
        key = _key_expiring_in(40, owner=alice)
        seen = []
        for days_left in (40, 29.5, 29, 10, 6.9, 3, 0.9, 0.5, -0.1, -0.2):
            clock.move_to(key.expires_at - timedelta(days=days_left))
            events.scan_expiry(timezone.now())
            events.scan_expiry(timezone.now())
        for event in Event.objects.filter(key=key).exclude(kind=Kind.KEY_CREATED).order_by("id"):
            seen.append((event.kind, event.data.get("days")))
    assert seen == [(Kind.KEY_EXPIRING, 30), (Kind.KEY_EXPIRING, 7), (Kind.KEY_EXPIRING, 1), (Kind.KEY_EXPIRED, None)]


def test_a_mark_the_key_was_born_inside_is_not_announced(alice) -> None:
    key = _key_expiring_in(5, born_days_ago=0, owner=alice)
    events.scan_expiry(timezone.now())
    assert not Event.objects.filter(key=key, kind=Kind.KEY_EXPIRING).exists()


def test_a_new_expiry_starts_the_marks_over(alice) -> None:
    key = _key_expiring_in(6, owner=alice)
    events.scan_expiry(timezone.now())
    services.key_update(key=key, expires_at=key.expires_at + timedelta(days=1))
    events.scan_expiry(timezone.now())
    assert Event.objects.filter(key=key, kind=Kind.KEY_EXPIRING).count() == 2


def test_the_old_half_of_a_rotated_key_and_revoked_keys_are_not_announced(alice) -> None:
    rotated = _key_expiring_in(6, owner=alice)
    services.key_rotate(key=rotated, grace=timedelta(hours=24))
    revoked = _key_expiring_in(6, owner=alice)
    services.key_revoke(key=revoked)
    events.scan_expiry(timezone.now())
    assert not Event.objects.filter(kind=Kind.KEY_EXPIRING, key__in=[rotated, revoked]).exists()


def _spend(key: APIKey, usd: str = "0", tokens: int = 0) -> None:
    UsageRecord.objects.create(
        key=key, endpoint="chat", model="gpt-4o", status_code=200, cost_usd=Decimal(usd), input_tokens=tokens
    )


def test_a_budget_warns_at_80_percent_then_at_100_once_per_period(alice, make_key) -> None:
    key, _raw = make_key(owner=alice, budget_usd=Decimal("10"), budget_period="month")
    _spend(key, "7")
    assert events.scan_budgets(timezone.now()) == 0
    _spend(key, "1.5")
    assert events.scan_budgets(timezone.now()) == 1
    assert events.scan_budgets(timezone.now()) == 0
    _spend(key, "2")
    assert events.scan_budgets(timezone.now()) == 1
    budget = Event.objects.filter(key=key, kind__startswith="key.budget").order_by("id")
    assert [(e.kind, e.data["percent"]) for e in budget] == [(Kind.BUDGET_WARNING, 80), (Kind.BUDGET_SPENT, 100)]


def test_a_token_budget_spent_at_once_sends_only_the_100_percent_notice(alice, make_key) -> None:
    key, _raw = make_key(owner=alice, budget_tokens=1000, budget_period="day")
    _spend(key, tokens=1200)
    events.scan_budgets(timezone.now())
    events.scan_budgets(timezone.now())
    sent = Event.objects.filter(key=key, kind__startswith="key.budget", fanned_out_at__isnull=True)
    assert [e.kind for e in sent] == [Kind.BUDGET_SPENT]
    assert Event.objects.filter(key=key, kind=Kind.BUDGET_WARNING).count() == 1  # recorded, silent


def test_a_new_period_warns_again(alice, make_key) -> None:
    with time_machine.travel("2026-03-10 12:00:00+00:00", tick=False) as clock:
        key, _raw = make_key(owner=alice, budget_usd=Decimal("10"), budget_period="day")
        _spend(key, "9")
        events.scan_budgets(timezone.now())
        clock.move_to("2026-03-11 12:00:00+00:00")
        _spend(key, "9")
        events.scan_budgets(timezone.now())
    assert Event.objects.filter(key=key, kind=Kind.BUDGET_WARNING).count() == 2
