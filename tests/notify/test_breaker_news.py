"""An upstream's outage reaches the operators: a breaker opening (closed → open) and closing again
(a probe succeeded) are each one notice; the re-openings of one outage are not announced again."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings

from gateway.breaker import BreakerBoard, BreakerPolicy, announce_outages
from notify.management.commands.notify import one_pass
from notify.models import Event, Kind
from tests.notify.support import SMTPServer

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _inline(fn: Callable[..., None], *args: object) -> None:
    fn(*args)


@pytest.fixture
def board() -> tuple[BreakerBoard, Clock]:
    clock = Clock()
    board = BreakerBoard(BreakerPolicy(failures=2, window=10, cooldown=5), clock=clock)
    announce_outages(board, submit=_inline)
    return board, clock


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with (
        SMTPServer() as server,
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=server.port,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            KEYGATE_PUBLIC_URL="https://keys.example.com",
        ),
    ):
        yield server


def _fail_twice(board: BreakerBoard, key: str) -> None:
    for _ in range(2):
        assert board.acquire(key)
        board.failure(key, "connect refused")


def test_an_outage_is_one_notice_when_it_begins_and_one_when_it_ends(board) -> None:
    board, clock = board
    _fail_twice(board, "primary:gpt-4o")
    assert list(Event.objects.values_list("kind", flat=True)) == [Kind.PROVIDER_DOWN]

    clock.now += 6  # the cooldown passes; the probe fails: the same outage goes on, unannounced
    assert board.acquire("primary:gpt-4o")
    board.failure("primary:gpt-4o", "connect refused")
    assert Event.objects.count() == 1

    clock.now += 6  # the next probe succeeds
    assert board.acquire("primary:gpt-4o")
    board.success("primary:gpt-4o")

    down, up = Event.objects.order_by("id")
    assert (down.kind, up.kind) == (Kind.PROVIDER_DOWN, Kind.PROVIDER_UP)
    assert down.data == {
        "deployment": {"key": "primary:gpt-4o", "provider": "primary", "model": "gpt-4o"},
        "error": "connect refused",
    }
    assert down.key is None


def test_the_operators_are_emailed_and_nobody_else(board, smtp: SMTPServer, alice, bob) -> None:
    board, _clock = board
    root = User.objects.create_superuser("root", "root@example.com", "x")
    alice.user_permissions.add(Permission.objects.get(codename="change_provider", content_type__app_label="gateway"))
    _fail_twice(board, "primary:gpt-4o")

    one_pass()

    assert sorted(m["To"] for m in smtp.messages) == sorted([root.email, alice.email])
    assert bob.email not in {m["To"] for m in smtp.messages}
    message = smtp.messages[0]
    assert message["Subject"].startswith('[Keygate] The upstream "primary:gpt-4o" is failing')
    text = message.get_body(("plain",)).get_content()
    assert "connect refused" in text and "https://keys.example.com/admin/gateway/provider/" in text
