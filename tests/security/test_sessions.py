"""Sessions: idle and absolute timeouts, enforced on the server; disabling a user ends their
sessions and their keys; staff-only pages refuse everyone else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from keys import receivers, services
from keys.middleware import LAST_SEEN, STARTED
from keys.signals import key_changed

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
IDLE = settings.KEYGATE_SESSION_IDLE_TIMEOUT
ABSOLUTE = settings.SESSION_COOKIE_AGE


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _session_writes(client: Client, path: str = "/") -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return sum(
        1
        for q in queries
        if "django_session" in q["sql"] and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))
    )


def test_the_defaults_are_one_hour_idle_and_twelve_hours_absolute() -> None:
    assert IDLE == 3600
    assert ABSOLUTE == 12 * 3600
    assert settings.SESSION_COOKIE_HTTPONLY
    assert "keys.middleware.SessionTimeoutMiddleware" in settings.MIDDLEWARE


def test_signing_in_starts_both_clocks(client: Client, alice) -> None:
    with time_machine.travel(START, tick=False):
        client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"})

        assert client.session[STARTED] == client.session[LAST_SEEN] == int(START.timestamp())


def test_a_session_used_within_the_idle_timeout_stays_signed_in(alice) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = _signed_in(alice)
        for _ in range(5):
            clock.shift(IDLE - 60)
            assert client.get("/").status_code == 200


def test_a_session_idle_for_longer_than_the_timeout_is_ended(alice) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = _signed_in(alice)
        key = client.session.session_key
        clock.shift(IDLE + 1)

        response = client.get("/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not Session.objects.filter(session_key=key).exists()


def test_an_idle_session_cannot_use_the_api_either(alice) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = _signed_in(alice)
        assert client.get("/api/v1/keys/").status_code == 200
        clock.shift(IDLE + 1)

        response = client.get("/api/v1/keys/")

    assert response.status_code in (401, 403)


def test_a_busy_session_still_ends_at_the_absolute_timeout(alice) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = _signed_in(alice)
        elapsed = 0
        while elapsed + 1800 <= ABSOLUTE:
            clock.shift(1800)
            elapsed += 1800
            assert client.get("/").status_code == 200, f"ended after {elapsed} s"
        clock.shift(ABSOLUTE - elapsed + 1)

        response = client.get("/")

    assert response.status_code == 302


def test_the_last_activity_is_written_at_most_once_a_minute(alice) -> None:
    with time_machine.travel(START, tick=False) as clock:
        client = _signed_in(alice)
        clock.shift(61)
        first = _session_writes(client)
        clock.shift(30)
        within_the_minute = [_session_writes(client) for _ in range(3)]
        clock.shift(31)
        after_the_minute = _session_writes(client)

    assert first == 1
    assert within_the_minute == [0, 0, 0]
    assert after_the_minute == 1


def test_a_session_from_before_the_timeouts_starts_counting_now(alice) -> None:
    client = _signed_in(alice)
    session = client.session
    del session[STARTED], session[LAST_SEEN]
    session.save()

    assert client.get("/").status_code == 200
    assert isinstance(client.session[STARTED], int)


def test_anonymous_requests_create_no_session(client: Client) -> None:
    client.get("/accounts/login/")

    assert Session.objects.count() == 0


# --- disabling a user -----------------------------------------------------------------------------


def test_disabling_a_user_deletes_their_sessions_and_only_theirs(alice, bob) -> None:
    alices = [_signed_in(alice), _signed_in(alice)]
    bobs = _signed_in(bob)

    alice.is_active = False
    alice.save()

    assert all(client.get("/").status_code == 302 for client in alices)
    assert bobs.get("/").status_code == 200
    assert Session.objects.count() == 1


def test_disabling_a_user_announces_each_of_their_keys_after_commit(
    alice, bob, make_key, django_capture_on_commit_callbacks
) -> None:
    mine = [make_key(name=f"a{i}", owner=alice)[0] for i in range(3)]
    make_key(name="b", owner=bob)
    heard: list[int] = []

    def listen(sender, key_id, **kwargs):
        heard.append(key_id)

    key_changed.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            alice.is_active = False
            alice.save()
        assert heard == []  # nothing before the commit: a cache must not re-read the old state
        for callback in callbacks:
            callback()
    finally:
        key_changed.disconnect(listen)

    assert sorted(heard) == sorted(key.pk for key in mine)


def test_a_disabled_users_keys_are_refused(alice, make_key) -> None:
    _, raw = make_key(owner=alice)

    alice.is_active = False
    alice.save()

    state = services.verify_key(raw)
    assert state is not None and state.inactive_reason(datetime.now(UTC)) == "owner_disabled"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda user: setattr(user, "first_name", "A"), id="another-field"),
        pytest.param(lambda user: setattr(user, "is_active", True), id="re-enabling"),
    ],
)
def test_saving_a_user_for_another_reason_announces_nothing(alice, make_key, change) -> None:
    make_key(owner=alice)
    client = _signed_in(alice)
    heard: list[int] = []
    key_changed.connect(lambda sender, key_id, **kw: heard.append(key_id), weak=False, dispatch_uid="t-listen")
    try:
        change(alice)
        alice.save()
    finally:
        key_changed.disconnect(dispatch_uid="t-listen")

    assert heard == []
    assert client.get("/").status_code == 200


def test_delete_sessions_counts_what_it_deleted(alice, bob) -> None:
    _signed_in(alice)
    _signed_in(alice)
    _signed_in(bob)

    assert receivers.delete_sessions(alice.pk) == 2
    assert receivers.delete_sessions(alice.pk) == 0


def test_disabling_a_user_in_the_admin_ends_their_session(admin_client, alice) -> None:
    client = _signed_in(alice)
    # The admin's user form as an operator submits it with "Active" unticked.
    form = {
        "username": "alice",
        "email": alice.email,
        "first_name": "",
        "last_name": "",
        "date_joined_0": alice.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": alice.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }

    response = admin_client.post(f"/admin/auth/user/{alice.pk}/change/", form)

    assert response.status_code == 302
    alice.refresh_from_db()
    assert not alice.is_active
    assert client.get("/").status_code == 302


# --- staff-only pages -----------------------------------------------------------------------------

STAFF_ONLY = [
    "/admin/",
    "/admin/keys/apikey/",
    "/admin/keys/keyevent/",
    "/admin/gateway/provider/",
    "/admin/gateway/provider/add/",
    "/admin/auth/user/",
    "/admin/axes/accessattempt/",
]


@pytest.mark.parametrize("path", STAFF_ONLY)
def test_staff_only_pages_send_a_signed_in_non_staff_user_to_the_admin_sign_in(alice, path: str) -> None:
    response = _signed_in(alice).get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", STAFF_ONLY)
def test_staff_only_pages_send_anonymous_visitors_to_the_admin_sign_in(client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", STAFF_ONLY)
def test_staff_only_pages_open_for_operators(admin_client, path: str) -> None:
    assert admin_client.get(path).status_code == 200


def test_a_non_staff_user_cannot_see_others_keys_by_asking_for_an_owner(alice, bob, make_key) -> None:
    make_key(name="bobs-secret-project", owner=bob)
    client = _signed_in(alice)

    page = client.get("/?owner=bob").content.decode()
    api = client.get("/api/v1/keys/?owner=bob").json()

    assert "bobs-secret-project" not in page
    assert api["count"] == 0
