"""keys.leaks: the one revoke-and-record path every leak source feeds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keys import crypto, leaks, services
from keys.constants import KeyAction
from keys.leaks import Finding, Verdict
from keys.models import APIKey
from keys.signals import key_leaked

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def leak_notices():
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    key_leaked.connect(receiver)
    yield seen
    key_leaked.disconnect(receiver)


def _forged(public_id: str, prefix: str = "sk-kg") -> str:
    """A checksum-valid string with a real public id but a made-up secret."""
    head = f"{prefix}-{public_id}{'A' * crypto.SECRET_LENGTH}"
    return head + crypto.checksum(head)


def test_a_live_leaked_key_is_revoked_with_reason_url_source_and_actor_label(make_key, alice, leak_notices) -> None:
    key, raw = make_key(owner=alice)
    url = "https://github.com/alice/app/blob/abc/settings.py"

    verdicts = leaks.revoke_leaked([Finding(raw, url=url, source="content")], via="secret scanning")

    key.refresh_from_db()
    event = key.events.get(action=KeyAction.REVOKED)
    assert verdicts == [Verdict.REVOKED]
    assert key.is_revoked and key.revoked_by is None
    assert event.actor_label == "secret scanning"
    assert event.details == {"reason": "leaked", "url": url, "source": "content"}
    assert leak_notices == [
        {"signal": key_leaked, "key_id": key.pk, "public_id": key.public_id, "owner_id": alice.pk}
        | {"url": url, "source": "content"}
    ]


def test_an_already_revoked_key_is_a_no_op_not_an_error(make_key, leak_notices) -> None:
    key, raw = make_key()
    services.key_revoke(key=key)

    verdicts = leaks.revoke_leaked([Finding(raw, url="https://x.example/1")], via="leak report")

    assert verdicts == [Verdict.ALREADY_REVOKED]
    assert key.events.filter(action=KeyAction.REVOKED).count() == 1
    assert leak_notices == []


def test_a_key_reported_twice_in_one_batch_is_revoked_once_with_the_first_url(make_key) -> None:
    key, raw = make_key()
    verdicts = leaks.revoke_leaked(
        [Finding(raw, url="https://first.example"), Finding(raw, url="https://second.example")], via="keys scan"
    )
    assert verdicts == [Verdict.REVOKED, Verdict.REVOKED]
    assert [e.details["url"] for e in key.events.filter(action=KeyAction.REVOKED)] == ["https://first.example"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("not a key", id="garbage"),
        pytest.param("sk-kg-" + "A" * 50, id="bad-checksum"),
        pytest.param(None, id="not-a-string"),
        pytest.param("ghp_" + "a" * 36, id="another-product"),
    ],
)
def test_garbage_costs_no_database_query(raw, make_key) -> None:
    make_key()
    with CaptureQueriesContext(connection) as queries:
        verdicts = leaks.revoke_leaked([Finding(raw)], via="leak report")
    assert verdicts == [Verdict.NOT_OURS]
    assert len(queries) == 0


def test_another_installations_prefix_is_not_ours_and_costs_no_query(make_key) -> None:
    _, foreign = crypto.generate_key("sk-other")
    with CaptureQueriesContext(connection) as queries:
        assert leaks.revoke_leaked([Finding(foreign)], via="leak report") == [Verdict.NOT_OURS]
    assert len(queries) == 0


def test_a_forged_key_with_a_real_public_id_revokes_nothing(make_key) -> None:
    key, _ = make_key()
    assert leaks.revoke_leaked([Finding(_forged(key.public_id))], via="leak report") == [Verdict.NOT_OURS]
    key.refresh_from_db()
    assert not key.is_revoked


def test_a_mixed_batch_gets_one_verdict_per_finding_from_one_lookup_query(make_key) -> None:
    live, live_raw = make_key(name="live")
    dead, dead_raw = make_key(name="dead")
    services.key_revoke(key=dead)
    unknown = crypto.generate_key("sk-kg")[1]
    findings = [Finding(live_raw), Finding("garbage"), Finding(dead_raw), Finding(unknown)]

    with CaptureQueriesContext(connection) as queries:
        verdicts = leaks.revoke_leaked(findings, via="secret scanning")

    lookups = [q for q in queries if "keys_apikey" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")]
    assert verdicts == [Verdict.REVOKED, Verdict.NOT_OURS, Verdict.ALREADY_REVOKED, Verdict.NOT_OURS]
    assert "IN" in lookups[0]["sql"]
    assert APIKey.objects.get(pk=live.pk).is_revoked


def test_many_live_keys_are_all_revoked(make_key) -> None:
    pairs = [make_key(name=f"k{i}") for i in range(12)]
    verdicts = leaks.revoke_leaked([Finding(raw) for _, raw in pairs], via="secret scanning")
    assert verdicts == [Verdict.REVOKED] * 12
    assert APIKey.objects.filter(revoked_at__isnull=True).count() == 0


def test_long_urls_and_sources_are_truncated_in_the_event(make_key) -> None:
    key, raw = make_key()
    leaks.revoke_leaked([Finding(raw, url="https://x.example/" + "a" * 5000, source="s" * 500)], via="keys scan")
    details = key.events.get(action=KeyAction.REVOKED).details
    assert len(details["url"]) == leaks.MAX_URL_LENGTH and len(details["source"]) == leaks.MAX_SOURCE_LENGTH


def test_replacing_an_ownerless_leaked_key_keeps_the_user_who_minted_it(make_key, operator) -> None:
    key, raw = make_key(name="ci", model_patterns="", is_management=True, minted_by=operator)
    leaks.revoke_leaked([Finding(raw, url="https://example.com/log", source="ci log")], via="secret scanning")
    key.refresh_from_db()

    new, _raw = services.key_replace(key=key, actor=operator)

    assert (new.owner, new.minted_by, new.is_management) == (None, operator, True)
