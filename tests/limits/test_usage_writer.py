"""Usage records: batched off the request path, nothing lost on close, pruned by retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from gateway.usage import UsageWriter
from keys.models import APIKey, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def _fields(key: APIKey, **extra) -> dict:
    return {
        "key_id": key.pk,
        "endpoint": "chat/completions",
        "model": "gpt-4o",
        "status_code": 200,
        "input_tokens": 3,
        "output_tokens": 5,
        "client_ip": "127.0.0.1",
        **extra,
    }


def test_records_are_written_in_batches_and_close_flushes_the_rest(make_key) -> None:
    key, _ = make_key()

    async def scenario() -> int:
        writer = UsageWriter(interval=60, batch_size=1000)  # nothing flushes on its own during the test
        writer.start()
        for i in range(250):
            writer.record(**_fields(key, request_id=f"r{i}"))
        before = await asyncio.to_thread(UsageRecord.objects.count)
        await writer.close()
        return before

    assert asyncio.run(scenario()) == 0  # record() never waits for the database
    assert UsageRecord.objects.filter(key=key).count() == 250
    assert UsageRecord.objects.values("request_id").distinct().count() == 250


def test_last_used_is_written_at_most_once_a_minute_per_key(make_key) -> None:
    key, _ = make_key()

    async def scenario() -> None:
        writer = UsageWriter(interval=60)
        for i in range(5):
            writer.record(**_fields(key, request_id=f"a{i}"))
        assert len(writer._last_used_pending) == 1
        await writer.flush()
        writer.record(**_fields(key, request_id="later"))
        assert writer._last_used_pending == {}  # within the minute: no second write queued
        await writer.close()

    asyncio.run(scenario())
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_ip == "127.0.0.1"


def test_prune_usage_deletes_only_records_older_than_the_retention(make_key, settings) -> None:
    settings.KEYGATE_USAGE_RETENTION_DAYS = 30
    key, _ = make_key()
    now = timezone.now()
    UsageRecord.objects.bulk_create(
        [UsageRecord(created_at=now - timedelta(days=days), **_fields(key)) for days in (1, 29, 31, 400)]
    )
    call_command("prune_usage")
    remaining = sorted((now - r.created_at).days for r in UsageRecord.objects.all())
    assert remaining == [1, 29]


def test_prune_usage_refuses_a_nonsensical_retention(make_key) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("prune_usage", "--days", "0")
