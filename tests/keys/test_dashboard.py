"""The browser dashboard, through Django's test client: every rule of the issue, one test each."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from keys import services
from keys.constants import KeyStatus
from keys.models import APIKey, KeyEvent, UsageRecord
from tests.conftest import database_text

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"sk-kg-[0-9A-Za-z]{50}")


def model_names() -> list[str]:
    return ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"]


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def once(client, url: str) -> str:
    """The one-time token of the create/rotate form at ``url``."""
    html = client.get(url).content.decode()
    return re.search(r'name="once" value="([^"]+)"', html).group(1)


def create(client, **data):
    payload = {"name": "dev-server-integration", "models": ["*"], "expiry": "90d", "once": once(client, "/keys/new")}
    payload.update(data)
    return client.post(reverse("keys:create"), payload, REMOTE_ADDR="203.0.113.7")


def shown_key(response) -> str:
    return KEY_RE.search(response.content.decode()).group(0)


# --- signing in -----------------------------------------------------------------------------


def test_the_dashboard_asks_anonymous_visitors_to_sign_in(client) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"


def test_the_sign_in_form_has_real_labels_and_a_sign_in_button(client) -> None:
    html = client.get(reverse("login")).content.decode()
    assert re.search(r'<label for="id_username">Username:?</label>', html)
    assert re.search(r'<label for="id_password">Password:?</label>', html)
    assert re.search(r'<button type="submit"[^>]*>Sign in</button>', html)
    assert 'name="csrfmiddlewaretoken"' in html


def test_signing_in_leads_to_my_keys(client, alice) -> None:
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_user_can_change_their_password(as_alice, alice) -> None:
    response = as_alice.post(
        reverse("password_change"),
        {"old_password": "alice-password-1", "new_password1": "a-New-pass-9876", "new_password2": "a-New-pass-9876"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a-New-pass-9876")


def test_a_password_reset_sends_an_email_with_a_working_link(client, alice, settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert len(mail.outbox) == 1 and "Keygate" in mail.outbox[0].subject
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and b"new_password1" in form.content


def test_signing_out_is_a_post_and_ends_the_session(as_alice) -> None:
    html = as_alice.get("/").content.decode()
    assert re.search(r'<form method="post" action="/accounts/logout/">', html)
    as_alice.post(reverse("logout"))
    assert as_alice.get("/").status_code == 302


# --- my keys ---------------------------------------------------------------------------------


def test_my_keys_lists_name_masked_key_models_status_dates_and_requests_in_24h(as_alice, alice, make_key) -> None:
    key, raw = make_key(name="reporting", model_patterns="gpt-4o,claude-*", owner=alice)
    now = timezone.now()
    APIKey.objects.filter(pk=key.pk).update(last_used_at=now - timedelta(minutes=5), expires_at=now + timedelta(days=3))
    for age in (timedelta(hours=1), timedelta(hours=2), timedelta(hours=30)):
        UsageRecord.objects.create(key=key, created_at=now - age, endpoint="chat", model="gpt-4o", status_code=200)
    response = as_alice.get("/")
    html = response.content.decode()
    for text in ("reporting", key.masked, "gpt-4o", "claude-*", "Expiring", "5\xa0minutes ago"):
        assert text in html, text
    assert re.search(r"\(<time [^>]*>in 2\xa0days</time>\)", html)
    row = re.search(r"<tr>\s*<td class=\"select\">.*?</tr>", html, re.S).group(0)
    assert re.search(r'data-label="Requests \(24 h\)" class="num"><span>2</span></td>', row)
    assert 'href="/keys/new"' in html and "Create key" in html
    assert raw not in html and key.key_hash not in html


def test_the_list_reads_usage_counts_without_a_query_per_key(as_alice, alice, make_key, django_assert_max_num_queries):
    for n in range(8):
        make_key(name=f"key-{n}", owner=alice)
    with django_assert_max_num_queries(9):  # 8, and one for the teams alice is in (keys.policy.team_roles)
        as_alice.get("/")


def test_the_list_hides_revoked_and_expired_keys_until_asked(as_alice, alice, make_key) -> None:
    gone, _ = make_key(name="gone-key", owner=alice)
    services.key_revoke(key=gone)
    make_key(name="live-key", owner=alice)
    assert "gone-key" not in as_alice.get("/").content.decode()
    assert "gone-key" in as_alice.get("/?status=").content.decode()
    assert "live-key" not in as_alice.get("/?status=revoked").content.decode()


# --- create: the key is shown once ------------------------------------------------------------


def test_creating_a_key_shows_it_once_with_copy_snippets_warning_and_no_store(as_alice, alice) -> None:
    response = create(as_alice)
    assert response.status_code == 200
    html = response.content.decode()
    raw = shown_key(response)
    key = APIKey.objects.get(name="dev-server-integration")
    assert services.verify_key(raw).id == key.pk
    assert key.owner == alice and key.model_patterns == ["*"]
    assert "it will not be shown again" in html
    assert re.search(r'<button type="button"[^>]*data-copy-target="new-key"[^>]*>Copy</button>', html)
    assert 'data-copied-text="Copied"' in html
    for snippet in ("curl", "python-openai", "python-anthropic", "node", "langchain", "env"):
        code = re.search(rf'<code id="snippet-{snippet}"[^>]*>(.*?)</code>', html, re.S).group(1)
        assert raw in code, snippet
    assert "http://testserver/v1" in html and "from anthropic import Anthropic" in html
    assert f"OPENAI_API_KEY={raw}" in html
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control


def test_creating_a_key_is_audited_with_the_user_the_dashboard_and_the_address(as_alice, alice) -> None:
    create(as_alice)
    event = KeyEvent.objects.get()
    assert (event.action, event.actor, event.actor_label, event.ip) == ("created", alice, "dashboard", "203.0.113.7")


def test_reloading_the_new_key_page_never_shows_the_key_again(as_alice) -> None:
    token = once(as_alice, "/keys/new")
    data = {"name": "once-only", "models": ["*"], "expiry": "never", "once": token}
    first = as_alice.post(reverse("keys:create"), data)
    raw = shown_key(first)
    replay = as_alice.post(reverse("keys:create"), data)
    key = APIKey.objects.get()
    assert replay.status_code == 302 and replay["Location"] == f"/keys/{key.public_id}/"
    page = as_alice.get(replay["Location"])
    html = page.content.decode()
    assert "cannot be shown again" in html
    assert raw not in html and raw[18:] not in html and key.key_hash not in html
    assert APIKey.objects.count() == 1


def test_a_form_without_a_valid_token_creates_nothing(as_alice) -> None:
    response = as_alice.post(reverse("keys:create"), {"name": "x", "models": ["*"], "expiry": "never", "once": "bad"})
    assert response.status_code == 200 and "This form has expired" in response.content.decode()
    assert not APIKey.objects.exists()


def test_the_key_is_not_stored_anywhere(as_alice) -> None:
    raw = shown_key(create(as_alice))
    assert raw not in database_text()
    assert raw[18:] not in str(dict(as_alice.session))


def test_the_service_refusal_is_shown_on_the_form(as_alice) -> None:
    response = create(as_alice, models=[], patterns="gpt 4o!")
    html = response.content.decode()
    assert response.status_code == 200 and "invalid model pattern" in html
    assert not APIKey.objects.exists()


def test_a_past_expiry_date_is_refused_on_the_form(as_alice) -> None:
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = create(as_alice, expiry="date", expiry_date=yesterday)
    assert "the expiry is in the past" in response.content.decode()
    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("choice", "days"),
    [pytest.param("30d", 30, id="30 days"), pytest.param("90d", 90, id="90 days"), pytest.param("365d", 365, id="365")],
)
def test_expiry_choices_set_the_expiry(as_alice, choice, days) -> None:
    create(as_alice, expiry=choice)
    expires = APIKey.objects.get().expires_at
    assert abs(expires - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


def test_an_expiry_date_and_never_are_honoured(as_alice) -> None:
    day = timezone.localdate() + timedelta(days=10)
    create(as_alice, name="dated", expiry="date", expiry_date=day.isoformat())
    create(as_alice, name="forever", expiry="never")
    assert timezone.localdate(APIKey.objects.get(name="dated").expires_at) == day
    assert APIKey.objects.get(name="forever").expires_at is None


def test_limits_are_saved_on_create(as_alice) -> None:
    create(
        as_alice,
        rpm_limit="60",
        tpm_limit="100000",
        max_parallel="4",
        budget_tokens="5000000",
        budget_usd="25.50",
        budget_period="month",
        allowed_ips="10.0.0.0/8\n192.168.1.7",
    )
    key = APIKey.objects.get()
    assert (key.rpm_limit, key.tpm_limit, key.max_parallel, key.budget_tokens) == (60, 100000, 4, 5000000)
    assert str(key.budget_usd) == "25.5000" and key.budget_period == "month"
    assert key.allowed_ips == ["10.0.0.0/8", "192.168.1.7/32"]


def test_a_bad_network_is_refused_on_the_limits_field(as_alice) -> None:
    html = create(as_alice, allowed_ips="10.0.0.300/8").content.decode()
    assert "invalid IP network" in html and '<details class="group limits" open>' in html


def test_model_choices_come_from_the_configured_routes(as_alice, settings) -> None:
    settings.KEYGATE_MODEL_CHOICES = "tests.keys.test_dashboard.model_names"
    html = as_alice.get("/keys/new").content.decode()
    for name in ("gpt-4o-mini", "claude-sonnet-4-5"):
        assert f'value="{name}"' in html
    create(as_alice, models=["gpt-4o", "claude-sonnet-4-5"], patterns="o3-*")
    assert APIKey.objects.get().model_patterns == ["gpt-4o", "claude-sonnet-4-5", "o3-*"]


def test_without_the_gateway_common_models_are_suggested(as_alice, settings) -> None:
    settings.KEYGATE_MODEL_CHOICES = "gateway.no_such_module.model_choices"
    html = as_alice.get("/keys/new").content.decode()
    for name in ("*", "gpt-4o", "gpt-4o-mini", "claude-*"):
        assert f'value="{name}"' in html


def test_a_key_needs_at_least_one_model(as_alice) -> None:
    html = create(as_alice, models=[], patterns="").content.decode()
    assert "Choose at least one model" in html and not APIKey.objects.exists()


def test_a_user_can_create_a_management_key_without_models(as_alice, alice) -> None:
    response = create(as_alice, models=[], is_management="on")
    key = APIKey.objects.get()
    assert key.is_management and key.model_patterns == [] and key.owner == alice
    assert "/api/v1/keys/" in response.content.decode()


def test_a_user_cannot_choose_another_owner(as_alice, alice, bob) -> None:
    assert 'name="owner"' not in as_alice.get("/keys/new").content.decode()
    create(as_alice, owner=bob.pk)
    assert APIKey.objects.get().owner == alice


def test_staff_may_create_a_key_for_someone_or_for_the_operators(client, operator, alice) -> None:
    client.force_login(operator)
    create(client, name="for-alice", owner=alice.pk)
    create(client, name="for-ops", owner="")
    assert APIKey.objects.get(name="for-alice").owner == alice
    assert APIKey.objects.get(name="for-ops").owner is None


# --- key detail -------------------------------------------------------------------------------


def test_the_detail_page_shows_usage_recent_requests_and_the_audit_trail(as_alice, alice, make_key) -> None:
    key, raw = make_key(name="busy", owner=alice, actor=alice, via="dashboard")
    now = timezone.now()
    UsageRecord.objects.create(
        key=key,
        created_at=now,
        endpoint="chat",
        model="gpt-4o",
        status_code=200,
        input_tokens=10,
        output_tokens=32,
        latency_ms=123.4,
        request_id="req_abc123",
    )
    UsageRecord.objects.create(
        key=key,
        created_at=now - timedelta(days=2),
        endpoint="messages",
        model="claude-x",
        status_code=429,
        request_id="req_def456",
    )
    response = as_alice.get(f"/keys/{key.public_id}/")
    html = response.content.decode()
    chart = response.context["chart"]
    assert chart["models"] == ["claude-x", "gpt-4o"] and len(chart["days"]) == 30
    assert chart["requests"]["gpt-4o"][-1] == 1 and chart["tokens"]["gpt-4o"][-1] == 42
    assert '<script id="usage-data" type="application/json">' in html
    assert 'src="/static/keygate/chart.js"' in html
    for text in ("req_abc123", "req_def456", "10 / 32", "123 ms", "429", "Audit trail", "Created", "dashboard"):
        assert text in html, text
    assert raw not in html and key.key_hash not in html


def test_the_chart_period_can_be_changed(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    assert len(as_alice.get(f"/keys/{key.public_id}/?days=7").context["chart"]["days"]) == 7
    assert len(as_alice.get(f"/keys/{key.public_id}/?days=oops").context["chart"]["days"]) == 30


# --- edit -------------------------------------------------------------------------------------


def test_editing_goes_through_the_service_and_is_audited(as_alice, alice, make_key) -> None:
    key, _ = make_key(name="before", owner=alice, model_patterns="gpt-4o")
    form = as_alice.get(f"/keys/{key.public_id}/edit").content.decode()
    assert 'value="before"' in form and "Keep the current expiry" in form
    response = as_alice.post(
        f"/keys/{key.public_id}/edit",
        {"name": "after", "models": ["gpt-4o"], "patterns": "claude-*", "expiry": "keep", "rpm_limit": "30"},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.model_patterns, key.rpm_limit) == ("after", ["gpt-4o", "claude-*"], 30)
    event = key.events.get(action="updated")
    assert event.actor == alice and event.actor_label == "dashboard"
    assert event.details["fields"] == ["model_patterns", "name", "rpm_limit"]


def test_a_revoked_key_cannot_be_edited(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    services.key_revoke(key=key)
    response = as_alice.post(f"/keys/{key.public_id}/edit", {"name": "x", "models": ["*"], "expiry": "keep"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name != "x"


# --- rotate -----------------------------------------------------------------------------------


def test_rotating_shows_the_new_key_once_and_the_old_one_expires_after_the_grace(as_alice, alice, make_key) -> None:
    old, _ = make_key(name="rolling", owner=alice, rpm_limit=10)
    url = f"/keys/{old.public_id}/rotate"
    response = as_alice.post(url, {"grace": "1h", "once": once(as_alice, url)})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    raw = shown_key(response)
    new = APIKey.objects.get(rotated_from=old)
    assert services.verify_key(raw).id == new.pk and new.rpm_limit == 10
    old.refresh_from_db()
    assert abs(old.expires_at - (timezone.now() + timedelta(hours=1))) < timedelta(minutes=1)
    assert "keeps working until" in response.content.decode()
    detail = as_alice.get(f"/keys/{old.public_id}/").content.decode()
    assert "expires in" in detail and new.masked in detail and raw not in detail


def test_rotating_with_no_grace_stops_the_old_key_now(as_alice, alice, make_key) -> None:
    old, _ = make_key(owner=alice)
    url = f"/keys/{old.public_id}/rotate"
    response = as_alice.post(url, {"grace": "now", "once": once(as_alice, url)})
    assert "has stopped working" in response.content.decode()
    old.refresh_from_db()
    assert old.status() == KeyStatus.EXPIRED


def test_reloading_the_rotated_key_page_does_not_rotate_again(as_alice, alice, make_key) -> None:
    old, _ = make_key(owner=alice)
    url = f"/keys/{old.public_id}/rotate"
    data = {"grace": "24h", "once": once(as_alice, url)}
    as_alice.post(url, data)
    replay = as_alice.post(url, data)
    new = APIKey.objects.get(rotated_from=old)
    assert replay.status_code == 302 and replay["Location"] == f"/keys/{new.public_id}/"
    assert APIKey.objects.count() == 2


def test_rotating_a_rotated_key_is_refused_on_the_form(as_alice, alice, make_key) -> None:
    old, _ = make_key(owner=alice)
    services.key_rotate(key=old, grace=timedelta(hours=1))
    url = f"/keys/{old.public_id}/rotate"
    response = as_alice.post(url, {"grace": "now", "once": once(as_alice, url)})
    assert response.status_code == 200 and "already rotated" in response.content.decode()


# --- revoke -----------------------------------------------------------------------------------


def test_revoking_asks_for_confirmation_first(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    html = as_alice.get(f"/keys/{key.public_id}/revoke").content.decode()
    assert re.search(r'<button type="submit"[^>]*>Revoke</button>', html) and "cannot be undone" in html
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoking_stops_the_key_at_once_and_is_audited(as_alice, alice, make_key) -> None:
    key, raw = make_key(owner=alice)
    response = as_alice.post(f"/keys/{key.public_id}/revoke", REMOTE_ADDR="198.51.100.2")
    assert response.status_code == 302
    assert services.verify_key(raw).inactive_reason(timezone.now()) == "revoked"
    event = key.events.get(action="revoked")
    assert (event.actor, event.actor_label, event.ip) == (alice, "dashboard", "198.51.100.2")
    detail = as_alice.get(response["Location"]).content.decode()
    assert "Revoked" in detail and "no longer works" in detail
    assert f'href="/keys/{key.public_id}/rotate"' not in detail


def test_revoking_twice_shows_the_refusal(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    services.key_revoke(key=key)
    response = as_alice.post(f"/keys/{key.public_id}/revoke")
    assert response.status_code == 200 and "already revoked" in response.content.decode()


# --- languages, security headers, assets ------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "text"),
    [
        pytest.param("zh-CN,zh;q=0.9", "创建密钥", id="simplified chinese"),
        pytest.param("ru-RU,ru;q=0.9", "Создать ключ", id="russian"),
        pytest.param("en-US,en;q=0.9", "Create key", id="english"),
    ],
)
def test_the_language_is_detected_from_the_browser(as_alice, accept, text) -> None:
    html = as_alice.get("/", HTTP_ACCEPT_LANGUAGE=accept).content.decode()
    assert text in html


def test_the_language_can_be_switched(as_alice) -> None:
    html = as_alice.get("/").content.decode()
    assert 'action="/i18n/setlang/"' in html and 'lang="zh-hans"' in html
    response = as_alice.post("/i18n/setlang/", {"language": "ru", "next": "/"})
    assert response.status_code == 302
    assert "Мои ключи" in as_alice.get("/").content.decode()


def test_every_page_carries_a_strict_content_security_policy(as_alice) -> None:
    csp = as_alice.get("/")["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src


def test_pages_have_no_inline_script_and_no_external_assets(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    pages = ["/", "/keys/new", f"/keys/{key.public_id}/", f"/keys/{key.public_id}/rotate", reverse("login")]
    pages.append(None)
    for url in pages:
        if url is None:
            html = create(as_alice).content.decode()
        else:
            html = as_alice.get(url).content.decode()
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
        assert not re.search(r"""(src|href)="(https?:)?//""", html), url
        assert " style=" not in html and "onclick" not in html


def test_every_form_carries_a_csrf_token(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    for url in [
        "/keys/new",
        f"/keys/{key.public_id}/edit",
        f"/keys/{key.public_id}/rotate",
        f"/keys/{key.public_id}/revoke",
        reverse("password_change"),
    ]:
        html = as_alice.get(url).content.decode()
        for form in re.findall(r"<form[^>]*method=\"post\".*?</form>", html, re.S):
            assert "csrfmiddlewaretoken" in form, url


def test_a_post_without_the_csrf_token_is_refused(alice, make_key) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    key, _ = make_key(owner=alice)
    assert client.post(f"/keys/{key.public_id}/revoke").status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_admin_still_renders_under_the_policy(client, operator, make_key) -> None:
    key, _ = make_key()
    client.force_login(operator)
    for url in ["/admin/", "/admin/keys/apikey/", f"/admin/keys/apikey/{key.pk}/change/", "/admin/keys/apikey/add/"]:
        response = client.get(url)
        assert response.status_code == 200 and "Content-Security-Policy" in response, url
        for tag in re.findall(r"<script[^>]*>", response.content.decode()):
            assert "src=" in tag or "application/json" in tag, (url, tag)


def test_the_static_assets_ship_with_the_project(client) -> None:
    for path in ("keygate/app.css", "keygate/copy.js", "keygate/chart.js"):
        response = client.get(f"/static/{path}")
        assert response.status_code == 200, path


# --- pause, resume, bulk actions ------------------------------------------------------------


def names_in_list(client, **query) -> list[str]:
    html = client.get("/", query).content.decode()
    return re.findall(r'<th scope="row" data-label="Name"><span><a href="[^"]+">([^<]+)</a>', html)


def test_the_key_page_pauses_and_resumes_a_key_with_a_message_that_takes_focus(as_alice, alice, make_key) -> None:
    key, _ = make_key(name="nightly", owner=alice)
    page = as_alice.get(reverse("keys:detail", args=[key.public_id])).content.decode()
    assert f'action="/keys/{key.public_id}/pause"' in page
    paused = as_alice.post(reverse("keys:pause", args=[key.public_id]), follow=True).content.decode()
    key.refresh_from_db()
    assert key.is_paused and "nightly paused" in paused
    assert 'class="messages" role="status" tabindex="-1" autofocus' in paused
    assert f'action="/keys/{key.public_id}/resume"' in paused and "Paused" in paused
    as_alice.post(reverse("keys:resume", args=[key.public_id]))
    key.refresh_from_db()
    assert not key.is_paused
    assert key.events.filter(action="paused", actor_label="dashboard", actor=alice).exists()


def test_pause_is_post_only_and_bob_cannot_pause_alices_key(as_alice, client, alice, bob, make_key) -> None:
    key, _ = make_key(owner=alice)
    assert as_alice.get(reverse("keys:pause", args=[key.public_id])).status_code == 405
    client.force_login(bob)
    assert client.post(reverse("keys:pause", args=[key.public_id])).status_code == 404
    key.refresh_from_db()
    assert not key.is_paused


@pytest.mark.parametrize("action, attribute", [("pause", "is_paused"), ("revoke", "is_revoked")])
def test_bulk_actions_show_a_confirmation_page_then_act_on_the_ticked_keys(
    as_alice, alice, make_key, action, attribute
) -> None:
    one, _ = make_key(name="one", owner=alice)
    two, _ = make_key(name="two", owner=alice)
    untouched, _ = make_key(name="three", owner=alice)
    ticked = {"bulk_action": action, "key": [one.public_id, two.public_id]}
    confirm = as_alice.post(reverse("keys:bulk"), ticked)
    html = confirm.content.decode()
    assert confirm.status_code == 200 and one.masked in html and two.masked in html and untouched.masked not in html
    assert not any(getattr(APIKey.objects.get(pk=k.pk), attribute) for k in (one, two))
    done = as_alice.post(reverse("keys:bulk"), {**ticked, "confirm": "1"}, follow=True)
    assert "2 keys" in done.content.decode()
    assert all(getattr(APIKey.objects.get(pk=k.pk), attribute) for k in (one, two))
    assert not getattr(APIKey.objects.get(pk=untouched.pk), attribute)


def test_bulk_actions_ignore_keys_the_user_cannot_see(client, alice, bob, make_key) -> None:
    alices, _ = make_key(owner=alice)
    bobs, _ = make_key(owner=bob)
    client.force_login(bob)
    client.post(
        reverse("keys:bulk"), {"bulk_action": "revoke", "key": [alices.public_id, bobs.public_id], "confirm": "1"}
    )
    assert not APIKey.objects.get(pk=alices.pk).is_revoked and APIKey.objects.get(pk=bobs.pk).is_revoked


def test_a_bulk_post_without_ticked_keys_or_with_an_unknown_action_changes_nothing(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    for data in ({"bulk_action": "revoke"}, {"bulk_action": "delete", "key": [key.public_id], "confirm": "1"}):
        response = as_alice.post(reverse("keys:bulk"), data)
        assert response.status_code == 302
    assert not APIKey.objects.get(pk=key.pk).is_revoked


# --- sorting, searching, spend --------------------------------------------------------------


def test_the_list_sorts_by_any_sortable_column_both_ways(as_alice, alice, make_key) -> None:
    now = timezone.now()
    for name, used, expires, requests in (("b", 3, 30, 1), ("a", 1, 10, 3), ("c", None, None, 2)):
        key, _ = make_key(name=name, owner=alice)
        APIKey.objects.filter(pk=key.pk).update(
            last_used_at=now - timedelta(hours=used) if used else None,
            expires_at=now + timedelta(days=expires) if expires else None,
        )
        for _n in range(requests):
            UsageRecord.objects.create(key=key, endpoint="chat", model="gpt-4o", status_code=200)
    assert names_in_list(as_alice, sort="name") == ["a", "b", "c"]
    assert names_in_list(as_alice, sort="-name") == ["c", "b", "a"]
    assert names_in_list(as_alice, sort="-last_used") == ["a", "b", "c"]  # never used: last either way
    assert names_in_list(as_alice, sort="last_used") == ["b", "a", "c"]
    assert names_in_list(as_alice, sort="expires") == ["a", "b", "c"]
    assert names_in_list(as_alice, sort="-requests") == ["a", "c", "b"]
    assert names_in_list(as_alice, sort="-created") == ["c", "a", "b"]
    assert names_in_list(as_alice, sort="nonsense") == ["c", "a", "b"]


def test_sortable_headers_link_to_their_order_and_say_which_is_current(as_alice, alice, make_key) -> None:
    make_key(owner=alice)
    html = as_alice.get("/", {"sort": "-requests", "q": "te"}).content.decode()
    assert 'aria-sort="descending"' in html and html.count('aria-sort="none"') == 4
    assert "sort=requests" in html and "q=te" in html  # clicking again reverses, keeps the search


@pytest.mark.parametrize("typed", ["exact-name", "EXACT", "{masked}", "{public_id}", "{prefix}-{public_id}"])
def test_search_finds_a_key_by_name_public_id_or_pasted_masked_key(as_alice, alice, make_key, typed) -> None:
    key, _ = make_key(name="exact-name", owner=alice)
    make_key(name="other", owner=alice)
    text = typed.format(masked=key.masked, public_id=key.public_id, prefix="sk-kg")
    assert names_in_list(as_alice, q=text) == ["exact-name"]


def test_the_list_shows_spend_this_period_against_the_budget(as_alice, alice, make_key) -> None:
    key, _ = make_key(name="billed", owner=alice, budget_usd="10", budget_period="day")
    UsageRecord.objects.create(key=key, endpoint="chat", model="gpt-4o", status_code=200, cost_usd="1.25")
    UsageRecord.objects.create(
        key=key, created_at=timezone.now() - timedelta(days=2), endpoint="chat", status_code=200, cost_usd="5"
    )
    html = as_alice.get("/").content.decode()
    assert "$1.25" in html and "/ $10.00" in html and "today" in html


def test_the_paused_filter_lists_paused_keys_and_working_ones_exclude_them(as_alice, alice, make_key) -> None:
    paused, _ = make_key(name="resting", owner=alice)
    make_key(name="busy", owner=alice)
    services.key_pause(key=paused)
    assert names_in_list(as_alice, status="paused") == ["resting"]
    assert names_in_list(as_alice) == ["busy"]


# --- forms, times and the audit trail in the reader's language ------------------------------


def test_form_errors_are_listed_at_the_top_with_links_and_take_focus(as_alice) -> None:
    response = create(as_alice, name="", models=[], expiry="date", expiry_date="")
    html = response.content.decode()
    summary = re.search(r'<div class="alert error error-summary".*?</div>', html, re.S).group(0)
    assert "autofocus" in summary
    assert 'href="#id_name"' in summary and 'href="#id_models_0"' in summary and 'href="#id_expiry_date"' in summary


def test_a_typed_expiry_date_is_not_silently_ignored(as_alice) -> None:
    response = create(as_alice, expiry="30d", expiry_date="2030-01-01")
    assert response.status_code == 200 and not KEY_RE.search(response.content.decode())
    assert "On a date" in response.content.decode() and not APIKey.objects.exists()


def test_the_new_key_page_focuses_copy_and_sets_the_key_in_a_wrapping_monospace_box(as_alice) -> None:
    html = create(as_alice).content.decode()
    assert re.search(r'<textarea id="new-key" class="secret"[^>]*readonly', html)
    assert re.search(r"<button[^>]*data-copy-target=\"new-key\"[^>]*autofocus", html)
    assert '<pre tabindex="0"' in html


def test_times_carry_their_zone_and_relative_times_their_absolute_time(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    APIKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(minutes=3))
    html = as_alice.get("/").content.decode()
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d UTC" data-local="title">3', html)
    detail = as_alice.get(reverse("keys:detail", args=[key.public_id])).content.decode()
    assert re.search(r'data-local="minutes">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>', detail)


def test_the_audit_trail_and_service_errors_read_in_russian(as_alice, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    services.key_update(key=key, rpm_limit=5, via="cli")
    services.key_revoke(key=key, via="api:AbCdEfGhIjKl")
    as_alice.cookies["django_language"] = "ru"
    detail = as_alice.get(reverse("keys:detail", args=[key.public_id]), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "командная строка" in detail and "REST API (ключ AbCdEfGhIjKl)" in detail
    assert "запросов в минуту" in detail  # the changed field's name, translated
    refused = as_alice.post(reverse("keys:revoke", args=[key.public_id]), HTTP_ACCEPT_LANGUAGE="ru")
    assert "уже отозван" in refused.content.decode()
