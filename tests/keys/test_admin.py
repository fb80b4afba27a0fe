"""Operators' admin: keys shown once, never again; revoked keys read-only; audit read-only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from keys import services
from keys.models import APIKey, KeyEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


def _add(admin_client, **data):
    payload = {"name": "from-admin", "model_patterns": "gpt-4o, claude-*", "description": ""}
    payload.update(data)
    return admin_client.post(reverse("admin:keys_apikey_add"), payload)


def test_add_shows_the_new_key_once_with_a_warning_and_no_store(admin_client) -> None:
    response = _add(admin_client)
    assert response.status_code == 200
    html = response.content.decode()
    raw = re.search(r'value="(sk-kg-[0-9A-Za-z]{50})"', html).group(1)
    assert "will not be shown again" in html and "Copy" in html
    assert "no-store" in response["Cache-Control"]
    key = APIKey.objects.get()
    assert services.verify_key(raw).id == key.pk
    assert key.events.get().actor.username == "operator"


def test_list_and_change_pages_never_show_the_key_or_its_hash(admin_client) -> None:
    response = _add(admin_client)
    raw = re.search(r'value="(sk-kg-[0-9A-Za-z]{50})"', response.content.decode()).group(1)
    key = APIKey.objects.get()
    pages = [
        admin_client.get(reverse("admin:keys_apikey_changelist")),
        admin_client.get(reverse("admin:keys_apikey_change", args=[key.pk])),
        admin_client.get(reverse("admin:keys_keyevent_changelist")),
        admin_client.get(reverse("admin:keys_apikey_changelist") + f"?q={key.public_id}"),
    ]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert raw[12:] not in html and key.key_hash not in html and "argon2" not in html
    assert key.masked in pages[0].content.decode()


def test_a_key_made_by_the_cli_appears_masked_in_the_admin(admin_client, make_key) -> None:
    key, raw = make_key(name="cli-made")
    html = admin_client.get(reverse("admin:keys_apikey_changelist")).content.decode()
    assert key.masked in html and raw not in html


def test_change_goes_through_the_service_and_is_audited(admin_client, make_key) -> None:
    key, _ = make_key(name="before")
    url = reverse("admin:keys_apikey_change", args=[key.pk])
    response = admin_client.post(
        url, {"name": "after", "description": "", "model_patterns": "gpt-4o", "expires_at_0": "", "expires_at_1": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    key.refresh_from_db()
    assert key.name == "after" and key.model_patterns == ["gpt-4o"]
    assert list(key.events.values_list("action", flat=True).order_by("id")) == ["created", "updated"]


def test_revoked_keys_are_read_only(admin_client, make_key) -> None:
    key, _ = make_key(name="gone")
    services.key_revoke(key=key)
    url = reverse("admin:keys_apikey_change", args=[key.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="name"' not in page
    admin_client.post(url, {"name": "changed", "model_patterns": "*"})
    key.refresh_from_db()
    assert key.name == "gone"


def test_revoke_action_asks_for_confirmation_before_revoking(admin_client, make_key) -> None:
    key, _ = make_key()
    changelist = reverse("admin:keys_apikey_changelist")
    page = admin_client.post(changelist, {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert page.status_code == 200 and not key.is_revoked
    assert key.masked in page.content.decode() and 'name="confirm"' in page.content.decode()


def test_revoke_action_revokes_and_audits_once_confirmed(admin_client, make_key) -> None:
    key, _ = make_key()
    changelist = reverse("admin:keys_apikey_changelist")
    admin_client.post(changelist, {"action": "revoke_keys", "_selected_action": [key.pk], "confirm": "1"})
    key.refresh_from_db()
    assert key.is_revoked and key.revoked_by.username == "operator"


def test_pause_and_resume_actions_pause_and_resume_the_selected_keys(admin_client, make_key) -> None:
    key, _ = make_key()
    changelist = reverse("admin:keys_apikey_changelist")
    admin_client.post(changelist, {"action": "pause_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.is_paused
    admin_client.post(changelist, {"action": "resume_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert not key.is_paused
    assert list(key.events.values_list("action", flat=True).order_by("id")) == ["created", "paused", "resumed"]


def test_add_key_page_names_both_expiry_inputs_and_loads_the_form_stylesheet(admin_client) -> None:
    page = admin_client.get(reverse("admin:keys_apikey_add")).content.decode()
    assert 'aria-label="Expiry date"' in page and 'aria-label="Expiry time"' in page
    assert "admin/css/forms.css" in page


def test_rotate_action_asks_for_grace_then_shows_new_keys_once(admin_client, make_key) -> None:
    key, _ = make_key()
    changelist = reverse("admin:keys_apikey_changelist")
    confirm = admin_client.post(changelist, {"action": "rotate_keys", "_selected_action": [key.pk]})
    assert confirm.status_code == 200 and "keeps working for" in confirm.content.decode()
    done = admin_client.post(
        changelist, {"action": "rotate_keys", "_selected_action": [key.pk], "confirm_rotate": "1", "grace": "1h"}
    )
    raw = re.search(r'value="(sk-kg-[0-9A-Za-z]{50})"', done.content.decode()).group(1)
    assert "no-store" in done["Cache-Control"]
    assert services.verify_key(raw).id == APIKey.objects.get(rotated_from=key).pk


def test_keys_cannot_be_deleted_and_events_cannot_be_edited(admin_client, make_key) -> None:
    key, _ = make_key()
    assert admin_client.get(reverse("admin:keys_apikey_delete", args=[key.pk])).status_code == 403
    event = KeyEvent.objects.get()
    page = admin_client.get(reverse("admin:keys_keyevent_change", args=[event.pk])).content.decode()
    assert 'type="submit"' not in page or "Save" not in page
    assert admin_client.get(reverse("admin:keys_keyevent_add")).status_code == 403


def test_search_and_status_filter(admin_client, make_key) -> None:
    a, _ = make_key(name="alpha")
    b, _ = make_key(name="beta")
    services.key_revoke(key=b)
    url = reverse("admin:keys_apikey_changelist")
    assert "alpha" in admin_client.get(url, {"q": "alph"}).content.decode()
    revoked = admin_client.get(url, {"status": "revoked"}).content.decode()
    assert b.masked in revoked and a.masked not in revoked


def test_user_passwords_use_argon2_first() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "DEBUG": "true", "KEYGATE_TESTING": "false"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.PASSWORD_HASHERS[0])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "django.contrib.auth.hashers.Argon2PasswordHasher"
