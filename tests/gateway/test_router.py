"""gateway.router: which deployment each attempt goes to (priority, weight, breakers, panic)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from gateway.breaker import BreakerBoard, BreakerPolicy, State
from gateway.router import Router, weighted_choice
from gateway.routing import Deployment, RouteEntry, Upstream


def _upstream(name: str) -> Upstream:
    return Upstream(
        id=hash(name),
        name=name,
        kind="openai",
        base_url=f"http://{name}.test/v1",
        credential=None,
        connect_timeout=1,
        first_byte_timeout=1,
        idle_timeout=1,
    )


def _route(*deployments: tuple[str, int, int]) -> RouteEntry:
    """``(provider, priority, weight)`` each."""
    return RouteEntry(
        pattern="gpt-4o",
        deployments=tuple(
            Deployment(_upstream(name), "gpt-4o", priority, weight) for name, priority, weight in deployments
        ),
        priority=1,
    )


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def router(clock: Clock) -> Router:
    board = BreakerBoard(BreakerPolicy(failures=1, window=10, cooldown=30), clock=clock)
    return Router(board, random.Random(12))


def _next(router: Router, route: RouteEntry, tried: set[str] | None = None, eligible: set[str] | None = None) -> str:
    chosen = asyncio.run(router.next(route, tried or set(), eligible))
    return chosen.upstream.name if chosen else ""


def _open(router: Router, name: str) -> None:
    router.board.failure(f"{name}:gpt-4o", "upstream_unreachable")
    assert router.board.state(f"{name}:gpt-4o") is State.OPEN


def test_weights_split_traffic_in_proportion() -> None:
    rng = random.Random(7)
    route = _route(("a", 0, 3), ("b", 0, 1))

    picks = Counter(weighted_choice(list(route.deployments), rng).upstream.name for _ in range(4000))

    assert 0.70 <= picks["a"] / 4000 <= 0.80


def test_the_same_seed_gives_the_same_choices() -> None:
    route = _route(("a", 0, 3), ("b", 0, 1), ("c", 0, 2))

    def run(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [weighted_choice(list(route.deployments), rng).upstream.name for _ in range(50)]

    assert run(3) == run(3)


def test_the_lowest_priority_serves_while_it_is_healthy(router: Router) -> None:
    route = _route(("backup", 1, 100), ("primary", 0, 1))

    assert {_next(router, route) for _ in range(50)} == {"primary"}


def test_the_next_priority_serves_when_the_first_is_open(router: Router) -> None:
    route = _route(("primary", 0, 1), ("backup", 1, 1))
    _open(router, "primary")

    assert {_next(router, route) for _ in range(20)} == {"backup"}


def test_a_request_never_goes_to_the_same_deployment_twice(router: Router) -> None:
    route = _route(("a", 0, 1), ("b", 0, 1), ("c", 1, 1))
    tried: set[str] = set()
    order = []
    while name := _next(router, route, tried):
        order.append(name)
        tried.add(f"{name}:gpt-4o")

    assert sorted(order[:2]) == ["a", "b"] and order[2:] == ["c"]


def test_only_deployments_that_can_serve_the_request_are_chosen(router: Router) -> None:
    route = _route(("a", 0, 1), ("b", 1, 1))

    assert _next(router, route, eligible={"b:gpt-4o"}) == "b"


def test_a_route_with_every_breaker_open_still_tries_its_first_deployment(router: Router) -> None:
    route = _route(("primary", 0, 1), ("backup", 1, 1))
    _open(router, "primary")
    _open(router, "backup")

    assert _next(router, route) == "primary"


def test_a_single_deployment_route_is_tried_with_its_breaker_open(router: Router) -> None:
    route = _route(("only", 0, 1))
    _open(router, "only")

    assert _next(router, route) == "only"
    assert _next(router, route, tried={"only:gpt-4o"}) == ""


def test_after_a_healthy_deployment_failed_an_open_one_is_not_tried(router: Router) -> None:
    route = _route(("primary", 0, 1), ("backup", 1, 1))
    _open(router, "primary")

    assert _next(router, route, tried={"backup:gpt-4o"}) == ""


def test_after_the_cooldown_one_request_probes_and_the_rest_go_to_the_backup(router: Router, clock: Clock) -> None:
    route = _route(("primary", 0, 1), ("backup", 1, 1))
    _open(router, "primary")
    clock.now += 30

    assert [_next(router, route) for _ in range(5)] == ["primary", "backup", "backup", "backup", "backup"]


def test_a_probe_claimed_by_another_process_is_not_sent_here(router: Router, clock: Clock) -> None:
    route = _route(("primary", 0, 1), ("backup", 1, 1))
    _open(router, "primary")
    clock.now += 30

    async def claimed_elsewhere(key: str) -> bool:
        return False

    router.claim_probe = claimed_elsewhere

    assert _next(router, route) == "backup"
    assert router.board.get("primary:gpt-4o").probing_since is None


def test_a_deployment_of_weight_zero_is_drained(router: Router) -> None:
    route = _route(("drained", 0, 0), ("live", 0, 1))

    assert {_next(router, route) for _ in range(20)} == {"live"}


def test_a_provider_prefixed_model_keeps_its_deployments_breaker_key() -> None:
    from gateway.routing import RoutingTable

    table = RoutingTable(routes=[_route(("openai", 0, 1))], prices=[])
    table.routes[0] = RouteEntry(pattern="*", deployments=(Deployment(_upstream("openai")),), priority=1)

    route = table.resolve("openai/whatever-a-client-types")

    assert route is not None
    assert route.deployments[0].upstream_model == "whatever-a-client-types"
    assert route.deployments[0].key == "openai:*"  # bounded: never a client's text in a metric label
