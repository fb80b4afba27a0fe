"""Usage records, written off the request path in batches.

``record()`` appends a row to an in-memory queue and returns at once; a background task writes
the queue in multi-row INSERTs (every ``interval`` seconds, or sooner when ``batch_size`` records
wait) in a worker thread. ``close()`` — called on clean shutdown — writes
whatever is left, so a clean stop loses nothing. ``last_used_at`` / ``last_used_ip`` are written
at most once a minute per key, with ``queryset.update()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import operator
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections, connection, transaction

from keys.models import APIKey, UsageRecord

log = logging.getLogger(__name__)

LAST_USED_EVERY = 60.0


class UsageWriter:
    """Queue of usage rows and the task that writes them. All methods run on the event loop.

    Rows are built as tuples in ``record()`` (a few µs on the loop) so the writer thread only
    runs the INSERTs: Python work in that thread competes with the event loop for the GIL,
    and showed up as stalls on the proxy path.
    """

    def __init__(self, *, interval: float = 0.5, batch_size: int = 500) -> None:
        self.interval = interval
        self.batch_size = batch_size
        self._queue: list[tuple[Any, ...]] = []
        self._last_used_written: dict[int, float] = {}
        self._last_used_pending: dict[int, tuple[datetime, str | None]] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keygate-usage")
        self.written = 0

    def record(self, **fields: Any) -> None:
        """Queue one usage record (fields of :class:`keys.models.UsageRecord`, ``key_id`` included)."""
        # What timezone.now() gives with USE_TZ on (Keygate's setting), without its settings lookup.
        created = fields.get("created_at") or datetime.now(UTC)
        fields["created_at"] = created
        self._queue.append(_row(fields))
        key_id = fields["key_id"]
        now = time.monotonic()
        if now - self._last_used_written.get(key_id, -LAST_USED_EVERY) >= LAST_USED_EVERY:
            self._last_used_written[key_id] = now
            self._last_used_pending[key_id] = (created, fields.get("client_ip"))
        if len(self._queue) >= self.batch_size:
            self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            # Stopped, not cancelled: a cancel reaching a batch that waits for the writer thread
            # withdrew it from the thread's queue, and its rows were lost without a word.
            self._closing = True
            self._wakeup.set()
            await self._task
        await self.flush()
        await asyncio.get_running_loop().run_in_executor(self._executor, _close_connection)
        self._executor.shutdown(wait=True)

    async def flush(self) -> None:
        if not self._queue and not self._last_used_pending:
            return
        batch, self._queue = self._queue, []
        last_used, self._last_used_pending = self._last_used_pending, {}
        loop = asyncio.get_running_loop()
        try:
            # Shielded: if the awaiting task is cancelled (the loop shutting down), the write still
            # runs; only an unshielded cancel takes a batch back from the thread's queue unwritten.
            await asyncio.shield(loop.run_in_executor(self._executor, self._write, batch, last_used))
        except Exception:
            log.exception("writing %d usage records failed; they will be retried", len(batch))
            self._queue[:0] = batch
            for key_id, value in last_used.items():
                self._last_used_pending.setdefault(key_id, value)
            return
        self.written += len(batch)

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self.interval)
            self._wakeup.clear()
            await self.flush()

    @staticmethod
    def _write(rows: list[tuple[Any, ...]], last_used: dict[int, tuple[datetime, str | None]]) -> None:
        with _writer_connection(), transaction.atomic():
            if rows:
                with connection.cursor() as cursor:
                    # On SQLite the statement is run by the driver's own cursor: its SQL is written
                    # with "?" already, and Django's "%s" → "?" rewrite of a 986-parameter INSERT
                    # cost ~80 µs a statement, with the GIL held (issue #16).
                    execute = (
                        functools.partial(sqlite3.Cursor.execute, cursor.cursor) if _is_sqlite() else cursor.execute
                    )
                    step = _rows_per_statement()
                    for start in range(0, len(rows), step):
                        chunk = rows[start : start + step]
                        execute(_insert_sql(len(chunk)), list(itertools.chain.from_iterable(chunk)))
            for key_id, (when, ip) in last_used.items():
                APIKey.objects.filter(pk=key_id).update(last_used_at=when, last_used_ip=ip)


@contextlib.contextmanager
def _writer_connection() -> Iterator[None]:
    """The writer thread's database connection around one batch.

    On SQLite it is kept from one batch to the next (closed on an error, and by ``close()``).
    There ``CONN_MAX_AGE`` is 0, and closing the last connection to a WAL database checkpoints
    the log into the database and deletes the file. That happened after every batch and cost
    about half the writer's CPU (issue #16: 12.5 → 7 µs a row, 500-row batches). Kept open, the
    log is checkpointed by SQLite as it fills and the file is reused. Other databases follow
    ``CONN_MAX_AGE`` and its health checks, as any thread does.
    """
    if not _is_sqlite():
        close_old_connections()
        try:
            yield
        finally:
            close_old_connections()
        return
    try:
        yield
    except Exception:
        connection.close()  # a batch that failed leaves no half-broken connection behind
        raise


def _close_connection() -> None:
    connection.close()  # in the thread that calls it: the writer's own


_FIELDS = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
_NAMES = [f.attname for f in _FIELDS]
_DEFAULTS = {f.attname: f.get_default() for f in _FIELDS}
_IN_ORDER = operator.itemgetter(*_NAMES)


@functools.cache
def _is_sqlite() -> bool:
    # ``connection`` is a per-thread/per-context proxy: reading it costs a few µs per record.
    return connection.vendor == "sqlite"


def _row(fields: dict[str, Any]) -> tuple[Any, ...]:
    """The INSERT parameters for one record, adapted for the database in use.

    SQLite gets the text Django itself stores (naive UTC datetimes, decimal strings) without
    going through ``connection.ops``, whose general-purpose adaptation was ~5 % of a busy
    worker's CPU; other backends take the values through ``connection.ops`` (cheap there).
    """
    # The gateway passes every field (the defaults are for callers that leave some out).
    values = fields if len(fields) == len(_NAMES) else {**_DEFAULTS, **fields}
    if _is_sqlite():
        created = values["created_at"]
        if created.tzinfo is not UTC:
            created = created.astimezone(UTC)
        values["created_at"] = str(created.replace(tzinfo=None))
        values["cost_usd"] = str(values["cost_usd"])
    else:
        ops = connection.ops
        values["created_at"] = ops.adapt_datetimefield_value(values["created_at"])
        values["cost_usd"] = ops.adapt_decimalfield_value(values["cost_usd"], 14, 8)
    return _IN_ORDER(values)


@functools.cache
def _rows_per_statement() -> int:
    """Rows per INSERT: as many as the backend's parameter limit allows (58 on SQLite), at most 500."""
    limit = connection.features.max_query_params or 500 * len(_FIELDS)
    return max(1, min(500, limit // len(_FIELDS)))


@functools.cache
def _insert_sql(rows: int) -> str:
    """One INSERT of ``rows`` rows, every value a parameter.

    Not the ORM's ``bulk_create``: its per-object machinery cost about a sixth of a busy worker's
    CPU (py-spy under wrk). Not ``executemany`` either: SQLite's runs one statement per row and
    Python's sqlite3 releases and retakes the GIL around each, so a batch of thousands of rows
    took the GIL from the event loop thousands of times; with a multi-row INSERT it is a few
    dozen times per batch (issue #16: +5.5 % req/s, −14 µs CPU a request, bench/ab.py, 8 rounds).
    """
    quote = connection.ops.quote_name
    # Table and column names come from the model; every value is a parameter.
    table = quote(UsageRecord._meta.db_table)
    columns = ", ".join(quote(f.column) for f in _FIELDS)
    placeholder = "?" if _is_sqlite() else "%s"  # SQLite's statements skip Django's rewrite (``_write``)
    row = "(" + ", ".join([placeholder] * len(_FIELDS)) + ")"
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * rows)}"  # noqa: S608
