"""Lifecycle rules of keys.services: every write validated, audited and announced."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from keys import services
from keys.constants import KeyAction, KeyStatus
from keys.models import APIKey, KeyEvent
from keys.signals import key_changed
from tests.conftest import database_text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def announcements():
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    key_changed.connect(receiver)
    yield seen
    key_changed.disconnect(receiver)


def test_create_returns_the_plaintext_once_and_stores_only_a_hash(make_key) -> None:
    key, raw = make_key(name="analytics-script", model_patterns="gpt-4o, claude-*")
    assert key.key_hash.startswith("$argon2id$")
    assert key.model_patterns == ["gpt-4o", "claude-*"]
    assert raw not in key.key_hash
    assert not hasattr(key, "plaintext")


def test_the_database_holds_no_substring_of_any_plaintext_key(make_key, alice) -> None:
    raws = [make_key(name=f"k{i}", owner=alice)[1] for i in range(3)]
    key = APIKey.objects.get(name="k0")
    new, rotated_raw = services.key_rotate(key=key, grace=timedelta(hours=1))
    services.key_update(key=new, name="renamed", model_patterns=["gpt-4o"])
    services.key_revoke(key=new)
    text = database_text()
    for raw in [*raws, rotated_raw]:
        secret = raw[len("sk-kg-") + 12 :]  # the public id is stored by design; the rest never
        windows = {secret[i : i + 8] for i in range(len(secret) - 7)}
        assert not any(w in text for w in windows), raw[:18]


def test_each_change_writes_exactly_one_event_and_announces_it(make_key, alice, announcements) -> None:
    key, _ = make_key(owner=alice, actor=alice, via="test", ip="10.0.0.1")
    assert list(key.events.values_list("action", flat=True)) == [KeyAction.CREATED]
    services.key_update(key=key, name="new-name", actor=alice)
    services.key_revoke(key=key, actor=alice)
    actions = list(key.events.order_by("id").values_list("action", flat=True))
    assert actions == [KeyAction.CREATED, KeyAction.UPDATED, KeyAction.REVOKED]
    assert [a["key_id"] for a in announcements] == [key.pk] * 3
    first = key.events.order_by("id").first()
    assert first.actor == alice and first.actor_label == "test" and first.ip == "10.0.0.1"


def test_an_update_that_changes_nothing_writes_no_event(make_key) -> None:
    key, _ = make_key(name="same")
    services.key_update(key=key, name="same")
    assert key.events.count() == 1


def test_events_never_contain_the_key(make_key) -> None:
    key, raw = make_key()
    _, new_raw = services.key_rotate(key=key, grace=timedelta(0))
    for event in KeyEvent.objects.all():
        assert raw[12:] not in str(event.details) and new_raw[12:] not in str(event.details)


def test_revoking_twice_is_an_error_and_writes_nothing(make_key) -> None:
    key, _ = make_key()
    services.key_revoke(key=key)
    with pytest.raises(services.KeyServiceError, match="already revoked"):
        services.key_revoke(key=key)
    assert key.events.filter(action=KeyAction.REVOKED).count() == 1


def test_rotating_a_revoked_key_is_an_error(make_key) -> None:
    key, _ = make_key()
    services.key_revoke(key=key)
    with pytest.raises(services.KeyServiceError, match="revoked"):
        services.key_rotate(key=key, grace=timedelta(hours=1))


def test_rotating_a_key_twice_is_an_error(make_key) -> None:
    key, _ = make_key()
    services.key_rotate(key=key, grace=timedelta(hours=1))
    with pytest.raises(services.KeyServiceError, match="already rotated"):
        services.key_rotate(key=key, grace=timedelta(hours=1))


def test_updating_a_revoked_key_is_an_error(make_key) -> None:
    key, _ = make_key()
    services.key_revoke(key=key)
    with pytest.raises(services.KeyServiceError):
        services.key_update(key=key, name="x")


def test_rotation_inherits_name_owner_scopes_and_limits(make_key, alice) -> None:
    key, _ = make_key(
        name="svc",
        model_patterns="gpt-4o",
        owner=alice,
        description="d",
        metadata={"team": "a"},
        rpm_limit=60,
        allowed_ips=["10.0.0.0/8"],
    )
    new, raw = services.key_rotate(key=key, grace=timedelta(hours=24))
    assert (new.name, new.owner, new.model_patterns, new.description, new.metadata) == (
        "svc",
        alice,
        ["gpt-4o"],
        "d",
        {"team": "a"},
    )
    assert new.rpm_limit == 60 and new.allowed_ips == ["10.0.0.0/8"]
    assert new.rotated_from == key and new.public_id != key.public_id
    assert services.verify_key(raw).id == new.pk


def test_rotation_grace_period_keeps_the_old_key_working_until_it_ends(make_key) -> None:
    with time_machine.travel("2026-01-01 12:00:00+00:00", tick=False) as clock:
        key, old_raw = make_key()
        _new, new_raw = services.key_rotate(key=key, grace=timedelta(hours=24))
        key.refresh_from_db()
        assert key.expires_at == timezone.now() + timedelta(hours=24)
        assert key.status() == KeyStatus.EXPIRING
        clock.shift(timedelta(hours=23, minutes=59))
        assert services.verify_key(old_raw).inactive_reason(timezone.now()) is None
        clock.shift(timedelta(minutes=1))
        assert services.verify_key(old_raw).inactive_reason(timezone.now()) == "expired"
        assert services.verify_key(new_raw).inactive_reason(timezone.now()) is None
        assert key.status() == KeyStatus.EXPIRED


def test_rotation_with_no_grace_stops_the_old_key_now(make_key) -> None:
    with time_machine.travel("2026-01-01 12:00:00+00:00", tick=False):
        key, old_raw = make_key()
        services.key_rotate(key=key, grace=timedelta(0))
        assert services.verify_key(old_raw).inactive_reason(timezone.now()) == "expired"


def test_rotation_never_extends_an_old_key_that_expires_sooner(make_key) -> None:
    with time_machine.travel("2026-01-01 12:00:00+00:00", tick=False):
        key, _ = make_key(expires_at=timezone.now() + timedelta(hours=1))
        new, _ = services.key_rotate(key=key, grace=timedelta(days=7))
        key.refresh_from_db()
        assert key.expires_at == timezone.now() + timedelta(hours=1)
        assert new.expires_at == timezone.now() + timedelta(hours=1)  # renewed for the same lifetime


def test_a_past_expiry_is_refused(make_key) -> None:
    with pytest.raises(services.KeyServiceError, match="past"):
        make_key(expires_at=timezone.now() - timedelta(seconds=1))
    key, _ = make_key()
    with pytest.raises(services.KeyServiceError, match="past"):
        services.key_update(key=key, expires_at=timezone.now() - timedelta(days=1))


@pytest.mark.parametrize(
    "patterns",
    [
        pytest.param("", id="empty"),
        pytest.param("gpt 4o", id="space"),
        pytest.param("gpt-[45]o", id="brackets"),
        pytest.param("gpt-4o?", id="question-mark"),
        pytest.param(["gpt-4o", 5], id="non-string"),
        pytest.param("x" * 129, id="too-long"),
    ],
)
def test_bad_model_patterns_are_refused(make_key, patterns) -> None:
    with pytest.raises(services.KeyServiceError):
        make_key(model_patterns=patterns)


@pytest.mark.parametrize(
    ("patterns", "model", "allowed"),
    [
        pytest.param(("gpt-4o",), "gpt-4o", True, id="exact"),
        pytest.param(("gpt-4o",), "gpt-4o-mini", False, id="exact-is-not-prefix"),
        pytest.param(("claude-*",), "claude-sonnet-4-5", True, id="glob"),
        pytest.param(("claude-*",), "gpt-4o", False, id="glob-mismatch"),
        pytest.param(("*",), "anything/at:all", True, id="star"),
        pytest.param(("gpt-4o", "claude-*"), "claude-3", True, id="any-of"),
    ],
)
def test_model_patterns_match_as_documented(patterns, model, allowed) -> None:
    assert services.model_allowed(patterns, model) is allowed


def test_verify_rejects_garbage_without_touching_the_database(django_assert_num_queries, make_key) -> None:
    with django_assert_num_queries(0):
        assert services.verify_key("garbage") is None
        assert services.verify_key("sk-kg-" + "A" * 50) is None


def test_verify_rejects_a_well_formed_key_that_was_never_issued(make_key) -> None:
    from keys import crypto

    _, raw = crypto.generate_key("sk-kg")
    assert services.verify_key(raw) is None


def test_verify_returns_the_state_of_a_revoked_key_with_its_reason(make_key) -> None:
    key, raw = make_key()
    services.key_revoke(key=key)
    state = services.verify_key(raw)
    assert state is not None and state.inactive_reason(timezone.now()) == "revoked"


def test_a_disabled_owner_makes_the_key_inactive(make_key, alice) -> None:
    _, raw = make_key(owner=alice)
    alice.is_active = False
    alice.save()
    assert services.verify_key(raw).inactive_reason(timezone.now()) == "owner_disabled"


def test_find_key_accepts_public_id_and_masked_form(make_key) -> None:
    key, _ = make_key()
    assert services.find_key(key.public_id) == key
    assert services.find_key(key.masked) == key
    assert services.find_key(key.masked.replace("…", "...")) == key
    with pytest.raises(services.KeyServiceError):
        services.find_key("nope")


def test_limits_are_validated(make_key) -> None:
    with pytest.raises(services.KeyServiceError):
        make_key(rpm_limit=0)
    with pytest.raises(services.KeyServiceError):
        make_key(allowed_ips=["not-an-ip"])
    with pytest.raises(services.KeyServiceError):
        make_key(budget_period="fortnight")
    key, _ = make_key(allowed_ips="10.1.2.3/8, ::1")
    assert key.allowed_ips == ["10.0.0.0/8", "::1/128"]


def test_parse_duration_understands_the_documented_units() -> None:
    assert services.parse_duration("90d") == timedelta(days=90)
    assert services.parse_duration("24h") == timedelta(hours=24)
    assert services.parse_duration("2w") == timedelta(weeks=2)
    assert services.parse_duration("now") == timedelta(0)
    with pytest.raises(services.KeyServiceError):
        services.parse_duration("soon")


def test_pausing_writes_one_event_announces_it_and_the_state_says_paused(make_key, alice, announcements) -> None:
    key, raw = make_key(owner=alice)
    announcements.clear()
    services.key_pause(key=key, actor=alice, via="test")
    assert key.is_paused and key.status() == KeyStatus.PAUSED and not key.is_active
    assert list(key.events.order_by("id").values_list("action", flat=True)) == [KeyAction.CREATED, KeyAction.PAUSED]
    assert [a["key_id"] for a in announcements] == [key.pk]
    state = services.verify_key(raw)
    assert state.inactive_reason(timezone.now()) == "paused"


def test_resuming_makes_the_key_work_again_and_records_how_long_it_was_paused(make_key, announcements) -> None:
    key, raw = make_key()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        services.key_pause(key=key)
        clock.shift(timedelta(minutes=5))
        services.key_resume(key=key)
    assert not key.is_paused and key.status() == KeyStatus.ACTIVE
    event = key.events.order_by("-id").first()
    assert event.action == KeyAction.RESUMED and event.details == {"paused_seconds": 300}
    assert services.verify_key(raw).inactive_reason(timezone.now()) is None
    assert len(announcements) == 3  # created, paused, resumed


@pytest.mark.parametrize(
    "setup, call, message",
    [
        pytest.param("pause", services.key_pause, "already paused", id="pause-twice"),
        pytest.param(None, services.key_resume, "is not paused", id="resume-unpaused"),
        pytest.param("revoke", services.key_pause, "revoked and cannot be paused", id="pause-revoked"),
        pytest.param("revoke", services.key_resume, "revoked and cannot be resumed", id="resume-revoked"),
    ],
)
def test_pause_and_resume_refuse_a_key_in_the_wrong_state_and_write_nothing(make_key, setup, call, message) -> None:
    key, _ = make_key()
    if setup == "pause":
        services.key_pause(key=key)
    elif setup == "revoke":
        services.key_revoke(key=key)
    before = key.events.count()
    with pytest.raises(services.KeyServiceError, match=message):
        call(key=key)
    assert key.events.count() == before


def test_a_revoked_key_that_was_paused_reports_revoked(make_key) -> None:
    key, raw = make_key()
    services.key_pause(key=key)
    services.key_revoke(key=key)
    assert services.verify_key(raw).inactive_reason(timezone.now()) == "revoked"
    assert key.status() == KeyStatus.REVOKED


def test_service_refusals_are_translated_into_the_active_language(make_key) -> None:
    from django.utils import translation

    key, _ = make_key()
    services.key_revoke(key=key)
    for language, expected in (("ru", "отозван"), ("zh-hans", "吊销")):
        with translation.override(language), pytest.raises(services.KeyServiceError) as refusal:
            services.key_pause(key=key)
        assert expected in refusal.value.message, (language, refusal.value.message)
    with translation.override("ru"), pytest.raises(services.KeyServiceError) as refusal:
        services.clean_expires_at(timezone.now() - timedelta(days=1), now=timezone.now())
    assert "прошлом" in refusal.value.message
