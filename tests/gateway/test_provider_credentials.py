"""Which environment variable a provider may read its credential from, who may choose it, and the
providers' audit trail (gateway/models.py, gateway/admin.py, gateway/routing.py).

The repro of issue #10, finding 7: a staff user with provider permissions set a provider's
credential variable to SECRET_KEY, then DJANGO_SUPERUSER_PASSWORD, and Keygate sent them upstream.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client

from gateway.http import GatewayRequest
from gateway.models import Provider, ProviderEvent, Route, credential_env_refusal
from gateway.providers import adapter
from gateway.routing import load_table
from tests.gateway.test_proxy import _request

OWN_SECRETS = [
    "SECRET_KEY",
    "KEYGATE_PEPPER",
    "DJANGO_SUPERUSER_PASSWORD",
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "KEYGATE_METRICS_TOKEN",
    "KEYGATE_UPSTREAM_ENV_ALLOWED",
    "DJANGO_SETTINGS_MODULE",
    "KEYGATE_HTTPS",
]

FORM = {
    "name": "evil",
    "kind": "openai",
    "base_url": "https://collector.example/v1",
    "connect_timeout": "5",
    "first_byte_timeout": "60",
    "idle_timeout": "60",
    "is_enabled": "on",
    "routes-TOTAL_FORMS": "0",
    "routes-INITIAL_FORMS": "0",
    "routes-MIN_NUM_FORMS": "0",
    "routes-MAX_NUM_FORMS": "1000",
}


@pytest.mark.parametrize("name", OWN_SECRETS)
def test_keygates_own_secrets_are_never_a_credential_even_when_listed(settings, name: str) -> None:
    settings.KEYGATE_UPSTREAM_ENV_ALLOWED = [name]
    assert credential_env_refusal(name)


@pytest.mark.parametrize(
    "name", ["KEYGATE_UPSTREAM_VLLM", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "KEYGATE_UPSTREAM_A_B_1"]
)
def test_upstream_prefixed_and_the_environment_providers_names_are_allowed(name: str) -> None:
    assert credential_env_refusal(name) is None


def test_any_other_name_needs_listing_in_the_allow_list(settings) -> None:
    settings.KEYGATE_UPSTREAM_ENV_ALLOWED = []
    assert credential_env_refusal("MISTRAL_API_KEY")
    assert credential_env_refusal("HOME")
    settings.KEYGATE_UPSTREAM_ENV_ALLOWED = ["MISTRAL_API_KEY"]
    assert credential_env_refusal("MISTRAL_API_KEY") is None


@pytest.mark.parametrize("name", ["secret_key", "A-B", "X Y", "", "1ABC", "A" * 129])
def test_a_name_that_is_not_an_environment_variable_name_is_refused(name: str) -> None:
    assert credential_env_refusal(name)


def _sent_upstream(model: str = "gpt-4o") -> dict[str, str]:
    route = load_table().resolve(model)
    request: GatewayRequest = _request("chat/completions", {"model": model})
    _, headers = adapter(route.upstream.kind).build_request(route.upstream, request)
    return headers


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["SECRET_KEY", "DJANGO_SUPERUSER_PASSWORD", "KEYGATE_PEPPER"])
def test_a_row_naming_a_process_secret_sends_no_credential_upstream(monkeypatch, name: str) -> None:
    """Defence in depth: the row got into the database without the admin; reading refuses it."""
    monkeypatch.setenv(name, "the-process-secret-value")
    provider = Provider.objects.create(name="evil", kind="openai", base_url="https://collector.example/v1")
    Provider.objects.filter(pk=provider.pk).update(api_key_env=name)  # no validation on this path
    Route.objects.create(provider=provider, model_pattern="*", priority=1)

    headers = _sent_upstream()

    assert "the-process-secret-value" not in json.dumps(headers)
    assert "authorization" not in headers
    assert settings.SECRET_KEY not in json.dumps(headers)


@pytest.mark.django_db
def test_an_allowed_variable_is_sent_as_the_credential(monkeypatch) -> None:
    monkeypatch.setenv("KEYGATE_UPSTREAM_COLLECTOR", "sk-upstream-1")
    provider = Provider.objects.create(
        name="ok", kind="openai", base_url="https://llm.example/v1", api_key_env="KEYGATE_UPSTREAM_COLLECTOR"
    )
    Route.objects.create(provider=provider, model_pattern="*", priority=1)
    assert _sent_upstream()["authorization"] == "Bearer sk-upstream-1"


# --- the admin --------------------------------------------------------------------------------


def _staff(*codenames: str) -> Client:
    user = User.objects.create_user("pat", "pat@example.com", "pat-password-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="gateway", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["SECRET_KEY", "DJANGO_SUPERUSER_PASSWORD", "HOME"])
def test_the_admin_refuses_a_process_secret_as_the_credential_variable(admin_client, name: str) -> None:
    response = admin_client.post("/admin/gateway/provider/add/", {**FORM, "api_key_env": name})
    assert response.status_code == 200 and "api_key_env" in response.context["adminform"].form.errors
    assert not Provider.objects.filter(name="evil").exists()


@pytest.mark.django_db
def test_only_the_credential_permission_chooses_where_a_credential_goes(monkeypatch) -> None:
    provider = Provider.objects.create(
        name="vllm", kind="openai", base_url="https://vllm.internal/v1", api_key_env="OPENAI_API_KEY"
    )
    client = _staff("view_provider", "change_provider")
    page = client.get(f"/admin/gateway/provider/{provider.pk}/change/").content.decode()
    assert 'name="base_url"' not in page and 'name="api_key_env"' not in page and 'name="credential"' not in page
    client.post(
        f"/admin/gateway/provider/{provider.pk}/change/",
        {
            **FORM,
            "name": "vllm",
            "base_url": "https://collector.example/v1",
            "api_key_env": "KEYGATE_UPSTREAM_X",
            "credential": "x",
            "first_byte_timeout": "30",
        },
    )
    provider.refresh_from_db()
    assert (provider.base_url, provider.api_key_env, provider.api_key_encrypted) == (
        "https://vllm.internal/v1",
        "OPENAI_API_KEY",
        "",
    )
    assert provider.first_byte_timeout == 30  # what the provider permission does allow


@pytest.mark.django_db
def test_a_staff_user_without_provider_permissions_cannot_edit_providers() -> None:
    provider = Provider.objects.create(name="vllm", kind="openai", base_url="https://vllm.internal/v1")
    client = _staff()
    assert client.get(f"/admin/gateway/provider/{provider.pk}/change/").status_code == 403
    assert client.post("/admin/gateway/provider/add/", {**FORM, "api_key_env": "OPENAI_API_KEY"}).status_code == 403


@pytest.mark.django_db
def test_every_provider_change_is_audited_without_the_credential(admin_client, admin_user) -> None:
    secret = "sk-typed-into-the-admin-42"
    admin_client.post(
        "/admin/gateway/provider/add/", {**FORM, "api_key_env": "KEYGATE_UPSTREAM_X", "credential": secret}
    )
    provider = Provider.objects.get(name="evil")
    encrypted = provider.api_key_encrypted
    assert encrypted
    admin_client.post(
        f"/admin/gateway/provider/{provider.pk}/change/",
        {**FORM, "api_key_env": "OPENAI_API_KEY", "clear_credential": "on"},
        REMOTE_ADDR="10.1.2.3",
    )
    created, changed = ProviderEvent.objects.order_by("id")
    assert (created.action, created.actor, created.provider_name) == ("created", admin_user, "evil")
    assert created.changes["stored credential"] == "set"
    assert changed.action == "changed" and changed.ip == "10.1.2.3"
    assert changed.changes["api_key_env"] == ["KEYGATE_UPSTREAM_X", "OPENAI_API_KEY"]
    assert changed.changes["stored credential"] == "removed"
    trail = json.dumps(list(ProviderEvent.objects.values("changes")))
    assert secret not in trail and encrypted not in trail
    # The trail is in the admin, read-only.
    assert admin_client.get("/admin/gateway/providerevent/").status_code == 200
    assert admin_client.get(f"/admin/gateway/providerevent/{created.pk}/change/").status_code == 200
    assert admin_client.post(f"/admin/gateway/providerevent/{created.pk}/delete/").status_code == 403
