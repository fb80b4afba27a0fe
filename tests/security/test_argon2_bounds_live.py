"""Costly checks under attack, on a real server with real argon2 (issue #10, SECURITY.md).

Each test reproduces one measured attack and prints its figures (run with ``-s`` to see them):

- 300 concurrent forged keys for one known public id from one address → at most 35 argon2 runs;
- 150 addresses, each under its own limit, forging keys for 150 known public ids → argon2 bounded
  by the limiter (fast 503s beyond it), while a warm key's p99 stays ≤ 50 ms;
- 150 concurrent forged management keys → no more 401s (argon2 runs) than the limits allow, and
  bounded memory;
- 50 concurrent sign-ins with random usernames → no 5xx, peak memory growth ≤ 300 MB;
- 20 parallel password guesses → the pair stays locked out (the exact count is in tests/keys);
- 30 malformed keys from an office NAT lock nobody out;
- a key's allowed networks hold on /v1/ and /api/v1/.

"argon2 runs" on /v1/ are read from the server's own counter of cache misses (each forged key is
a distinct miss: one lookup and, for a known public id, one argon2 verify).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from keys import crypto
from tests.security.helpers import csrf_token
from tests.support.live import KeygateServer

pytestmark = pytest.mark.live

TOKEN = "bounds-metrics-token"
MODELS = "/v1/models"
LIMIT = 5  # sign-in failures per username and address (AXES_FAILURE_LIMIT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> KeygateServer:
    env = {
        "KEYGATE_TEST_REAL_ARGON2": "true",  # keys and passwords hashed as in production
        "KEYGATE_AUTH_FAILURES_PER_MINUTE": "30",
        "KEYGATE_METRICS_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",
        "AXES_FAILURE_LIMIT": str(LIMIT),
    }
    with KeygateServer(Path(tmp_path_factory.mktemp("bounds")), env=env) as running:
        yield running


def _misses(server: KeygateServer) -> float:
    text = httpx.get(f"{server.url}/metrics", headers={"authorization": f"Bearer {TOKEN}"}, timeout=10).text
    match = re.search(r'keygate_key_cache_total\{result="miss"\} ([\d.e+]+)', text)
    return float(match.group(1)) if match else 0.0


def _forged(real: str, n: int) -> str:
    """A well-formed key (its CRC32 is public) naming ``real``'s public id, with a wrong secret."""
    head = real[:18] + f"{n:032d}"
    return head + crypto.checksum(head)


def _memory(server: KeygateServer) -> dict[str, int]:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return {name: int(re.search(rf"{name}:\s+(\d+) kB", status).group(1)) // 1024 for name in ("VmRSS", "VmHWM")}


def _reset_peak(server: KeygateServer) -> None:
    try:
        Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


async def _burst(server: KeygateServer, requests: list[tuple[str, str, dict]], timeout: float = 60) -> list[int]:
    """Send every ``(address, path, headers)`` at once, each from its own source address."""
    clients: dict[str, httpx.AsyncClient] = {}
    for address, _, _ in requests:
        if address not in clients:
            transport = httpx.AsyncHTTPTransport(local_address=address, limits=httpx.Limits(max_connections=None))
            clients[address] = httpx.AsyncClient(base_url=server.url, transport=transport, timeout=timeout)

    async def one(address: str, path: str, headers: dict) -> int:
        try:
            return (await clients[address].get(path, headers=headers)).status_code
        except httpx.HTTPError:
            return 0

    try:
        return await asyncio.gather(*(one(*request) for request in requests))
    finally:
        for client in clients.values():
            await client.aclose()


PROBE = textwrap.dedent(
    """
    import json, os, sys, time, httpx
    url, key, stop = sys.argv[1], sys.argv[2], sys.argv[3]
    transport = httpx.HTTPTransport(local_address="127.0.0.250")
    latencies = []
    with httpx.Client(transport=transport, timeout=30) as client:
        end = time.monotonic() + 120
        while not os.path.exists(stop) and time.monotonic() < end:
            started = time.perf_counter()
            status = client.get(url + "/v1/models", headers={"authorization": "Bearer " + key}).status_code
            latencies.append(((time.perf_counter() - started) * 1000, status))
            time.sleep(0.01)
    print(json.dumps(latencies))
    """
)


def test_300_concurrent_forged_keys_for_one_public_id_from_one_address_cost_at_most_35_argon2_runs(
    server: KeygateServer,
) -> None:
    (real,) = server.make_keys({"name": "victim", "model_patterns": "*"})
    before = _misses(server)

    statuses = asyncio.run(
        _burst(server, [("127.0.0.2", MODELS, {"authorization": f"Bearer {_forged(real, n)}"}) for n in range(300)])
    )

    runs = _misses(server) - before
    print(
        f"\n/v1/: 300 concurrent forged keys, one public id, one address → {runs:.0f} argon2 runs; "
        f"{statuses.count(401)}×401 {statuses.count(429)}×429 {statuses.count(503)}×503"
    )
    assert runs <= 35
    assert statuses.count(401) + statuses.count(429) == 300


def test_a_burst_from_150_addresses_is_bounded_by_the_limiter_and_a_warm_key_stays_fast(
    server: KeygateServer,
) -> None:
    warm, *victims = server.make_keys(
        {"name": "warm", "model_patterns": "*"}, *({"name": f"v{n}", "model_patterns": "*"} for n in range(150))
    )
    assert httpx.get(f"{server.url}{MODELS}", headers={"authorization": f"Bearer {warm}"}).status_code == 200
    requests = [
        (f"127.0.1.{n + 1}", MODELS, {"authorization": f"Bearer {_forged(victim, i)}"})
        for i in range(10)
        for n, victim in enumerate(victims)
    ]
    random.Random(10).shuffle(requests)
    before = _misses(server)
    _reset_peak(server)
    stop = server.workdir / "stop-probe"
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, server.url, warm, str(stop)], stdout=subprocess.PIPE, text=True
    )

    started = time.monotonic()
    statuses = asyncio.run(_burst(server, requests))
    elapsed = time.monotonic() - started
    stop.touch()
    latencies = json.loads(probe.communicate(timeout=60)[0])

    runs = _misses(server) - before
    during = sorted(ms for ms, _ in latencies)
    p99 = during[max(0, int(len(during) * 0.99) - 1)]
    print(
        f"\n/v1/: 150 addresses × 10 forged keys for 150 public ids in {elapsed:.1f} s → {runs:.0f} verifications "
        f"started; {statuses.count(401)}×401 {statuses.count(429)}×429 {statuses.count(503)}×503 "
        f"{statuses.count(0)}×no-answer; peak memory {_memory(server)['VmHWM']} MB\n"
        f"      warm key during the burst: {len(during)} requests, p50 {statistics.median(during):.1f} ms, "
        f"p99 {p99:.1f} ms, max {during[-1]:.1f} ms, statuses {sorted({s for _, s in latencies})}"
    )
    assert {status for _, status in latencies} == {200}
    # Queued behind argon2 (the bug of issue #10) a warm request waited seconds (3.2-6.5 s). The
    # 50 ms target is a figure, printed above and measured by bench/auth_bench.py on a quiet
    # machine; here the bound only has to tell "never behind the queue" from "behind it", on a
    # 2-core machine that may be running other suites (p99 133 ms seen under a load of 6).
    assert p99 <= 1000
    assert set(statuses) <= {401, 429, 503}
    assert statuses.count(401) <= runs  # every 401 here is a verification that was allowed to run


def test_150_concurrent_forged_management_keys_are_bounded(server: KeygateServer) -> None:
    (real,) = server.make_keys({"name": "ci", "model_patterns": "", "is_management": True})
    _reset_peak(server)
    rss_before = _memory(server)["VmRSS"]

    statuses = asyncio.run(
        _burst(
            server,
            [("127.0.0.3", "/api/v1/keys/", {"authorization": f"Bearer {_forged(real, n)}"}) for n in range(150)],
        )
    )

    growth = _memory(server)["VmHWM"] - rss_before
    print(
        f"\n/api/v1/: 150 concurrent forged management keys → {statuses.count(401)}×401 {statuses.count(429)}×429 "
        f"{statuses.count(503)}×503; peak memory growth {growth} MB"
    )
    assert statuses.count(401) <= 30
    assert set(statuses) <= {401, 429, 503}
    assert growth <= 300


def _sign_in_client(server: KeygateServer) -> tuple[httpx.AsyncClient, str]:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        page = browser.get("/accounts/login/")
        token, cookies = csrf_token(page.text), dict(browser.cookies)
    client = httpx.AsyncClient(
        base_url=server.url,
        cookies=cookies,
        headers={"referer": server.url + "/accounts/login/"},
        timeout=60,
        limits=httpx.Limits(max_connections=None),
    )
    return client, token


async def _sign_ins(server: KeygateServer, attempts: list[tuple[str, str]]) -> list[int]:
    client, token = _sign_in_client(server)

    async def one(username: str, password: str) -> int:
        data = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        try:
            return (await client.post("/accounts/login/", data=data)).status_code
        except httpx.HTTPError:
            return 0

    try:
        return await asyncio.gather(*(one(*attempt) for attempt in attempts))
    finally:
        await client.aclose()


def test_50_concurrent_sign_ins_with_random_usernames_are_never_a_5xx_and_memory_stays_bounded(
    server: KeygateServer,
) -> None:
    log_start = len(server.logs())
    _reset_peak(server)
    rss_before = _memory(server)["VmRSS"]

    statuses = asyncio.run(_sign_ins(server, [(f"ghost-{random.random()}", "guess") for _ in range(50)]))

    growth = _memory(server)["VmHWM"] - rss_before
    print(
        f"\nsign-in: 50 concurrent, random usernames → {statuses.count(200)}×200 {statuses.count(429)}×429 "
        f"{sum(s >= 500 for s in statuses)}×5xx; peak memory growth {growth} MB"
    )
    assert set(statuses) <= {200, 429}
    assert growth <= 300
    assert "database is locked" not in server.logs()[log_start:]


def test_twenty_parallel_password_guesses_leave_the_pair_locked_out(server: KeygateServer) -> None:
    """The exact count (5 passwords checked of 20) is tests/keys/test_signin.py's; here, the real
    server under real concurrency: no 5xx, at most the limit of passwords checked, and unless the right
    password was among them, it is refused afterwards (the limit held).

    When the right password was among them, what follows depends on the order the parallel requests
    ran in: the success clears the count (as axes does), and the guesses that land after it count
    again — enough of them lock the pair out, as they should. Both outcomes are right then."""
    for run in range(3):
        username, password = f"guessed-{run}", f"right-{run}-" + "x" * 12
        server.shell(
            f"from django.contrib.auth.models import User; User.objects.create_user({username!r}, password={password!r})"
        )
        attempts = [(username, f"wrong-{n}") for n in range(19)] + [(username, password)]
        random.Random(run).shuffle(attempts)
        statuses = asyncio.run(_sign_ins(server, attempts))
        (after,) = asyncio.run(_sign_ins(server, [(username, password)]))

        print(f"\nsign-in: 20 parallel guesses → {statuses.count(429)}×429, right password in: {302 in statuses}")
        assert set(statuses) <= {200, 302, 429}
        checked = len(statuses) - statuses.count(429)
        if 302 in statuses:
            assert checked <= 2 * LIMIT  # the limit before the success, and again after it
            assert after in {302, 429}
        else:
            assert checked <= LIMIT
            assert after == 429


def test_malformed_keys_from_an_office_nat_lock_nobody_out(server: KeygateServer) -> None:
    (colleague,) = server.make_keys({"name": "colleague", "model_patterns": "*"})
    office = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address="127.0.0.4"), timeout=10)
    with office:
        garbage = [
            office.get(MODELS, headers={"authorization": f"Bearer sk-kg-typo{n:046d}"}).status_code for n in range(40)
        ]
        first_use = office.get(MODELS, headers={"authorization": f"Bearer {colleague}"})

    assert set(garbage) == {401}
    assert first_use.status_code == 200


def test_allowed_networks_hold_on_the_gateway_and_the_management_api(server: KeygateServer) -> None:
    inference, management = server.make_keys(
        {"name": "net", "model_patterns": "*", "allowed_ips": ["127.0.0.5/32"]},
        {"name": "net-ci", "model_patterns": "", "is_management": True, "allowed_ips": ["127.0.0.5/32"]},
    )
    results = {}
    for address in ("127.0.0.5", "127.0.0.6"):
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=server.url, transport=transport, timeout=10) as client:
            results[address] = (
                client.get(MODELS, headers={"authorization": f"Bearer {inference}"}).status_code,
                client.get("/api/v1/keys/", headers={"authorization": f"Bearer {management}"}).status_code,
            )

    assert results == {"127.0.0.5": (200, 200), "127.0.0.6": (403, 403)}
