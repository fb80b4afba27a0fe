"""Where Keygate's own CPU per request goes, stage by stage (issue #16).

    .venv/bin/python bench/stages.py [--requests 3000] [--rounds 3] [--json PATH]

Runs the real gateway ASGI app (``gateway.asgi.GatewayApp``, started as in production, SQLite,
its JSON access log on, written to /dev/null) in this process, in front of the nginx mock
(``mock_nginx.sh``), and drives non-streamed ``POST /v1/chat/completions`` requests through it
one after another (concurrency 1: each request's CPU is its own). No HTTP server in between:
uvicorn's share is the same for Keygate and the floor, so it is left out on both sides.

Each stage's function is wrapped with a timer on the event-loop thread's CPU clock
(``CLOCK_THREAD_CPUTIME_ID``); nested stages are subtracted from their parent (exclusive times):

- parse: endpoint match, ``GatewayRequest.from_scope`` (headers, request id), body read and JSON
  check (``_prepare``)
- auth cache: ``_authorize`` (credential, checksum, HMAC, key cache, key state, permissions)
- limits: ``throttle.admit`` + ``throttle.settle``
- routing: ``RoutingTable.resolve``, ``Forwarder.plan``, ``Router.only/next``
- forward: ``Forwarder.forward`` itself + ``_open`` (body, headers, the aiohttp request and
  the upstream's answer read)
- relay: ``relay`` (headers passed back, the response sent)
- usage: ``UsageWriter.record`` (the row built on the loop) + ``RoutingTable.cost``
- metrics: the rest of ``_record`` (Prometheus children, labels)
- access log: ``AccessLog.write``
- asgi + rest: the request's total minus all of the above (``__call__``, ``Outcome``, sends)

Then, without any wrapper, the same requests give the *total* per request (the wrappers cost
~1 µs each), the process CPU (loop + the usage writer thread), and the same loop run through
``bench/raw_forwarder.py`` (the floor) — **Keygate's own = Keygate total − floor total**.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
STAGES = ("parse", "auth cache", "limits", "routing", "forward", "relay", "usage", "metrics", "access log")
BODY = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def nginx_mock(tmp: Path, script: Path = BENCH / "mock_nginx.sh") -> Iterator[int]:
    """The nginx mock (``mock_nginx.sh``, which fills in the ``mock_nginx.conf`` beside it) on a
    free loopback port, its files under ``tmp``; yields the port once it accepts connections, and
    stops nginx on the way out."""
    port = free_port()
    nginx = subprocess.Popen(
        ["bash", str(script), str(port), str(tmp / "nginx")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_port(port)
        yield port
    finally:
        os.killpg(nginx.pid, signal.SIGTERM)
        nginx.wait(timeout=10)


class StageClock:
    """Exclusive CPU time per stage on the loop thread (concurrency 1: one request at a time)."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(STAGES, 0)
        self._stack: list[list] = []  # [stage, started_ns, child_ns]

    def enter(self, stage: str) -> None:
        self._stack.append([stage, time.thread_time_ns(), 0])

    def leave(self) -> None:
        stage, started, children = self._stack.pop()
        spent = time.thread_time_ns() - started
        self.totals[stage] += spent - children
        if self._stack:
            self._stack[-1][2] += spent

    def wrap(self, stage: str, fn):
        if asyncio.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args, **kwargs):
                self.enter(stage)
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self.leave()

            return timed_async

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self.enter(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        return timed


def instrument(app, clock: StageClock) -> None:
    from gateway import asgi, http, proxy, routing

    asgi.views.match = clock.wrap("parse", asgi.views.match)
    original_from_scope = http.GatewayRequest.from_scope.__func__
    http.GatewayRequest.from_scope = classmethod(clock.wrap("parse", original_from_scope))
    app._prepare = clock.wrap("parse", app._prepare)
    app._authorize = clock.wrap("auth cache", app._authorize)
    app.throttle.admit = clock.wrap("limits", app.throttle.admit)
    app.throttle.settle = clock.wrap("limits", app.throttle.settle)
    routing.RoutingTable.resolve = clock.wrap("routing", routing.RoutingTable.resolve)
    routing.RoutingTable.cost = clock.wrap("usage", routing.RoutingTable.cost)
    app.forwarder.plan = clock.wrap("routing", app.forwarder.plan)
    app.forwarder.router.only = clock.wrap("routing", app.forwarder.router.only)
    app.forwarder.router.next = clock.wrap("routing", app.forwarder.router.next)
    app.forwarder.forward = clock.wrap("forward", app.forwarder.forward)
    app.forwarder._open = clock.wrap("forward", app.forwarder._open)
    proxy.relay = clock.wrap("relay", proxy.relay)
    app.usage.record = clock.wrap("usage", app.usage.record)
    app._record = clock.wrap("metrics", app._record)
    if app.access is not None:
        app.access.write = clock.wrap("access log", app.access.write)


def make_scope(path: str, key: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def drive(app, scope: dict, n: int) -> tuple[float, list[int]]:
    """``n`` requests one after another; returns loop-thread CPU µs per request and the statuses."""
    statuses: list[int] = []

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    started = time.thread_time_ns()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.thread_time_ns() - started) / 1000 / n, statuses


async def measure(args, key: str, mock_port: int) -> dict:
    from django.conf import settings

    from gateway.asgi import GatewayApp

    os.environ["UPSTREAM"] = f"http://127.0.0.1:{mock_port}"
    sys.path.insert(0, str(BENCH))
    import raw_forwarder

    app = GatewayApp()
    await app.startup()
    assert settings.KEYGATE_MAX_BODY_BYTES
    scope = make_scope("/v1/chat/completions", key)
    raw_scope = make_scope("/v1/chat/completions", key)
    try:
        _, statuses = await drive(app, scope, 300)  # warm-up: key cache, connections, children
        assert set(statuses) == {200}, statuses[:5]
        await drive(raw_forwarder.app, raw_scope, 300)
        totals, raws, process = [], [], []
        for _ in range(args.rounds):  # interleaved: the floor and Keygate see the same machine
            raw_us, _ = await drive(raw_forwarder.app, raw_scope, args.requests)
            before = time.process_time_ns()
            total_us, statuses = await drive(app, scope, args.requests)
            process.append((time.process_time_ns() - before) / 1000 / args.requests)
            assert set(statuses) == {200}, set(statuses)
            totals.append(total_us)
            raws.append(raw_us)
        if args.profile:
            import cProfile
            import pstats

            for name, target, target_scope in (("floor", raw_forwarder.app, raw_scope), ("Keygate", app, scope)):
                profile = cProfile.Profile(time.thread_time)  # CPU time of the loop thread, not wall time
                profile.enable()
                await drive(target, target_scope, args.requests)
                profile.disable()
                out = io.StringIO()
                pstats.Stats(profile, stream=out).sort_stats(args.profile).print_stats(
                    int(os.environ.get("PSTATS_N", "35"))
                )
                print(f"--- {name}: cProfile, loop-thread CPU, {args.requests} requests", file=sys.__stdout__)
                print(out.getvalue(), file=sys.__stdout__)
        clock = StageClock()
        instrument(app, clock)
        await drive(app, scope, 300)
        clock.totals = dict.fromkeys(STAGES, 0)
        timed_total, _ = await drive(app, scope, args.requests * args.rounds)
    finally:
        await app.shutdown()
        if raw_forwarder._session is not None:
            await raw_forwarder._session.close()
    n = args.requests * args.rounds
    stages = {name: clock.totals[name] / 1000 / n for name in STAGES}
    stages["asgi + rest"] = timed_total - sum(stages.values())
    med = sorted(totals)[len(totals) // 2]
    raw = sorted(raws)[len(raws) // 2]
    return {
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "keygate_loop_us": med,
        "keygate_process_us": sorted(process)[len(process) // 2],
        "floor_loop_us": raw,
        "keygate_own_us": med - raw,
        "instrumented_total_us": timed_total,
        "stages_us": stages,
        "load_average": os.getloadavg()[0],
    }


def setup_django(tmp: Path, mock_port: int) -> str:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "KEYGATE_ENV_FILE": str(tmp / "no.env"),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "KEYGATE_PEPPER": secrets.token_urlsafe(40),
            "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}/v1",
            "OPENAI_API_KEY": "mock-upstream-key",
            "KEYGATE_UPSTREAM_MODELS_REFRESH": "0",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        call_command("keys", "create", "--name", "stages", "--models", "*", stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()[-1]


def report(result: dict) -> str:
    lines = [
        f"Keygate's own CPU per request, by stage (in-process, concurrency 1, "
        f"{result['rounds']} × {result['requests_per_round']} requests, load average {result['load_average']:.2f}):",
    ]
    for name, us in result["stages_us"].items():
        lines.append(f"  {name:12s} {us:7.1f} µs")
    lines += [
        f"  {'(sum, timed)':12s} {result['instrumented_total_us']:7.1f} µs  (with ~1 µs per stage timer)",
        f"Keygate total (untimed) {result['keygate_loop_us']:7.1f} µs on the loop thread, "
        f"{result['keygate_process_us']:.1f} µs with the usage writer thread",
        f"floor (raw_forwarder)   {result['floor_loop_us']:7.1f} µs",
        f"Keygate's own           {result['keygate_own_us']:7.1f} µs per request beyond the floor (target ≤ 180)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--profile",
        metavar="SORT",
        help="also print a cProfile of the floor and Keygate (tottime, cumtime, ncalls; rows: PSTATS_N, 35)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keygate-stages-"))
    with nginx_mock(tmp) as mock_port:
        key = setup_django(tmp, mock_port)
        import uvloop

        devnull = open(os.devnull, "w")  # the access log goes nowhere, but is written
        sys.stderr, stderr = devnull, sys.stderr
        try:
            result = uvloop.run(measure(args, key, mock_port))
        finally:
            sys.stderr = stderr
        print(report(result))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
