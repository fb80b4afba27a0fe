"""Sign-in throttling (django-axes) on the dashboard's and the admin's sign-in pages.

Five failures for one username from one address lock that pair out for 15 minutes: a clean
429 page, never a 500, and no password is checked (so no argon2) while locked. Other users and
other addresses are unaffected, so nobody can lock everyone out by failing on purpose.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.test import Client

from keys import crypto, services
from tests.security.helpers import csrf_token, failures_in

pytestmark = pytest.mark.django_db

DASHBOARD = "/accounts/login/"
ADMIN = "/admin/login/"
LIMIT = settings.AXES_FAILURE_LIMIT


def _sign_in(client: Client, path: str, username: str, password: str, ip: str = "198.51.100.7"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _fail(client: Client, path: str, username: str, times: int, ip: str = "198.51.100.7") -> list[int]:
    return [_sign_in(client, path, username, "wrong-password", ip).status_code for _ in range(times)]


def test_the_settings_are_five_failures_per_username_and_address_for_fifteen_minutes() -> None:
    assert settings.AXES_ENABLED
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


@pytest.mark.parametrize("path", [DASHBOARD, ADMIN])
def test_after_five_failures_even_the_right_password_gets_a_429_page(client: Client, operator, path: str) -> None:
    statuses = _fail(client, path, "operator", LIMIT - 1)

    locking = _sign_in(client, path, "operator", "wrong-password")
    locked = _sign_in(client, path, "operator", "operator-password-1")

    assert statuses == [200] * (LIMIT - 1)
    assert locking.status_code == 429 and locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-in attempts" in page and "15 minutes" in page
    assert locked["Retry-After"] == str(15 * 60)
    assert "no-cache" in locked["Cache-Control"]
    assert "_auth_user_id" not in client.session


def test_a_lockout_on_one_sign_in_page_holds_on_the_other(client: Client, operator) -> None:
    _fail(client, DASHBOARD, "operator", LIMIT)

    assert _sign_in(client, ADMIN, "operator", "operator-password-1").status_code == 429


def test_a_locked_out_attempt_never_checks_a_password(client: Client, alice, monkeypatch) -> None:
    _fail(client, DASHBOARD, "alice", LIMIT)
    checked: list[str] = []
    original = ModelBackend.authenticate

    def counting(self, request, username=None, password=None, **kwargs):
        checked.append(username)
        return original(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting)

    response = _sign_in(client, DASHBOARD, "alice", "alice-password-1")

    assert response.status_code == 429
    assert checked == []


def test_another_user_from_the_same_address_can_still_sign_in(client: Client, alice, bob) -> None:
    _fail(client, DASHBOARD, "alice", LIMIT)

    response = _sign_in(Client(), DASHBOARD, "bob", "bob-password-1")

    assert response.status_code == 302


def test_the_same_user_from_another_address_can_still_sign_in(client: Client, alice) -> None:
    _fail(client, DASHBOARD, "alice", LIMIT, ip="198.51.100.7")

    response = _sign_in(Client(), DASHBOARD, "alice", "alice-password-1", ip="203.0.113.9")

    assert response.status_code == 302


def test_an_unknown_username_is_locked_out_the_same_way(client: Client) -> None:
    statuses = _fail(client, DASHBOARD, "nobody-by-this-name", LIMIT + 1)

    assert statuses == [200] * (LIMIT - 1) + [429, 429]


def test_the_lockout_ends_after_the_cool_off(client: Client, alice) -> None:
    with time_machine.travel("2026-01-01 12:00:00+00:00", tick=False):
        _fail(client, DASHBOARD, "alice", LIMIT)
        assert _sign_in(client, DASHBOARD, "alice", "alice-password-1").status_code == 429
    with time_machine.travel("2026-01-01 12:16:00+00:00", tick=False):
        assert _sign_in(client, DASHBOARD, "alice", "alice-password-1").status_code == 302


def test_a_successful_sign_in_resets_the_count(client: Client, alice) -> None:
    _fail(client, DASHBOARD, "alice", LIMIT - 1)
    assert _sign_in(client, DASHBOARD, "alice", "alice-password-1").status_code == 302
    client.post("/accounts/logout/")

    statuses = _fail(Client(), DASHBOARD, "alice", LIMIT - 1)

    assert statuses == [200] * (LIMIT - 1)


def test_the_lockout_page_shows_no_password_and_no_stack_trace(client: Client, alice) -> None:
    _fail(client, DASHBOARD, "alice", LIMIT)

    response = _sign_in(client, DASHBOARD, "alice", "a-Very-Distinct-Password-42")

    page = response.content.decode()
    assert response.status_code == 429
    assert "a-Very-Distinct-Password-42" not in page and "Traceback" not in page
    assert 'name="csrfmiddlewaretoken"' in page  # the sign-in form, ready for after the cool-off


def test_failed_attempts_are_stored_without_the_password(client: Client, alice) -> None:
    from axes.models import AccessAttempt

    _fail(client, DASHBOARD, "alice", 2)

    attempt = AccessAttempt.objects.get(username="alice")
    assert attempt.failures_since_start == 2
    assert "wrong-password" not in attempt.post_data


# --- the management API's key authentication -------------------------------------------------------


def _guess(real: str, n: int) -> str:
    """A well-formed key (valid checksum) with ``real``'s public id and a wrong secret."""
    head = real[: len("sk-kg-") + 12] + f"{n:032d}"
    return head + crypto.checksum(head)


# The failure counters count in fixed one-minute windows: these tests stop the clock mid-minute,
# or a run whose guesses straddle a minute's end splits them over two windows and sees no 429.
MID_MINUTE = "2026-01-01 12:00:30+00:00"


def test_failed_management_key_guesses_are_throttled_per_address(alice) -> None:
    client = Client()

    with time_machine.travel(MID_MINUTE, tick=False):
        statuses = [
            client.get(
                "/api/v1/keys/",
                HTTP_AUTHORIZATION=f"Bearer {crypto.generate_key('sk-kg')[1]}",
                REMOTE_ADDR="198.51.100.9",
            ).status_code
            for _ in range(40)
        ]

    assert statuses.index(429) == 30  # KEYGATE_AUTH_FAILURES_PER_MINUTE: 30 guesses, then refused
    assert set(statuses[30:]) == {429}


def test_failed_guesses_for_one_public_id_are_throttled_from_any_address_but_its_cached_holder_is_not(alice) -> None:
    _, real = services.key_create(name="ci", model_patterns=[], owner=alice, is_management=True)
    holder = Client(HTTP_AUTHORIZATION=f"Bearer {real}", REMOTE_ADDR="198.51.100.10")
    assert holder.get("/api/v1/keys/").status_code == 200  # verified once: now known to this process

    with time_machine.travel(MID_MINUTE, tick=False):
        statuses = [
            Client()
            .get("/api/v1/keys/", HTTP_AUTHORIZATION=f"Bearer {_guess(real, n)}", REMOTE_ADDR=f"198.51.100.{20 + n}")
            .status_code
            for n in range(15)
        ]

    limit = settings.KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE
    assert statuses == [401] * limit + [429] * (15 - limit)  # 15 addresses, each under its own limit
    assert holder.get("/api/v1/keys/").status_code == 200


# --- on the real server (ASGI: django-axes takes its async path there) ------------------------------


@pytest.mark.live
@pytest.mark.parametrize("path", [DASHBOARD, ADMIN])
def test_a_live_server_locks_out_with_a_429_page_not_a_500(live, path: str) -> None:
    username = f"sec-ghost-{path.strip('/').replace('/', '-')}"
    log_start = len(live.server.logs())
    statuses = []
    with httpx.Client(base_url=live.url, timeout=10) as browser:
        for _ in range(LIMIT + 1):
            token = csrf_token(browser.get(path).text)
            response = browser.post(
                path,
                data={"username": username, "password": "wrong", "csrfmiddlewaretoken": token},
                headers={"Referer": live.url + path},
            )
            statuses.append(response.status_code)

    assert statuses == [200] * (LIMIT - 1) + [429, 429]
    assert "Too many failed sign-in attempts" in response.text and response.headers["retry-after"] == "900"
    assert failures_in(live.server.logs()[log_start:]) == []
