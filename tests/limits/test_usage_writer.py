"""Usage records: batched off the request path, nothing lost on close, pruned by retention."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
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


def test_every_field_of_every_row_lands_in_its_column_across_statements(make_key) -> None:
    """Rows go in multi-row INSERTs (58 rows a statement on SQLite): 130 rows with a different value
    in every field span three statements, and each reads back as it was recorded."""
    key, _ = make_key()
    start = timezone.now().replace(microsecond=0)
    wanted = {
        f"row-{i}": {
            "endpoint": ("chat/completions", "messages")[i % 2],
            "model": f"model-{i}",
            "provider": f"provider-{i % 3}",
            "attempts": 1 + i % 3,
            "status_code": (200, 429, 502)[i % 3],
            "input_tokens": i,
            "output_tokens": 2 * i + 1,
            "cost_usd": Decimal(i) / 1000,
            "latency_ms": i + 0.5,
            "ttfb_ms": None if i % 4 == 0 else i / 4,
            "streamed": i % 2 == 1,
            "aborted": i % 5 == 0,
            "error_type": "" if i % 3 == 0 else f"upstream_{i}",
            "client_ip": None if i % 7 == 0 else f"10.0.{i // 256}.{i % 256}",
            "created_at": start + timedelta(seconds=i),
        }
        for i in range(130)
    }

    async def scenario() -> None:
        writer = UsageWriter(interval=60, batch_size=1000)
        for request_id, fields in wanted.items():
            writer.record(**{**_fields(key), **fields, "request_id": request_id})
        await writer.close()

    asyncio.run(scenario())
    stored = {
        row["request_id"]: row
        for row in UsageRecord.objects.filter(key=key).values("request_id", *next(iter(wanted.values())))
    }
    assert {request_id: stored.get(request_id) for request_id in wanted} == {
        request_id: {"request_id": request_id, **fields} for request_id, fields in wanted.items()
    }


def test_on_sqlite_the_writer_keeps_its_connection_between_batches_and_close_closes_it(make_key, monkeypatch) -> None:
    """Closing the last connection to a WAL database checkpoints and deletes the log: done after
    every batch, it was half the writer's CPU (issue #16). (The test database is in memory, where
    Django's close() keeps the data, so the calls are counted.)"""
    if connection.vendor != "sqlite":
        pytest.skip("other databases follow CONN_MAX_AGE")
    from django.db.backends.sqlite3.base import DatabaseWrapper

    key, _ = make_key()
    closed_by = []
    real_close = DatabaseWrapper.close

    def counted_close(self: Any) -> None:
        closed_by.append(threading.current_thread().name)
        real_close(self)

    monkeypatch.setattr(DatabaseWrapper, "close", counted_close)

    async def scenario() -> list[int]:
        writer = UsageWriter(interval=60)
        closes = []
        for i in range(3):
            writer.record(**_fields(key, request_id=f"kept-{i}"))
            await writer.flush()
            closes.append(sum(name.startswith("keygate-usage") for name in closed_by))
        await writer.close()
        closes.append(sum(name.startswith("keygate-usage") for name in closed_by))
        return closes

    assert asyncio.run(scenario()) == [0, 0, 0, 1]
    assert UsageRecord.objects.filter(request_id__startswith="kept-").count() == 3


def test_a_batch_that_fails_is_kept_and_written_by_the_next_flush(make_key, monkeypatch) -> None:
    """A failed batch (here: an INSERT the database refuses) loses nothing and leaves the writer's
    connection usable for the next one."""
    key, _ = make_key()

    async def scenario() -> tuple[int, int]:
        writer = UsageWriter(interval=60)
        for i in range(3):
            writer.record(**_fields(key, request_id=f"retry-{i}"))
        with monkeypatch.context() as patched:
            patched.setattr("gateway.usage._insert_sql", lambda rows: "INSERT INTO keygate_no_such_table VALUES (1)")
            await writer.flush()
        queued = len(writer._queue)
        await writer.close()
        return queued, writer.written

    assert asyncio.run(scenario()) == (3, 3)
    assert UsageRecord.objects.filter(request_id__startswith="retry-").count() == 3


def test_close_while_a_batch_waits_for_the_writer_thread_loses_nothing(make_key) -> None:
    """A batch handed to the writer thread but not yet started when ``close()`` comes (a loaded
    machine) used to be cancelled with the background task: its rows vanished, with no error
    (tests/multi saw 31 of 46 rows once)."""
    key, _ = make_key()

    async def scenario() -> int:
        writer = UsageWriter(interval=60, batch_size=3)
        writer.start()
        busy = threading.Event()
        writer._executor.submit(busy.wait, 10)  # the thread is busy: the next write waits in line
        for i in range(3):
            writer.record(**_fields(key, request_id=f"queued-{i}"))  # a full batch: the task flushes it
        await asyncio.sleep(0.1)
        assert writer._queue == []  # the batch is with the (busy) writer thread
        closing = asyncio.create_task(writer.close())
        await asyncio.sleep(0.1)
        busy.set()
        await closing
        return writer.written

    assert asyncio.run(scenario()) == 3
    assert UsageRecord.objects.filter(request_id__startswith="queued-").count() == 3


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
