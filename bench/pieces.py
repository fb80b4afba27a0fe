"""Repeatable figures for A/B on a noisy machine: tight-loop costs of request-path pieces, calls per
request, and the usage writer's cost per row (issue #16).

    .venv/bin/python bench/pieces.py [--json PATH]
    .venv/bin/python /path/to/other-tree/bench/pieces.py     # the same figures for another tree

wrk rounds on a shared 2-core machine move ±15 % between identical trees, which hides a change of
a few µs. These figures do not depend on load in the same way:

- each piece (``GatewayRequest.from_scope``, ``require_model``, the access-log write, the
  transport-error mapping, ``UsageWriter.record``) run in a tight loop, best of 7 runs of thread
  CPU time (hot caches: the real request pays more per piece, in the same proportion);
- Python function calls per proxied request (cProfile over 1,000 requests through the real gateway
  app in process, in front of the nginx mock): deterministic;
- the usage writer's thread CPU per row on SQLite (``UsageWriter._write``, 500-row batches, the
  median of 120).

Run each tree's own copy (it imports the code beside it); compare the printed figures.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import stages  # noqa: E402  (bench/stages.py: Django set-up, the scope and the driver)


def tight(fn, n: int = 20000, repeat: int = 7) -> float:
    """Best thread-CPU µs per call of ``fn`` over ``repeat`` loops of ``n`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time_ns() - started) / n / 1000)
    return best


def usage_fields(key_id: int) -> dict:
    return {
        "key_id": key_id,
        "endpoint": "chat/completions",
        "model": "gpt-4o",
        "provider": "openai",
        "attempts": 1,
        "status_code": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": Decimal("0.0001"),
        "latency_ms": 1.2,
        "ttfb_ms": 1.0,
        "streamed": False,
        "aborted": False,
        "error_type": "",
        "request_id": "req_0123456789abcdef",
        "client_ip": "127.0.0.1",
    }


def pieces(key_id: int) -> dict[str, float]:
    from gateway.http import GatewayRequest, require_model
    from gateway.logfmt import AccessLog
    from gateway.providers.base import transport_errors
    from gateway.usage import UsageWriter
    from gateway.wire import Dialect

    scope = stages.make_scope("/v1/chat/completions", "sk-kg-placeholder")
    sdk_scope = {**scope, "headers": scope["headers"] + [(f"x-stainless-{i}".encode(), b"v") for i in range(8)]}
    log = AccessLog(stream=open(os.devnull, "w"))

    def access_write() -> None:
        log.write(level="info", request_id="req_1", status=200)
        log._lines.clear()

    class Upstream:
        name = "mock"

    upstream = Upstream()

    def transport() -> None:
        with transport_errors(upstream, "open", 5.0):
            pass

    writer = UsageWriter()
    fields = usage_fields(key_id)

    def record() -> None:
        writer.record(**fields)
        writer._queue.clear()

    return {
        "from_scope, 5 headers": tight(lambda: GatewayRequest.from_scope(scope, Dialect.OPENAI, "chat/completions")),
        "from_scope, 13 headers": tight(
            lambda: GatewayRequest.from_scope(sdk_scope, Dialect.OPENAI, "chat/completions")
        ),
        "require_model": tight(lambda: require_model({"model": "claude-sonnet-4-5"})),
        "access-log write": tight(access_write),
        "transport_errors, one use": tight(transport),
        "UsageWriter.record": tight(record),
    }


def writer_per_row(key_id: int, batches: int = 120, rows: int = 500) -> float:
    """Thread CPU per row of ``UsageWriter._write`` (SQLite), each batch new rows with later times
    than the last, as in a running server (re-inserting one batch would scatter its index entries
    among the earlier copies: about twice the cost, and not what happens)."""
    from gateway.usage import UsageWriter, _row

    fields = usage_fields(key_id)
    start = datetime.now(UTC)
    costs = []
    for number in range(batches):
        batch = [
            _row({**fields, "created_at": start + timedelta(milliseconds=number, microseconds=i)}) for i in range(rows)
        ]
        started = time.thread_time_ns()
        UsageWriter._write(batch, {})
        costs.append((time.thread_time_ns() - started) / rows / 1000)
    return statistics.median(costs)


async def calls_per_request(key: str, mock_port: int, requests: int = 1000) -> dict[str, float]:
    os.environ["UPSTREAM"] = f"http://127.0.0.1:{mock_port}"
    import raw_forwarder

    from gateway.asgi import GatewayApp

    app = GatewayApp()
    await app.startup()
    scope = stages.make_scope("/v1/chat/completions", key)
    try:
        _, statuses = await stages.drive(app, scope, 300)
        assert set(statuses) == {200}, statuses[:5]
        await stages.drive(raw_forwarder.app, scope, 300)
        counts = {}
        for name, target in (("floor", raw_forwarder.app), ("Keygate", app)):
            profile = cProfile.Profile()
            profile.enable()
            await stages.drive(target, scope, requests)
            profile.disable()
            counts[name] = sum(row[1] for row in pstats.Stats(profile).stats.values()) / requests  # type: ignore[attr-defined]
    finally:
        await app.shutdown()
        if raw_forwarder._session is not None:
            await raw_forwarder._session.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keygate-pieces-"))
    with stages.nginx_mock(tmp) as mock_port:
        key = stages.setup_django(tmp, mock_port)
        from keys.models import APIKey

        key_id = APIKey.objects.get(name="stages").id
        import uvloop

        gc.collect()
        gc.freeze()  # as the server does after start-up (config/asgi.py): the collector skips Django's heap
        result: dict = {"tree": str(ROOT)}
        result["writer_us_per_row"] = writer_per_row(key_id)
        result["tight_loop_us"] = pieces(key_id)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # the access log: written, unseen
            result["calls_per_request"] = uvloop.run(calls_per_request(key, mock_port))
    print(f"{ROOT}")
    calls = result["calls_per_request"]
    print(f"  calls per request (cProfile): Keygate {calls['Keygate']:.0f}, floor {calls['floor']:.0f}")
    for name, us in result["tight_loop_us"].items():
        print(f"  {name:28s} {us:6.2f} µs (tight loop, best of 7)")
    print(f"  usage writer, SQLite         {result['writer_us_per_row']:6.2f} µs a row (median of 120 × 500)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
