"""Where events come from: the keys' audit trail, and two scans the worker runs.

- **Changes** (created, rotated, revoked, revoked as leaked): every change to a key writes one
  ``KeyEvent`` through :mod:`keys.services`; a ``post_save`` receiver on it writes the outbox
  row **in the same transaction** — so a change and its notice commit together or not at all,
  and nothing in ``keys`` had to change. (``keys.signals.key_changed``/``key_leaked`` are sent
  *after* commit: a crash between the commit and the receiver would lose the notice.)
- **Expiry** (:func:`scan_expiry`): a key passing 30, 7 and 1 days before its expiry, then
  expiring, gets one event per mark (``dedupe_key`` holds key, mark and the expiry, so a changed
  expiry starts over). A mark the key was born inside is skipped (a 5-day key gets the 1-day
  notice, not "expires in 7 days" at creation); a rotated key's old half is not announced.
- **Budgets** (:func:`scan_budgets`): spend this period from the usage records (what the
  dashboard shows), against each key's token and USD budgets; 80 % and 100 % once per period.
  The gateway's hot path is untouched: the scan reads what the usage writer already recorded.
  :func:`scan_team_budgets` does the same for teams (the usage of their keys), where the key
  store has teams.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from keys.models import APIKey, KeyEvent, UsageRecord
from keys.usage import period_start
from notify.models import Event, Kind

EXPIRY_MARKS_DAYS = (30, 7, 1)
BUDGET_MARKS = (80, 100)
# Keys that expired longer ago than this are not announced (e.g. when the worker first starts).
EXPIRED_LOOKBACK = timedelta(days=1)


def key_data(key: APIKey) -> dict[str, Any]:
    """What every event says about its key (never the key itself)."""
    return {
        "key": {
            "id": key.public_id,
            "masked": key.masked,
            "name": key.name,
            "owner": key.owner.get_username() if key.owner_id else None,
            "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        }
    }


def _from_key_event(sender: Any, instance: KeyEvent, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` on KeyEvent: the outbox row for a change worth telling (same transaction)."""
    if not created:
        return
    details = instance.details or {}
    extra: dict[str, Any] = {}
    if instance.action == "created" and not details.get("rotated_from"):
        kind = Kind.KEY_CREATED
    elif instance.action == "rotated":
        kind = Kind.KEY_ROTATED
        extra = {"successor": details.get("successor"), "old_key_expires_at": details.get("expires_at")}
    elif instance.action == "revoked" and details.get("reason") == "leaked":
        kind = Kind.KEY_LEAKED
        extra = {"url": details.get("url", ""), "source": details.get("source", ""), "by": instance.actor_label}
    elif instance.action == "revoked":
        kind = Kind.KEY_REVOKED
        extra = {"by": instance.actor.get_username() if instance.actor_id else instance.actor_label}
    else:
        return
    Event.objects.create(kind=kind, key=instance.key, data={**key_data(instance.key), **extra})


def _from_breaker(sender: Any, deployment: str, down: bool, error: str = "", **kwargs: Any) -> None:
    """:data:`gateway.breaker.breaker_changed`: an upstream deployment's outage began or ended
    (sent from the gateway's news thread, so a database write is fine here)."""
    provider, _, model = deployment.partition(":")
    Event.objects.create(
        kind=Kind.PROVIDER_DOWN if down else Kind.PROVIDER_UP,
        data={"deployment": {"key": deployment, "provider": provider, "model": model}, "error": error[:500]},
    )


def connect() -> None:
    from django.db.models.signals import post_save

    from gateway.breaker import breaker_changed

    post_save.connect(_from_key_event, sender=KeyEvent, dispatch_uid="notify-from-key-event")
    breaker_changed.connect(_from_breaker, dispatch_uid="notify-from-breaker")


def record_once(*, dedupe_key: str, kind: str, key: APIKey | None, data: dict[str, Any], silent: bool = False) -> bool:
    """Write the event unless one with ``dedupe_key`` exists; True when written. ``silent``
    events are recorded as already fanned out (a mark passed over by a bigger one)."""
    if Event.objects.filter(dedupe_key=dedupe_key).exists():
        return False
    try:
        with transaction.atomic():
            Event.objects.create(
                kind=kind,
                key=key,
                data={**(key_data(key) if key is not None else {}), **data},
                dedupe_key=dedupe_key,
                fanned_out_at=timezone.now() if silent else None,
            )
    except IntegrityError:  # another worker wrote it first
        return False
    return True


def scan_expiry(now: datetime) -> int:
    """Events for keys passing an expiry mark; the number written. One query for the keys and one
    per 500 candidates for the events already written, however many keys are near expiry."""
    candidates: list[tuple[str, str, APIKey, dict[str, Any]]] = []
    keys = (
        APIKey.objects.select_related("owner")
        .filter(revoked_at__isnull=True, rotated_to__isnull=True, expires_at__isnull=False)
        .filter(expires_at__gt=now - EXPIRED_LOOKBACK, expires_at__lte=now + timedelta(days=max(EXPIRY_MARKS_DAYS)))
    )
    for key in keys:
        stamp = key.expires_at.isoformat()
        left = key.expires_at - now
        if left <= timedelta(0):
            candidates.append((f"key.expired:{key.pk}:{stamp}", Kind.KEY_EXPIRED, key, {}))
            continue
        mark = min(days for days in EXPIRY_MARKS_DAYS if left <= timedelta(days=days))
        if key.created_at > key.expires_at - timedelta(days=mark):
            continue  # born inside this mark: the next one will tell
        candidates.append((f"key.expiring:{key.pk}:{mark}:{stamp}", Kind.KEY_EXPIRING, key, {"days": mark}))
    done: set[str] = set()
    for start in range(0, len(candidates), 500):
        chunk = [dedupe for dedupe, *_rest in candidates[start : start + 500]]
        done.update(Event.objects.filter(dedupe_key__in=chunk).values_list("dedupe_key", flat=True))
    return sum(
        record_once(dedupe_key=dedupe, kind=kind, key=key, data=data)
        for dedupe, kind, key, data in candidates
        if dedupe not in done
    )


def scan_budgets(now: datetime) -> int:
    """Events for keys past 80 % or 100 % of a budget this period; the number written."""
    keys = list(
        APIKey.objects.select_related("owner").filter(
            Q(budget_usd__isnull=False) | Q(budget_tokens__isnull=False), revoked_at__isnull=True
        )
    )
    by_start: dict[datetime | None, list[APIKey]] = {}
    for key in keys:
        by_start.setdefault(period_start(key.budget_period, now), []).append(key)
    written = 0
    for start, members in by_start.items():
        records = UsageRecord.objects.filter(key_id__in=[key.pk for key in members])
        if start is not None:
            records = records.filter(created_at__gte=start)
        spent = {
            row["key_id"]: row
            for row in records.values("key_id")
            .annotate(usd=Sum("cost_usd"), tokens=Sum(F("input_tokens") + F("output_tokens")))
            .order_by()
        }
        for key in members:
            row = spent.get(key.pk, {})
            written += _budget_events(key, start, row.get("usd") or Decimal(0), row.get("tokens") or 0)
    return written


def scan_team_budgets(now: datetime) -> int:
    """Events for teams past 80 % or 100 % of a budget this period (the usage of their keys);
    0 where the key store has no teams."""
    try:
        team_model = apps.get_model("keys", "Team")
    except LookupError:
        return 0
    written = 0
    for team in team_model.objects.filter(Q(budget_usd__isnull=False) | Q(budget_tokens__isnull=False)):
        start = period_start(team.budget_period, now)
        records = UsageRecord.objects.filter(key__team=team)
        if start is not None:
            records = records.filter(created_at__gte=start)
        spent = records.aggregate(usd=Sum("cost_usd"), tokens=Sum(F("input_tokens") + F("output_tokens")))
        written += _budget_events(
            team,
            start,
            spent["usd"] or Decimal(0),
            spent["tokens"] or 0,
            kinds=(Kind.TEAM_BUDGET_WARNING, Kind.TEAM_BUDGET_SPENT),
            about={"team": {"id": team.pk, "name": team.name}},
        )
    return written


def _budget_events(
    holder: Any,
    start: datetime | None,
    usd: Decimal,
    tokens: int,
    *,
    kinds: tuple[str, str] = (Kind.BUDGET_WARNING, Kind.BUDGET_SPENT),
    about: dict[str, Any] | None = None,
) -> int:
    """The 80 % and 100 % events of a key's or a team's (``holder``) budgets."""
    ratios = []
    if holder.budget_usd:
        ratios.append(Decimal(usd) / holder.budget_usd)
    if holder.budget_tokens:
        ratios.append(Decimal(tokens) / holder.budget_tokens)
    percent = max(ratios, default=Decimal(0)) * 100
    crossed = [mark for mark in BUDGET_MARKS if percent >= mark]
    period = start.isoformat() if start else "total"
    key = holder if isinstance(holder, APIKey) else None
    written = 0
    for mark in crossed:
        kind = kinds[1] if mark == 100 else kinds[0]
        data = {
            **(about or {}),
            "percent": mark,
            "period_start": start.isoformat() if start else None,
            "spent_usd": str(usd),
            "spent_tokens": tokens,
            "budget_usd": str(holder.budget_usd) if holder.budget_usd else None,
            "budget_tokens": holder.budget_tokens,
        }
        # 80 % passed over on the way to 100 % in one scan: recorded, not sent.
        silent = mark != crossed[-1]
        written += record_once(dedupe_key=f"{kind}:{holder.pk}:{period}", kind=kind, key=key, data=data, silent=silent)
    return written
