"""keys.signin: the sign-in attempt is counted before the password check, and the check (or the
dummy hash for an unknown username) runs in a slot of the argon2 limiter."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.test import Client

from keys import costly, signin

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
IP = "198.51.100.7"


def _sign_in(username: str, password: str, ip: str = IP):
    return Client().post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


class CountingLimiter(costly.Argon2Limiter):
    def __init__(self, **options) -> None:
        super().__init__(**{"max_concurrent": 1, "memory_kib": 1, "max_queued": 0, "max_wait": 0, **options})
        self.costs: list[int] = []

    def acquire(self, cost_kib: int) -> None:
        self.costs.append(cost_kib)
        super().acquire(cost_kib)


@pytest.fixture
def limiter(monkeypatch) -> CountingLimiter:
    limiter = CountingLimiter(retry_after=3)
    monkeypatch.setattr(costly, "argon2_limiter", lambda: limiter)
    return limiter


def test_attempts_reserved_by_parallel_requests_refuse_the_next_without_checking_a_password(alice, monkeypatch) -> None:
    for _ in range(5):  # five guesses in flight right now, not yet recorded by axes
        assert signin._attempts().take(f"alice\0{IP}") == 0.0
    checked: list[str] = []
    original = ModelBackend.authenticate
    monkeypatch.setattr(
        ModelBackend, "authenticate", lambda self, *a, **k: checked.append("x") or original(self, *a, **k)
    )

    response = _sign_in("alice", "alice-password-1")

    assert response.status_code == 429 and "Too many failed sign-in attempts" in response.content.decode()
    assert checked == []


def test_a_successful_sign_in_clears_the_reserved_count(alice) -> None:
    for _ in range(4):
        _sign_in("alice", "wrong")

    assert _sign_in("alice", "alice-password-1").status_code == 302
    assert signin._attempts().take(f"alice\0{IP}") == 0.0
    assert [_sign_in("alice", "wrong").status_code for _ in range(3)] == [200] * 3


def test_the_password_check_runs_in_a_slot_weighted_by_the_hasher(alice, limiter) -> None:
    assert _sign_in("alice", "alice-password-1").status_code == 302

    assert limiter.costs == [signin.password_cost_kib()]
    assert (limiter.running, limiter.stats.runs) == (0, 1)


def test_an_unknown_username_takes_a_slot_too(limiter) -> None:
    assert _sign_in("nobody", "whatever").status_code == 200

    assert len(limiter.costs) == 1


def test_a_busy_argon2_line_answers_429_with_a_short_retry_after_and_counts_no_failure(alice, limiter) -> None:
    from axes.models import AccessAttempt

    limiter.acquire(1)  # someone else's hash is running; no line

    responses = [_sign_in("alice", "alice-password-1") for _ in range(8)]

    assert {response.status_code for response in responses} == {429}
    assert responses[0]["Retry-After"] == "3"
    assert "busy" in responses[0].content.decode()
    assert not AccessAttempt.objects.exists()
    limiter.release(1)
    assert _sign_in("alice", "alice-password-1").status_code == 302  # 8 refusals locked nobody out


def test_the_argon2_memory_of_a_password_check_is_the_default_hashers(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    assert signin.password_cost_kib() == 102_400
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert signin.password_cost_kib() == 1024


def test_without_a_request_the_backend_checks_the_password_uncounted(alice) -> None:
    backend = signin.BoundedModelBackend()

    assert backend.authenticate(None, username="alice", password="alice-password-1") == alice
    assert backend.authenticate(None, username="alice", password=None) is None


def test_twenty_parallel_guesses_check_at_most_five_passwords(alice, monkeypatch) -> None:
    import threading
    import time

    from django.test import RequestFactory

    checked: list[str] = []
    lock = threading.Lock()

    def slow_check(self, request, username=None, password=None, **kwargs):
        with lock:
            checked.append(password)
        time.sleep(0.05)  # a password hash takes a while: every guess is in flight at once
        return alice if password == "alice-password-1" else None

    monkeypatch.setattr(ModelBackend, "authenticate", slow_check)
    monkeypatch.setattr(
        costly,
        "argon2_limiter",
        lambda: costly.Argon2Limiter(max_concurrent=20, memory_kib=1 << 30, max_queued=0, max_wait=0),
    )
    backend = signin.BoundedModelBackend()
    passwords = [f"wrong-{n}" for n in range(19)] + ["alice-password-1"]
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def guess(password: str) -> None:
        request = RequestFactory().post(LOGIN, REMOTE_ADDR=IP)
        barrier.wait()
        try:
            user = backend.authenticate(request, username="alice", password=password)
            outcomes.append("in" if user else "wrong")
        except PermissionDenied:
            outcomes.append("locked")

    threads = [threading.Thread(target=guess, args=(password,)) for password in reversed(passwords)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(checked) == 5 and outcomes.count("locked") == 15
