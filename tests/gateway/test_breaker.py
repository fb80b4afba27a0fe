"""gateway.breaker: the circuit breaker's states, on a fake clock."""

from __future__ import annotations

import pytest
from django.db import connection

from gateway.breaker import BreakerBoard, BreakerPolicy, State, _news_thread, announce_outages
from notify.models import Event, Kind

KEY = "primary:gpt-4o"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def board(clock: Clock) -> BreakerBoard:
    return BreakerBoard(BreakerPolicy(failures=3, window=10, cooldown=30, probe_lease=60), clock=clock)


def _fail(board: BreakerBoard, times: int) -> None:
    for _ in range(times):
        assert board.acquire(KEY)
        board.failure(KEY, "upstream_503")


def test_a_new_breaker_is_closed_and_admits_everything(board: BreakerBoard) -> None:
    assert board.state(KEY) is State.CLOSED
    assert all(board.acquire(KEY) for _ in range(100))


def test_fewer_failures_than_the_threshold_keep_it_closed(board: BreakerBoard) -> None:
    _fail(board, 2)

    assert board.state(KEY) is State.CLOSED


def test_the_threshold_of_failures_within_the_window_opens_it(board: BreakerBoard) -> None:
    _fail(board, 3)

    assert board.state(KEY) is State.OPEN
    assert not board.available(KEY)
    assert not board.acquire(KEY)


def test_failures_spread_wider_than_the_window_do_not_open_it(board: BreakerBoard, clock: Clock) -> None:
    _fail(board, 2)
    clock.now += 11
    _fail(board, 2)

    assert board.state(KEY) is State.CLOSED


def test_an_open_breaker_refuses_for_the_whole_cooldown(board: BreakerBoard, clock: Clock) -> None:
    _fail(board, 3)
    clock.now += 29.9

    assert not board.acquire(KEY)
    assert board.cooldown_remaining(KEY) == pytest.approx(0.1)


def test_after_the_cooldown_exactly_one_probe_is_admitted(board: BreakerBoard, clock: Clock) -> None:
    _fail(board, 3)
    clock.now += 30

    assert board.acquire(KEY)
    assert board.state(KEY) is State.HALF_OPEN
    assert [board.acquire(KEY) for _ in range(10)] == [False] * 10


def test_a_successful_probe_closes_it(board: BreakerBoard, clock: Clock) -> None:
    _fail(board, 3)
    clock.now += 30
    assert board.acquire(KEY)

    board.success(KEY)

    assert board.state(KEY) is State.CLOSED
    assert all(board.acquire(KEY) for _ in range(10))


def test_a_failed_probe_opens_it_for_another_cooldown(board: BreakerBoard, clock: Clock) -> None:
    _fail(board, 3)
    clock.now += 30
    assert board.acquire(KEY)

    board.failure(KEY, "upstream_unreachable")

    assert board.state(KEY) is State.OPEN
    clock.now += 29
    assert not board.acquire(KEY)
    clock.now += 1
    assert board.acquire(KEY)


def test_a_probe_that_ended_without_a_verdict_frees_the_slot(board: BreakerBoard, clock: Clock) -> None:
    _fail(board, 3)
    clock.now += 30
    assert board.acquire(KEY)

    board.release(KEY)

    assert board.acquire(KEY)
    assert board.state(KEY) is State.HALF_OPEN


def test_a_probe_that_never_reports_is_replaced_after_its_lease(board: BreakerBoard, clock: Clock) -> None:
    _fail(board, 3)
    clock.now += 30
    assert board.acquire(KEY)

    clock.now += 59
    assert not board.acquire(KEY)
    clock.now += 1
    assert board.acquire(KEY)


def test_every_transition_is_announced_with_the_last_error(board: BreakerBoard, clock: Clock) -> None:
    seen: list[tuple[str, State, float, str]] = []
    board.on_transition.append(lambda *args: seen.append(args))

    _fail(board, 3)
    clock.now += 30
    board.acquire(KEY)
    board.success(KEY)

    assert [(state, error) for _, state, _, error in seen] == [
        (State.OPEN, "upstream_503"),
        (State.HALF_OPEN, "upstream_503"),
        (State.CLOSED, "upstream_503"),
    ]
    assert seen[0][2] == pytest.approx(30)


def test_the_error_rate_counts_the_last_window(board: BreakerBoard, clock: Clock) -> None:
    board.success(KEY)  # unknown breaker: nothing to count
    _fail(board, 1)
    board.success(KEY)
    board.success(KEY)

    assert board.error_rate(KEY) == (1, 3)
    clock.now += 11
    assert board.error_rate(KEY) == (0, 0)
    assert board.get(KEY).last_error == "upstream_503"


def test_a_transition_made_elsewhere_is_adopted_silently(board: BreakerBoard, clock: Clock) -> None:
    seen: list[object] = []
    board.on_transition.append(lambda *args: seen.append(args))

    board.apply_remote(KEY, State.OPEN, 12.0, "upstream_unreachable")

    assert board.state(KEY) is State.OPEN
    assert not board.acquire(KEY)
    clock.now += 12
    assert board.acquire(KEY)
    board.apply_remote(KEY, State.CLOSED, 0.0)
    assert board.state(KEY) is State.CLOSED
    assert [s for _, s, _, _ in seen] == [State.HALF_OPEN]  # only its own step


@pytest.mark.django_db(transaction=True)
def test_the_news_thread_keeps_no_database_connection_between_outages(clock: Clock, connections_kept_a_minute) -> None:
    # An idle connection held by this thread kept a PostgreSQL server slot for good, and the
    # test database could not be dropped at the end of the run.
    board = BreakerBoard(BreakerPolicy(failures=2, window=10, cooldown=5), clock=clock)
    announce_outages(board)  # the real thread, as in a server
    for _ in range(2):
        assert board.acquire(KEY)
        board.failure(KEY, "connect refused")
    # One worker: this runs after the announcement's job has returned, on the same thread.
    assert _news_thread().submit(lambda: connection.connection is None).result(timeout=10)
    assert list(Event.objects.values_list("kind", flat=True)) == [Kind.PROVIDER_DOWN]  # it did write
