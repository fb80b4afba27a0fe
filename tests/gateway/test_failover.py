"""gateway.proxy's attempts, in process: the real GatewayApp through httpx.ASGITransport in
front of two real upstream servers on loopback and a refused port (the live variant, with a
Keygate process and a configuration file, is test_failover_live.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from gateway.breaker import BreakerBoard, BreakerPolicy
from gateway.models import Deployment, Provider, ProviderKind, Route
from gateway.router import Router
from tests.gateway.conftest import InProcessGateway
from tests.support.live import free_port
from tests.support.upstream import UpstreamServer

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def primary() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def backup() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def routed(gateway: InProcessGateway, primary: UpstreamServer, backup: UpstreamServer) -> Iterator[InProcessGateway]:
    """Route ``m`` → primary (priority 0), backup (1); ``dead`` → a refused port, then backup."""
    one = Provider.objects.create(name="one", kind=ProviderKind.OPENAI, base_url=primary.url + "/v1")
    two = Provider.objects.create(name="two", kind=ProviderKind.OPENAI, base_url=backup.url + "/v1")
    dead = Provider.objects.create(name="dead", kind=ProviderKind.OPENAI, base_url=f"http://127.0.0.1:{free_port()}/v1")
    route = Route.objects.create(model_pattern="m", priority=1, max_attempts=3)
    Deployment.objects.create(route=route, provider=one, upstream_model="gpt-4o", priority=0)
    Deployment.objects.create(route=route, provider=two, upstream_model="gpt-4o", priority=1)
    refused = Route.objects.create(model_pattern="dead", priority=1)
    Deployment.objects.create(route=refused, provider=dead, priority=0)
    Deployment.objects.create(route=refused, provider=two, upstream_model="gpt-4o", priority=1)
    gateway.reload()
    gateway.app.forwarder.router = Router(BreakerBoard(BreakerPolicy(failures=2, cooldown=60)), random.Random(1))
    primary.fault = backup.fault = None
    yield gateway
    primary.fault = backup.fault = None


def _chat(gateway: InProcessGateway, model: str = "m") -> object:
    return gateway.request("POST", "/v1/chat/completions", json={"model": model, "messages": HI})


def test_a_healthy_primary_answers_in_one_attempt(routed: InProcessGateway) -> None:
    response = _chat(routed)

    assert response.status_code == 200
    assert (response.headers["x-keygate-provider"], response.headers["x-keygate-attempts"]) == ("one", "1")
    assert routed.usage_rows()[-1]["provider"] == "one" and routed.usage_rows()[-1]["attempts"] == 1


@pytest.mark.parametrize("fault", ["mock-error-503", "mock-error-529", "mock-error-401", "mock-reset"])
def test_a_failing_primary_moves_the_request_to_the_backup(
    routed: InProcessGateway, primary: UpstreamServer, fault: str
) -> None:
    primary.fault = fault

    response = _chat(routed)

    assert response.status_code == 200
    assert (response.headers["x-keygate-provider"], response.headers["x-keygate-attempts"]) == ("two", "2")
    row = routed.usage_rows()[-1]
    assert (row["provider"], row["attempts"], row["status_code"]) == ("two", 2, 200)


def test_a_refused_connection_moves_the_request_on(routed: InProcessGateway) -> None:
    response = _chat(routed, "dead")

    assert (response.status_code, response.headers["x-keygate-attempts"]) == (200, "2")


def test_a_request_the_upstream_calls_wrong_is_returned_not_retried(
    routed: InProcessGateway, primary: UpstreamServer, backup: UpstreamServer
) -> None:
    primary.fault = "mock-error-400"
    backup.reset()

    response = _chat(routed)

    assert response.status_code == 400
    assert response.headers["x-keygate-attempts"] == "1"
    assert backup.requests == []


def test_when_every_deployment_fails_the_client_gets_the_last_answer(
    routed: InProcessGateway, primary: UpstreamServer, backup: UpstreamServer
) -> None:
    primary.fault, backup.fault = "mock-error-503", "mock-error-529"

    response = _chat(routed)

    assert response.status_code == 529
    assert (response.headers["x-keygate-provider"], response.headers["x-keygate-attempts"]) == ("two", "2")


def test_an_open_breaker_sends_the_next_requests_straight_to_the_backup(
    routed: InProcessGateway, primary: UpstreamServer
) -> None:
    primary.fault = "mock-error-503"
    assert [_chat(routed).headers["x-keygate-attempts"] for _ in range(2)] == ["2", "2"]
    primary.reset()

    answers = [_chat(routed) for _ in range(5)]

    assert {(a.headers["x-keygate-provider"], a.headers["x-keygate-attempts"]) for a in answers} == {("two", "1")}
    assert primary.requests == []
