"""Delivering the outbox (notify/delivery.py) to a real SMTP server and a real webhook receiver
on loopback: who gets what, signatures, retries with backoff, and SSRF refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from keys import services
from notify import delivery, events, signing
from notify.management.commands.notify import one_pass
from notify.models import Delivery, Event, Kind, Preference, WebhookEndpoint
from tests.notify.support import SMTPServer, WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        smtp_settings = {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": server.port,
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "KEYGATE_PUBLIC_URL": "https://keys.example.com",
        }
        with override_settings(**smtp_settings):
            yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server, override_settings(KEYGATE_WEBHOOK_ALLOW_PRIVATE=True):
        yield server


def _endpoint(receiver: WebhookReceiver, **fields) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.create(url=receiver.url, **fields)
    receiver.secret = endpoint.secret
    return endpoint


def test_the_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example of the Standard Webhooks specification (and its reference libraries' tests).
    headers = signing.signed_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, tz=UTC),
        '{"test": 2432232314}',
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"


def test_an_expiring_key_sends_its_owner_one_email_and_a_verified_webhook_per_mark(
    alice, smtp: SMTPServer, receiver: WebhookReceiver
) -> None:
    _endpoint(receiver)  # an operator's endpoint: every event
    now = timezone.now()
    key, raw = services.key_create(
        name="batch job", model_patterns="*", owner=alice, expires_at=now + timedelta(days=6)
    )
    key.__class__.objects.filter(pk=key.pk).update(created_at=now - timedelta(days=60))
    for _ in range(3):
        one_pass()
    expiring = [m for m in smtp.messages if "expires in 7 days" in m["Subject"]]
    assert len(expiring) == 1
    message = expiring[0]
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == '[Keygate] Your key "batch job" expires in 7 days.'
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert key.masked in text and f"https://keys.example.com/keys/{key.public_id}/" in text
    assert f'href="https://keys.example.com/keys/{key.public_id}/"' in html
    hooks = [payload for _headers, payload in receiver.verified if payload["type"] == Kind.KEY_EXPIRING]
    assert len(hooks) == 1 and hooks[0]["data"]["days"] == 7 and hooks[0]["data"]["key"]["id"] == key.public_id
    assert receiver.refused == 0
    assert raw not in str(smtp.messages) and raw not in str(receiver.verified)


def test_the_email_is_in_the_recipients_language(alice, make_key, smtp: SMTPServer) -> None:
    Preference.objects.create(user=alice, language="ru")
    key, _raw = make_key(owner=alice, name="ночной")
    services.key_revoke(key=key)
    one_pass()
    subjects = sorted(m["Subject"].strip() for m in smtp.messages)
    assert subjects == ["[Keygate] Ключ «ночной» отозван и больше не работает.", "[Keygate] Ключ «ночной» создан."]


def test_a_muted_kind_sends_no_email_but_webhooks_still_go(alice, make_key, smtp, receiver) -> None:
    _endpoint(receiver)
    Preference.objects.create(user=alice, muted_kinds=[Kind.KEY_CREATED])
    make_key(owner=alice)
    one_pass()
    assert smtp.messages == []
    assert [payload["type"] for _h, payload in receiver.verified] == [Kind.KEY_CREATED]


def test_bobs_endpoint_hears_about_bobs_keys_only(alice, bob, make_key, receiver) -> None:
    _endpoint(receiver, owner=bob, kinds=[Kind.KEY_REVOKED])
    mine, _ = make_key(owner=bob)
    theirs, _ = make_key(owner=alice)
    services.key_revoke(key=mine)
    services.key_revoke(key=theirs)
    one_pass()
    assert [(p["type"], p["data"]["key"]["id"]) for _h, p in receiver.verified] == [(Kind.KEY_REVOKED, mine.public_id)]


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(alice, make_key, receiver) -> None:
    endpoint = _endpoint(receiver)
    receiver.answer = 500
    make_key(owner=None)
    one_pass()
    attempt = Delivery.objects.get(endpoint=endpoint)
    assert (attempt.status, attempt.attempts, attempt.last_error) == ("pending", 1, "HTTP 500")
    assert attempt.next_attempt_at - timezone.now() > timedelta(seconds=3)
    one_pass()
    assert Delivery.objects.get(pk=attempt.pk).attempts == 1  # not due yet
    for _ in delivery.BACKOFF:
        Delivery.objects.filter(pk=attempt.pk).update(next_attempt_at=timezone.now())
        one_pass()
    gave_up = Delivery.objects.get(pk=attempt.pk)
    assert (gave_up.status, gave_up.attempts) == ("failed", len(delivery.BACKOFF) + 1)
    ids = {headers["webhook-id"] for headers, _p in receiver.verified}
    assert ids == {gave_up.event.message_id}  # the same webhook-id on every retry


def test_a_receiver_that_recovers_gets_the_event_once(alice, make_key, receiver) -> None:
    endpoint = _endpoint(receiver)
    receiver.answer = 503
    make_key(owner=None)
    one_pass()
    receiver.answer = 200
    Delivery.objects.filter(endpoint=endpoint).update(next_attempt_at=timezone.now())
    one_pass()
    one_pass()
    assert Delivery.objects.get(endpoint=endpoint).status == "sent"
    assert len(receiver.verified) == 2  # the refused attempt and the accepted one, same webhook-id


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:9/hook", id="loopback"),
        pytest.param("http://[::1]/hook", id="IPv6 loopback"),
        pytest.param("http://169.254.169.254/latest/meta-data", id="cloud metadata"),
        pytest.param("http://10.1.2.3/hook", id="private"),
        pytest.param("http://[::ffff:127.0.0.1]/hook", id="IPv4-mapped loopback"),
        pytest.param("file:///etc/passwd", id="not http"),
    ],
)
def test_webhooks_to_internal_addresses_are_refused(url: str) -> None:
    assert delivery.address_refusal(url) is not None


def test_an_operator_may_allow_internal_addresses_explicitly() -> None:
    with override_settings(KEYGATE_WEBHOOK_ALLOW_PRIVATE=True):
        assert delivery.address_refusal("http://127.0.0.1:9/hook") is None


def test_a_delivery_to_a_refused_address_records_why(alice, make_key) -> None:
    WebhookEndpoint.objects.create(url="http://169.254.169.254/hook")
    make_key(owner=None)
    one_pass()
    assert Delivery.objects.get().last_error == "refused: 169.254.169.254 is not a public address"


def test_the_signing_secret_is_not_stored_in_clear(receiver) -> None:
    from tests.conftest import database_text

    endpoint = _endpoint(receiver)
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret not in database_text()


def test_events_with_no_one_to_tell_are_marked_done(make_key) -> None:
    make_key(owner=None)
    assert one_pass()["events"] == 1
    assert not Event.objects.filter(fanned_out_at__isnull=True).exists()
    assert events.scan_expiry(timezone.now()) == 0


def test_alice_turns_off_expiry_emails_on_her_notifications_page(alice) -> None:
    from django.test import Client

    client = Client()
    client.force_login(alice)
    page = client.get("/notifications/")
    assert page.status_code == 200 and "alice@example.com" in page.content.decode()
    wanted = [kind for kind in Kind.values if kind != Kind.KEY_EXPIRING]
    assert client.post("/notifications/", {"wanted": wanted, "language": "zh-hans"}).status_code == 302
    pref = Preference.objects.get(user=alice)
    assert (pref.muted_kinds, pref.language) == ([Kind.KEY_EXPIRING], "zh-hans")


def test_the_notifications_page_needs_a_signed_in_user() -> None:
    from django.test import Client

    assert Client().get("/notifications/").status_code == 302


def test_a_team_budget_email_names_the_team_and_says_why_the_admin_gets_it(alice) -> None:
    event = Event(kind=Kind.TEAM_BUDGET_SPENT, data={"team": {"id": 1, "name": "ML & Data"}, "percent": 100})
    subject, text, html = delivery.render_email(event, alice)
    assert (
        subject
        == '[Keygate] The team "ML & Data" has spent its whole budget for this period: its keys\' requests are refused until the next period.'
    )
    assert "admin of this team" in text and "Key:" not in text
    assert "ML &amp; Data" in html


def test_an_smtp_server_that_is_down_is_retried_later_and_nothing_is_lost(alice, make_key, settings) -> None:
    from tests.support.live import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    make_key(owner=alice)
    make_key(owner=alice)
    assert one_pass()["retry"] == 2
    assert set(Delivery.objects.values_list("status", "attempts")) == {("pending", 1)}
    with SMTPServer() as smtp:
        settings.EMAIL_PORT = smtp.port
        Delivery.objects.update(next_attempt_at=timezone.now())
        assert one_pass()["sent"] == 2
        assert len(smtp.messages) == 2
