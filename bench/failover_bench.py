"""Failover figures (issue #12), side by side in one run, in front of the nginx mock:

- ``today``: Keygate as it was before deployments (``--baseline REF``, default ``main``, taken
  with ``git archive``: no worktree is touched), a healthy single-provider route;
- ``single``: this checkout, the same healthy single-deployment route;
- ``open``: this checkout, a route whose priority-0 deployment refuses connections and whose
  breaker is open, with the mock as the priority-1 deployment;
- the first failover: the very first request of a route whose primary refuses connections
  (breaker closed), against ``single``'s p50.

Latency at concurrency 1, rounds interleaved in a rotated order, *added* = median over rounds of
the paired p50 difference. Writes ``bench/results/failover.md``.

    .venv/bin/python bench/failover_bench.py [--rounds 7] [--count 400] [--baseline main]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from load import latency_run, percentile  # noqa: E402
from procs import Procs, free_port, http_status, port_open, process_tree, wait_until  # noqa: E402

CONFIG = """\
providers:
  - {{name: dead, kind: openai, base_url: "http://127.0.0.1:{dead}/v1", timeouts: {{connect: 1}}}}
  - {{name: mock, kind: openai, base_url: "http://127.0.0.1:{mock}/v1", api_key_env: KEYGATE_UPSTREAM_MOCK}}
routes:
  - model: open
    deployments: [{{provider: dead, model: gpt-4o}}, {{provider: mock, model: gpt-4o, priority: 1}}]
  - model: first
    deployments: [{{provider: dead, model: gpt-4o-first}}, {{provider: mock, model: gpt-4o, priority: 1}}]
"""


PIDS: dict[str, int] = {}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree (from /proc)."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _keygate(procs: Procs, name: str, code: Path, env: dict[str, str]) -> tuple[str, str]:
    """Start Keygate from ``code``; (base URL, key)."""
    port = free_port()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=code, env=env, check=True)
    key = subprocess.run(
        [sys.executable, "manage.py", "keys", "create", "--name", "bench", "--models", "*"],
        cwd=code,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    argv = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--host", "127.0.0.1"]
    argv += ["--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    proc = procs.start(name, argv, env=env, cwd=code)
    PIDS[f"http://127.0.0.1:{port}"] = proc.pid
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_status(url + "/healthz")[0] == 200, proc, 30):
        raise RuntimeError(f"{name} did not start:\n{procs.log_tail(name)}")
    return url, key


async def _one(url: str, key: str, model: str) -> tuple[float, int]:
    """One request on an open connection (a first one, untimed, opens it)."""
    body = f'{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}'
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/healthz") as response:
            await response.read()
        t0 = time.perf_counter()
        async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as response:
            await response.read()
            return time.perf_counter() - t0, int(response.headers.get("x-keygate-attempts", "0"))


async def _measure(targets: dict[str, tuple[str, str, str]], rounds: int, count: int) -> dict[str, list[float]]:
    p50s: dict[str, list[float]] = {name: [] for name in targets}
    names = list(targets)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            url, key, model = targets[name]
            body = f'{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}'.encode()
            headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
            result = await latency_run(url + "/v1/chat/completions", headers, body, 1, count, 20.0)
            assert not result["failed"], (name, result["statuses"])
            p50s[name].append(percentile(result["latencies"], 50) * 1000)
    return p50s


def _wrk(url: str, key: str, model: str, seconds: int) -> tuple[float, float]:
    """Requests per second (2xx only) from ``wrk -t1 -c32``, and the server's CPU µs per request
    (robust on a busy machine, where req/s moves with the neighbours' load)."""
    import json

    body = f'{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}'
    env = {**os.environ, "WRK_AUTH": f"Bearer {key}", "WRK_BODY": body}
    argv = ["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(HERE / "wrk_post.lua"), url + "/v1/chat/completions"]
    cpu = _cpu_seconds(PIDS[url])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    cpu = _cpu_seconds(PIDS[url]) - cpu
    data = json.loads(next(line for line in out.splitlines() if line.startswith("WRKJSON "))[8:])
    good = data["requests"] - data["errors"]["status"]
    return good / (data["duration_us"] / 1e6), cpu * 1e6 / max(1, data["requests"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--baseline", default="main")
    parser.add_argument("--wrk-rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keygate-failover-bench."))
    procs = Procs(tmp)
    try:
        mock_port = free_port()
        procs.start("nginx", ["bash", str(HERE / "mock_nginx.sh"), str(mock_port), str(tmp / "nginx")])
        assert wait_until(lambda: port_open(mock_port), None, 10), "the nginx mock did not start"
        baseline = tmp / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline], cwd=ROOT, check=True, capture_output=True).stdout
        archive_path = tmp / "baseline.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(baseline, filter="data")
        config = tmp / "keygate.yaml"
        config.write_text(CONFIG.format(dead=free_port(), mock=mock_port))
        common = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "KEYGATE_"))},
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "KEYGATE_PEPPER": secrets.token_urlsafe(20),
            "ALLOWED_HOSTS": "127.0.0.1",
            "KEYGATE_ENV_FILE": str(tmp / "no.env"),
            "KEYGATE_ACCESS_LOG": "WARNING",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}/v1",
            "OPENAI_API_KEY": "mock-upstream-key",
            "PYTHONUNBUFFERED": "1",
        }
        today = _keygate(procs, "today", baseline, {**common, "DATABASE_URL": f"sqlite:///{tmp / 'today.sqlite3'}"})
        router_env = {
            **common,
            "DATABASE_URL": f"sqlite:///{tmp / 'router.sqlite3'}",
            "KEYGATE_CONFIG": str(config),
            "KEYGATE_UPSTREAM_MOCK": "mock-upstream-key",
            "KEYGATE_BREAKER_COOLDOWN": "3600",
        }
        router = _keygate(procs, "router", ROOT, router_env)
        for url, key in (today, router):  # warm: the key verified (argon2 once), connections open
            for _ in range(20):
                asyncio.run(_one(url, key, "gpt-4o"))
        first_ms, first_attempts = asyncio.run(_one(*router, "first"))
        for _ in range(10):  # the dead deployment's breaker opens after 5 failures
            asyncio.run(_one(*router, "open"))
        _, attempts = asyncio.run(_one(*router, "open"))
        assert attempts == 1, "the breaker did not open"
        targets = {"today": (*today, "gpt-4o"), "single": (*router, "gpt-4o"), "open": (*router, "open")}
        p50s = asyncio.run(_measure(targets, args.rounds, args.count))
        throughput: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        for r in range(args.wrk_rounds):
            for name in list(targets)[r % 3 :] + list(targets)[: r % 3]:
                rate, cost = _wrk(*targets[name], 5)
                throughput[name].append(rate)
                cpu[name].append(cost)
    finally:
        procs.stop_all()

    def added(a: str, b: str) -> float:
        return statistics.median(x - y for x, y in zip(p50s[a], p50s[b], strict=True))

    single = statistics.median(p50s["single"])
    lines = [
        "# Failover figures (bench/failover_bench.py)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.rounds} rounds × {args.count} requests "
        f"at concurrency 1, nginx mock upstream, one uvicorn worker each; baseline `{args.baseline}`. "
        f"Load average at the end: {os.getloadavg()[0]:.2f}.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| p50 today / single deployment / primary refused, breaker open | "
        f"{statistics.median(p50s['today']):.3f} / {single:.3f} / {statistics.median(p50s['open']):.3f} ms | |",
        f"| added p50, breaker open on a refusing primary, over a healthy single deployment | "
        f"{added('open', 'single'):+.3f} ms | ≤ 0.2 ms |",
        f"| added p50, healthy single deployment, over today | {added('single', 'today'):+.3f} ms | ≤ 0 (noise) |",
        f"| throughput (wrk -t1 -c32, median of {args.wrk_rounds} × 5 s) today / single / breaker open | "
        + " / ".join(f"{statistics.median(throughput[n]):,.0f}" for n in ("today", "single", "open"))
        + " req/s | single ≥ today (noise ±10 %) |",
        "| server CPU per request under wrk (median) today / single / breaker open | "
        + " / ".join(f"{statistics.median(cpu[n]):.0f}" for n in ("today", "single", "open"))
        + " µs | single ≤ today |",
        f"| first failover (breaker closed, primary refuses): latency, attempts | {first_ms * 1000:.2f} ms, "
        f"{first_attempts} | ≤ one connect timeout (1 s here) |",
    ]
    out = HERE / "results" / "failover.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
