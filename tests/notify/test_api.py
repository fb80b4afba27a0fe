"""``/api/v1/webhooks/`` (notify/api.py): alice manages her endpoints, operators everyone's."""

from __future__ import annotations

import pytest
from django.test import Client

from keys import services
from notify.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def _management_key(user) -> dict[str, str]:
    raw = services.key_create(name="ci", model_patterns=[], owner=user, is_management=True)[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_alice_registers_an_endpoint_and_gets_its_secret_once(alice, settings) -> None:
    settings.KEYGATE_WEBHOOK_ALLOW_PRIVATE = True
    client = Client()
    made = client.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/hook", "kinds": ["key.expiring"]},
        content_type="application/json",
        **_management_key(alice),
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["secret"].startswith("whsec_") and body["owner"] == "alice" and body["is_global"] is False
    shown = client.get(f"/api/v1/webhooks/{body['id']}/", **_management_key(alice)).json()
    assert "secret" not in shown and shown["kinds"] == ["key.expiring"]
    assert WebhookEndpoint.objects.get().secret == body["secret"]


def test_bob_cannot_see_or_change_alices_endpoint(alice, bob) -> None:
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/a", owner=alice)
    client = _client(bob)
    assert client.get(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 404
    assert client.delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 404
    assert client.get("/api/v1/webhooks/").json() == []


def test_only_operators_register_global_endpoints(alice, operator) -> None:
    data = {"url": "https://93.184.215.14/all", "is_global": True}  # a public address (no DNS offline)
    refused = _client(alice).post("/api/v1/webhooks/", data, content_type="application/json")
    assert refused.status_code == 403
    made = _client(operator).post("/api/v1/webhooks/", data, content_type="application/json")
    assert made.status_code == 201 and made.json()["owner"] is None


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest", "http://127.0.0.1/hook", "ftp://example.com/x", "not a url"],
)
def test_an_internal_or_malformed_url_is_a_400_naming_the_field(alice, url: str) -> None:
    response = _client(alice).post("/api/v1/webhooks/", {"url": url}, content_type="application/json")
    assert response.status_code == 400 and "url" in response.json()


def test_an_unknown_event_type_is_a_400(alice) -> None:
    data = {"url": "https://93.184.215.14/a", "kinds": ["key.exploded"]}
    response = _client(alice).post("/api/v1/webhooks/", data, content_type="application/json")
    assert response.status_code == 400 and list(response.json()) == ["kinds"]


def test_an_ordinary_key_cannot_manage_webhooks(alice) -> None:
    raw = services.key_create(name="app", model_patterns="*", owner=alice)[1]
    assert Client().get("/api/v1/webhooks/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403


def test_deliveries_of_an_endpoint_are_listed(alice, settings) -> None:
    from notify.management.commands.notify import one_pass

    settings.KEYGATE_WEBHOOK_ALLOW_PRIVATE = True
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", owner=alice)
    services.key_create(name="k", model_patterns="*", owner=alice)
    one_pass(scan=False)
    [delivery] = _client(alice).get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").json()
    assert delivery["type"] == "key.created" and delivery["attempts"] == 1 and delivery["status"] == "pending"
