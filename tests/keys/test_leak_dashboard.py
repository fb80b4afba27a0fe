"""A leaked key on the dashboard: the notice (reason, where) and "rotate to a new key"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from keys import leaks, services
from keys.constants import KeyAction
from keys.leaks import Finding
from keys.models import APIKey

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"sk-kg-[0-9A-Za-z]{50}")
URL = "https://github.com/alice/app/blob/abc/settings.py"


@pytest.fixture
def leaked(make_key, alice) -> APIKey:
    key, raw = make_key(
        name="ci-runner",
        owner=alice,
        model_patterns=["gpt-4o"],
        rpm_limit=60,
        expires_at=timezone.now() + timedelta(days=30),
    )
    leaks.revoke_leaked([Finding(raw, url=URL, source="content")], via="secret scanning")
    key.refresh_from_db()
    return key


def test_a_leaked_key_shows_the_reason_where_it_was_found_and_a_rotate_button(client, alice, leaked) -> None:
    client.force_login(alice)
    html = client.get(f"/keys/{leaked.public_id}/").content.decode()
    assert "This key leaked and was revoked automatically." in html
    assert "Found by secret scanning" in html
    assert f'<a href="{URL}"' in html
    assert f'action="/keys/{leaked.public_id}/replace"' in html and "Rotate to a new key" in html


def test_a_key_revoked_by_hand_shows_no_leak_notice(client, alice, make_key) -> None:
    key, _ = make_key(owner=alice)
    services.key_revoke(key=key, actor=alice)
    client.force_login(alice)
    assert "leak-notice" not in client.get(f"/keys/{key.public_id}/").content.decode()


def test_a_url_that_is_not_http_is_shown_as_text_never_as_a_link(client, alice, make_key) -> None:
    key, raw = make_key(owner=alice)
    leaks.revoke_leaked([Finding(raw, url="javascript:alert(1)")], via="leak report")
    client.force_login(alice)
    html = client.get(f"/keys/{key.public_id}/").content.decode()
    assert "<code>javascript:alert(1)</code>" in html and 'href="javascript:' not in html


def test_one_click_shows_a_successor_with_the_same_settings_once(client, alice, leaked) -> None:
    client.force_login(alice)
    response = client.post(f"/keys/{leaked.public_id}/replace")

    (raw,) = set(KEY_RE.findall(response.content.decode()))
    new = APIKey.objects.get(rotated_from=leaked)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert services.verify_key(raw).id == new.id
    assert (new.name, new.owner, new.model_patterns, new.rpm_limit) == ("ci-runner", alice, ["gpt-4o"], 60)
    assert new.expires_at is not None and new.is_active
    again = client.post(f"/keys/{leaked.public_id}/replace")  # a re-sent POST shows nothing new
    assert again.status_code == 302 and not KEY_RE.search(client.get(again["Location"]).content.decode())
    assert APIKey.objects.filter(rotated_from=leaked).count() == 1


def test_after_replacing_the_notice_links_the_successor(client, alice, leaked) -> None:
    client.force_login(alice)
    client.post(f"/keys/{leaked.public_id}/replace")
    new = APIKey.objects.get(rotated_from=leaked)
    html = client.get(f"/keys/{leaked.public_id}/").content.decode()
    assert f'href="/keys/{new.public_id}/"' in html and "Rotate to a new key" not in html


def test_bob_cannot_replace_alices_key(client, bob, leaked) -> None:
    client.force_login(bob)
    assert client.post(f"/keys/{leaked.public_id}/replace").status_code == 404
    assert not APIKey.objects.filter(rotated_from=leaked).exists()


def test_replace_is_post_only(client, alice, leaked) -> None:
    client.force_login(alice)
    assert client.get(f"/keys/{leaked.public_id}/replace").status_code == 405


# --- the service ------------------------------------------------------------------------


def test_replace_refuses_a_live_key(make_key) -> None:
    key, _ = make_key()
    with pytest.raises(services.KeyServiceError, match="rotate it instead"):
        services.key_replace(key=key)


def test_replace_is_audited_on_both_keys(alice, leaked) -> None:
    new, _ = services.key_replace(key=leaked, actor=alice, via="dashboard", ip="10.0.0.1")
    replaced = leaked.events.get(action=KeyAction.REPLACED)
    created = new.events.get(action=KeyAction.CREATED)
    assert (replaced.actor, replaced.details) == (alice, {"successor": new.public_id})
    assert created.details == {"rotated_from": leaked.public_id, "name": "ci-runner"}
