"""Failover, load balancing and circuit breakers (issue #12), live: one Keygate process configured
by a KEYGATE_CONFIG file, in front of three real upstream servers on loopback and a port nobody
listens on.

The upstreams' faults come from the model a deployment asks for (``mock-error-503`` …) or, for
the breaker, from ``UpstreamServer.fault`` switched while the test runs. Timing-dependent claims
are asserted against times the upstreams record, never against how fast this machine is.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest_live import new_request_id, start_server
from tests.support.live import KeygateServer, free_port
from tests.support.upstream import UpstreamServer
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

SECRET = "upstream-secret-" + secrets.token_hex(8)
COOLDOWN = 5.0
FAILURES = 3
HI = [{"role": "user", "content": "Hi"}]

CONFIG = """\
providers:
  - {{name: primary, kind: openai, base_url: "{a}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD}}
  - {{name: backup, kind: openai, base_url: "{b}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD}}
  - {{name: claude-backup, kind: anthropic, base_url: "{b}", api_key_env: KEYGATE_UPSTREAM_GOOD}}
  - {{name: dead, kind: openai, base_url: "{dead}/v1", timeouts: {{connect: 2}}}}
  - name: slow
    kind: openai
    base_url: "{a}/v1"
    api_key_env: KEYGATE_UPSTREAM_GOOD
    timeouts: {{connect: 2, first_byte: 0.5, idle: 0.4}}
  - {{name: patient, kind: openai, base_url: "{a}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD}}
  - {{name: wrongcred, kind: openai, base_url: "{a}/v1", api_key_env: KEYGATE_UPSTREAM_WRONG}}
  - {{name: flip, kind: openai, base_url: "{c}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD, timeouts: {{first_byte: 30}}}}
  - {{name: doomed, kind: openai, base_url: "{d}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD}}
{primaries}routes:
  - model: load
    deployments: [{{provider: doomed, model: gpt-4o}}, {{provider: backup, model: gpt-4o, priority: 1}}]
  - model: refused
    deployments: [{{provider: dead, priority: 0}}, {{provider: backup, model: gpt-4o, priority: 1}}]
{faults}
  - model: slow-first-byte
    deployments: [{{provider: slow, model: mock-slow-first-byte}}, {{provider: backup, model: gpt-4o, priority: 1}}]
  - model: stall
    deployments: [{{provider: slow, model: mock-stall}}, {{provider: backup, model: gpt-4o, priority: 1}}]
  - model: bad-credential
    deployments: [{{provider: wrongcred, model: gpt-4o}}, {{provider: backup, model: gpt-4o, priority: 1}}]
  - model: cross-protocol
    deployments: [{{provider: dead}}, {{provider: claude-backup, model: claude-sonnet-4-5, priority: 1}}]
  - model: weighted
    deployments: [{{provider: primary, model: gpt-4o, weight: 3}}, {{provider: backup, model: gpt-4o, weight: 1}}]
  - model: breaker
    deployments: [{{provider: flip, model: gpt-4o}}, {{provider: backup, model: breaker-backup, priority: 1}}]
  - model: all-down
    deployments: [{{provider: primary, model: mock-error-500}}, {{provider: backup, model: mock-error-503, priority: 1}}]
  - model: retry-after
    retry_after_cap: 2
    deployments: [{{provider: patient, model: mock-error-429}}]
  - model: deadline
    deadline: 1
    deployments: [{{provider: primary, model: mock-slow-first-byte}}, {{provider: backup, model: gpt-4o, priority: 1}}]
prices:
  - {{model: mock-error-503, input_per_mtok: 1000, output_per_mtok: 1000}}
  - {{model: backup-priced, input_per_mtok: 2, output_per_mtok: 4}}
"""
#: route → the primary's upstream model (a fault); the backup answers as gpt-4o. Each route's
#: primary is a provider of its own (``p-<route>``, the same upstream), so each has its own
#: breaker and no test's failures open another's.
FAULT_ROUTES = {
    "answers-503": "mock-error-503",
    "answers-529": "mock-error-529",
    "answers-reset": "mock-reset",
    "answers-500": "mock-error-500",
    "answers-429": "mock-error-429",
    "answers-400": "mock-error-400",
    "priced": "mock-error-503",
    "limits-a": "mock-error-503",
    "limits-b": "mock-error-503",
    "limits-c": "mock-error-503",
    "metrics": "mock-error-503",
    "stream-503": "mock-error-503",
}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, UpstreamServer]]:
    with (
        UpstreamServer(expect_key=SECRET) as a,
        UpstreamServer(expect_key=SECRET) as b,
        UpstreamServer(expect_key=SECRET) as c,
        UpstreamServer(expect_key=SECRET) as d,
    ):
        yield {"a": a, "b": b, "c": c, "d": d}


@pytest.fixture(scope="module")
def server(
    upstreams: dict[str, UpstreamServer], migrated_database: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeygateServer]:
    workdir = tmp_path_factory.mktemp("failover")
    faults = "\n".join(
        f"  - {{model: {route}, deployments: [{{provider: p-{route}, model: {fault}}}, "
        f"{{provider: backup, model: {'backup-priced' if route == 'priced' else 'gpt-4o'}, priority: 1}}]}}"
        for route, fault in FAULT_ROUTES.items()
    )
    primaries = "".join(
        f'  - {{name: p-{route}, kind: openai, base_url: "{upstreams["a"].url}/v1", api_key_env: KEYGATE_UPSTREAM_GOOD}}\n'
        for route in FAULT_ROUTES
    )
    config = CONFIG.format(
        a=upstreams["a"].url, b=upstreams["b"].url, c=upstreams["c"].url, d=upstreams["d"].url, dead=f"http://127.0.0.1:{free_port()}",
        faults=faults, primaries=primaries,
    )  # fmt: skip
    path = workdir / "keygate.yaml"
    path.write_text(config)
    env = {
        "KEYGATE_CONFIG": str(path),
        "KEYGATE_UPSTREAM_GOOD": SECRET,
        "KEYGATE_UPSTREAM_WRONG": "not-the-secret",
        "KEYGATE_BREAKER_FAILURES": str(FAILURES),
        "KEYGATE_BREAKER_COOLDOWN": str(COOLDOWN),
        "KEYGATE_BREAKER_WINDOW": "60",
        "KEYGATE_ROUTER_SEED": "12",
        "KEYGATE_METRICS_TOKEN": "metrics-token",
    }
    keygate = start_server(workdir, migrated_database, env)
    try:
        keygate.keys = dict(  # type: ignore[attr-defined]
            zip(
                ("all", "rpm2"),
                keygate.make_keys(
                    {"name": "all", "model_patterns": ["*"]},
                    {"name": "rpm2", "model_patterns": ["*"], "rpm_limit": 2},
                ),
                strict=True,
            )
        )
        yield keygate
    finally:
        keygate.stop()


def _chat(server: KeygateServer, model: str, *, key: str = "all", stream: bool = False, **extra: Any) -> httpx.Response:
    request_id = new_request_id()
    headers = {"authorization": f"Bearer {server.keys[key]}", "x-request-id": request_id}  # type: ignore[attr-defined]
    body = {"model": model, "messages": HI, "stream": stream, **extra}
    response = httpx.post(server.url + "/v1/chat/completions", json=body, headers=headers, timeout=30)
    response.request_id = request_id  # type: ignore[attr-defined]
    return response


def _received(upstream: UpstreamServer, request_id: str) -> list[dict[str, Any]]:
    return [r for r in upstream.requests if r["headers"].get("x-request-id") == request_id]


def _usage(server: KeygateServer, request_id: str) -> tuple:
    def row() -> tuple | None:
        rows = server.query(
            "SELECT provider, attempts, status_code, cost_usd, input_tokens, output_tokens "
            "FROM keys_usagerecord WHERE request_id = ?",
            request_id,
        )
        return rows[0] if rows else None

    return wait_until(row, timeout=10, what=f"the usage record of {request_id}")


# --- fallback before the first byte ---------------------------------------------------------


@pytest.mark.parametrize(
    "route",
    [
        pytest.param("refused", id="primary-refuses-connections"),
        pytest.param("answers-503", id="primary-503"),
        pytest.param("answers-529", id="primary-529-overloaded"),
        pytest.param("answers-500", id="primary-500"),
        pytest.param("answers-429", id="primary-429"),
        pytest.param("answers-reset", id="primary-resets-the-connection"),
        pytest.param("slow-first-byte", id="primary-slow-first-byte"),
        pytest.param("stall", id="primary-stalls-mid-body-before-anything-reached-the-client"),
        pytest.param("bad-credential", id="primary-refuses-keygates-credential"),
    ],
)
def test_a_failing_primary_is_answered_by_the_backup(
    server: KeygateServer, upstreams: dict[str, UpstreamServer], route: str
) -> None:
    response = _chat(server, route)

    assert response.status_code == 200, response.text
    assert response.headers["x-keygate-provider"] == "backup"
    assert response.headers["x-keygate-attempts"] == "2"
    assert response.json()["choices"][0]["message"]["content"]
    assert len(_received(upstreams["b"], response.request_id)) == 1
    assert _usage(server, response.request_id)[:3] == ("backup", 2, 200)


def test_a_fallback_of_the_other_protocol_answers_through_translation(
    server: KeygateServer, upstreams: dict[str, UpstreamServer]
) -> None:
    response = _chat(server, "cross-protocol")

    assert response.status_code == 200, response.text
    assert response.headers["x-keygate-provider"] == "claude-backup"
    assert response.json()["object"] == "chat.completion"
    [received] = _received(upstreams["b"], response.request_id)
    assert received["path"] == "/v1/messages" and received["body"]["model"] == "claude-sonnet-4-5"


def test_a_stream_fails_over_before_its_first_byte(server: KeygateServer) -> None:
    response = _chat(server, "stream-503", stream=True)

    assert response.status_code == 200
    assert (response.headers["x-keygate-provider"], response.headers["x-keygate-attempts"]) == ("backup", "2")
    assert response.text.rstrip().endswith("data: [DONE]")


def test_an_anthropic_client_fails_over_too(server: KeygateServer, upstreams: dict[str, UpstreamServer]) -> None:
    headers = {"x-api-key": server.keys["all"], "anthropic-version": "2023-06-01"}  # type: ignore[attr-defined]
    body = {"model": "cross-protocol", "max_tokens": 50, "messages": HI}

    response = httpx.post(server.url + "/v1/messages", json=body, headers=headers, timeout=30)

    assert response.status_code == 200, response.text
    assert (response.headers["x-keygate-provider"], response.headers["x-keygate-attempts"]) == ("claude-backup", "2")
    assert response.json()["type"] == "message"


def test_a_failed_over_request_is_priced_at_the_deployment_that_answered(server: KeygateServer) -> None:
    response = _chat(server, "priced")

    assert response.headers["x-keygate-attempts"] == "2"
    _, _, _, cost, tokens_in, tokens_out = _usage(server, response.request_id)
    assert tokens_in and tokens_out
    assert Decimal(str(cost)) == (Decimal(2) * tokens_in + Decimal(4) * tokens_out) / Decimal(1_000_000)


def test_a_400_from_the_upstream_is_returned_and_not_retried(
    server: KeygateServer, upstreams: dict[str, UpstreamServer]
) -> None:
    response = _chat(server, "answers-400")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "mock upstream error 400"
    assert response.headers["x-keygate-provider"] == "p-answers-400"
    assert response.headers["x-keygate-attempts"] == "1"
    assert _received(upstreams["b"], response.request_id) == []


def test_when_every_deployment_fails_the_last_failure_is_returned(server: KeygateServer) -> None:
    response = _chat(server, "all-down")

    assert response.status_code == 503, response.text
    assert response.json()["error"]["message"] == "mock upstream error 503"
    assert response.headers["x-keygate-attempts"] == "2"


def test_a_short_retry_after_is_honoured_on_the_same_deployment_when_no_other_is_left(
    server: KeygateServer, upstreams: dict[str, UpstreamServer]
) -> None:
    response = _chat(server, "retry-after")

    assert response.status_code == 429
    assert response.headers["x-keygate-attempts"] == "2"
    first, second = _received(upstreams["a"], response.request_id)
    assert second["received_at"] - first["received_at"] >= 0.9  # the upstream asked for 1 s


def test_the_routes_deadline_bounds_the_wait_for_an_answer(
    server: KeygateServer, upstreams: dict[str, UpstreamServer]
) -> None:
    response = _chat(server, "deadline")

    assert response.status_code == 504
    assert "deadline" in response.json()["error"]["message"]
    assert _received(upstreams["b"], response.request_id) == []  # no time was left for the backup


def test_a_stream_that_stalls_mid_way_ends_with_an_error_event_and_is_not_retried(
    server: KeygateServer, upstreams: dict[str, UpstreamServer]
) -> None:
    response = _chat(server, "stall", stream=True)

    assert response.status_code == 200
    assert response.headers["x-keygate-provider"] == "slow"
    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["object"] == "chat.completion.chunk"
    assert "error" in json.loads(events[-1])
    assert _received(upstreams["b"], response.request_id) == []


def test_limits_are_admitted_once_per_client_request_not_per_attempt(server: KeygateServer) -> None:
    first = _chat(server, "limits-a", key="rpm2")
    second = _chat(server, "limits-b", key="rpm2")
    third = _chat(server, "limits-c", key="rpm2")

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]


def test_an_upstream_taken_down_under_load_costs_non_streamed_clients_no_error(
    server: KeygateServer, upstreams: dict[str, UpstreamServer]
) -> None:
    doomed = upstreams["d"]
    answers: list[httpx.Response] = []

    def client() -> None:
        for _ in range(30):
            answers.append(_chat(server, "load"))

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        clients = [pool.submit(client) for _ in range(6)]
        wait_until(lambda: len(doomed.requests) >= 20, timeout=30, what="load on the primary")
        doomed.stop()  # mid-load: in-flight requests are cut, new connections refused
        for done in clients:
            done.result()

    assert len(answers) == 180
    assert Counter(a.status_code for a in answers) == {200: 180}
    providers = Counter(a.headers["x-keygate-provider"] for a in answers)
    assert providers["doomed"] > 0 and providers["backup"] > 0


# --- load balancing ---------------------------------------------------------------------------


def test_weights_split_traffic_three_to_one(server: KeygateServer) -> None:
    providers = Counter(_chat(server, "weighted").headers["x-keygate-provider"] for _ in range(400))

    assert set(providers) == {"primary", "backup"}
    assert 0.65 <= providers["primary"] / 400 <= 0.85  # 75 % ± 10 points


# --- the circuit breaker ----------------------------------------------------------------------


def test_the_breaker_opens_admits_one_probe_after_the_cooldown_and_closes(
    server: KeygateServer, upstreams: dict[str, UpstreamServer]
) -> None:
    flip = upstreams["c"]
    flip.fault = "mock-error-503"
    try:
        # FAILURES failed attempts open the breaker; each request is still answered by the backup.
        for _ in range(FAILURES):
            response = _chat(server, "breaker")
            assert (response.status_code, response.headers["x-keygate-attempts"]) == (200, "2")
        # Keygate opened the breaker after the upstream saw the last failure and before the
        # client got its answer: the cooldown ends between these two times plus COOLDOWN.
        opened_after, opened_before = flip.requests[-1]["received_at"], time.time()

        # During the cooldown the dead deployment sees no traffic at all.
        during = []
        while time.time() < opened_after + 2 and len(during) < 20:
            response = _chat(server, "breaker")
            if time.time() < opened_after + COOLDOWN:  # answered, so decided, within the cooldown
                during.append(response)
        assert during
        assert {(r.headers["x-keygate-provider"], r.headers["x-keygate-attempts"]) for r in during} == {("backup", "1")}
        assert not any(_received(flip, r.request_id) for r in during)

        # After the cooldown: exactly one probe among concurrent requests (the probe is slow).
        flip.fault = "mock-slow-first-byte"
        wait_until(lambda: time.time() > opened_before + COOLDOWN + 0.1, timeout=COOLDOWN + 2, what="the cooldown")
        before = len(flip.requests)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _chat(server, "breaker"), range(8)))
        assert all(a.status_code == 200 for a in answers)
        assert len(flip.requests) - before == 1
        assert Counter(a.headers["x-keygate-provider"] for a in answers) == {"flip": 1, "backup": 7}

        # The probe succeeded: the breaker is closed and the primary takes the traffic again.
        flip.fault = None
        assert {_chat(server, "breaker").headers["x-keygate-provider"] for _ in range(5)} == {"flip"}
    finally:
        flip.fault = None


def test_metrics_count_attempts_fallbacks_and_breaker_transitions(server: KeygateServer) -> None:
    for _ in range(FAILURES):
        _chat(server, "metrics")

    text = httpx.get(server.url + "/metrics", headers={"authorization": "Bearer metrics-token"}).text

    key = 'deployment="p-metrics:mock-error-503"'
    assert f'keygate_upstream_attempts_total{{{key},result="failed"}} {float(FAILURES)}' in text
    assert f"keygate_fallbacks_total{{{key}}} {float(FAILURES)}" in text
    assert f'keygate_breaker_transitions_total{{{key},state="open"}} 1.0' in text
    assert 'keygate_upstream_attempts_total{deployment="backup:gpt-4o",result="answered"}' in text


# --- the file ---------------------------------------------------------------------------------


def test_gateway_reload_applies_an_edited_file_to_the_running_server(server: KeygateServer) -> None:
    path = Path(server.env["KEYGATE_CONFIG"])
    original = path.read_text()
    path.write_text(
        original.replace(
            "routes:\n", "routes:\n  - {model: reloaded, deployments: [{provider: backup, model: gpt-4o}]}\n", 1
        )
    )
    try:
        assert _chat(server, "reloaded").status_code == 404

        result = server.manage("gateway", "reload")

        assert result.stdout.strip() == f"{path}: applied"
        answer = wait_until(lambda: (r := _chat(server, "reloaded")).status_code == 200 and r, timeout=20)
        assert answer.headers["x-keygate-provider"] == "backup"
    finally:
        path.write_text(original)
        server.manage("gateway", "reload")


def test_an_invalid_file_stops_start_up_with_its_problems(migrated_database: Path, tmp_path: Path) -> None:
    path = tmp_path / "keygate.yaml"
    path.write_text("providers:\n  - {name: x, kind: openai, base_url: 'http://x.test/v1', api_key_env: SECRET_KEY}\n")

    with pytest.raises(RuntimeError, match=r"keygate.yaml:2: provider 'x': api_key_env 'SECRET_KEY' refused"):
        start_server(tmp_path, migrated_database, {"KEYGATE_CONFIG": str(path)})
