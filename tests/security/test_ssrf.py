"""Where Keygate connects comes from operators only: provider base URLs are validated when saved,
and no field or header of a proxied request can point Keygate anywhere else (SSRF)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.contrib.messages import get_messages

from gateway.admin import ProviderForm, link_local_host, validate_base_url
from gateway.models import Provider
from gateway.routing import decrypt_credential
from tests.conftest_live import LiveKeygate, new_request_id

FORM = {
    "name": "vllm",
    "kind": "openai",
    "api_key_env": "",
    "connect_timeout": "5",
    "first_byte_timeout": "60",
    "idle_timeout": "60",
    "is_enabled": "on",
}


def _form(base_url: str, **extra: str) -> ProviderForm:
    return ProviderForm(data={**FORM, "base_url": base_url, **extra})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("ftp://files.example/v1", id="ftp"),
        pytest.param("gopher://127.0.0.1:6379/_FLUSHALL", id="gopher"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("unix:///var/run/docker.sock", id="unix-socket"),
        pytest.param("http://user:secret@llm.example/v1", id="credentials"),
        pytest.param("http://sk-live-123@llm.example/v1", id="token-as-user"),
        pytest.param("http:///v1", id="no-host"),
        pytest.param("http://", id="scheme-only"),
        pytest.param("https://llm.example/v1?api_key=secret", id="query"),
        pytest.param("https://llm.example/v1#fragment", id="fragment"),
        pytest.param("https://llm.example:99999/v1", id="port-out-of-range"),
        pytest.param("https://llm.example/v1\r\nX-Injected: 1", id="header-injection"),
        pytest.param("https://llm.example/v 1", id="space"),
    ],
)
def test_the_admin_refuses_a_base_url_that_is_not_a_plain_http_url(url: str) -> None:
    form = _form(url)

    assert not form.is_valid()
    assert "base_url" in form.errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "saved"),
    [
        pytest.param("https://api.openai.com/v1/", "https://api.openai.com/v1", id="public"),
        pytest.param("http://10.0.0.5:8000/v1", "http://10.0.0.5:8000/v1", id="private-vllm"),
        pytest.param("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1", id="loopback-ollama"),
        pytest.param("http://[fd00::5]:8000/v1", "http://[fd00::5]:8000/v1", id="private-ipv6"),
        pytest.param("llm.internal.example/v1", "https://llm.internal.example/v1", id="scheme-assumed-https"),
    ],
)
def test_the_admin_accepts_private_and_public_http_urls(url: str, saved: str) -> None:
    form = _form(url)

    assert form.is_valid(), form.errors
    assert form.save().base_url == saved


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://169.254.170.2/v2/credentials", "169.254.170.2"),
        ("http://[fe80::1]/v1", "fe80::1"),
        ("http://10.0.0.5/v1", None),
        ("https://metadata.google.internal/v1", None),
    ],
)
def test_link_local_hosts_are_recognised(url: str, host: str | None) -> None:
    assert link_local_host(url) == host


def test_a_valid_url_keeps_its_path_and_loses_the_trailing_slash() -> None:
    assert validate_base_url("https://llm.example/openai/v1/") == "https://llm.example/openai/v1"


@pytest.mark.django_db
def test_saving_a_provider_on_a_metadata_address_warns_the_operator(admin_client) -> None:
    response = admin_client.post(
        "/admin/gateway/provider/add/",
        {**FORM, "name": "imds", "base_url": "http://169.254.169.254/v1", **_inline_management()},
        follow=True,
    )

    assert response.status_code == 200
    assert Provider.objects.filter(name="imds").exists()
    warnings = [str(m) for m in get_messages(response.wsgi_request)] + [response.content.decode()]
    assert any("link-local" in text for text in warnings)


@pytest.mark.django_db
def test_the_provider_credential_is_stored_encrypted_and_never_shown(admin_client) -> None:
    secret = "sk-upstream-very-secret-credential-123"
    admin_client.post(
        "/admin/gateway/provider/add/",
        {**FORM, "name": "cred", "base_url": "https://llm.example/v1", "credential": secret, **_inline_management()},
    )
    provider = Provider.objects.get(name="cred")

    change = admin_client.get(f"/admin/gateway/provider/{provider.pk}/change/").content.decode()
    listing = admin_client.get("/admin/gateway/provider/").content.decode()

    assert secret not in provider.api_key_encrypted and decrypt_credential(provider.api_key_encrypted) == secret
    assert secret not in change and secret not in listing
    assert provider.api_key_encrypted not in change


def _inline_management() -> dict[str, str]:
    return {
        "routes-TOTAL_FORMS": "0",
        "routes-INITIAL_FORMS": "0",
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "1000",
    }


# --- live: nothing in a request moves the connection -------------------------------------------


class Canary:
    """A loopback listener that counts every connection made to it (there must be none)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def _steering_fields(url: str) -> dict[str, str]:
    return {name: url for name in ("base_url", "api_base", "url", "endpoint", "baseURL", "host", "proxy", "upstream")}


def _steering_headers(canary: Canary) -> dict[str, str]:
    return {
        "host": f"127.0.0.1:{canary.port}",
        "x-forwarded-host": f"127.0.0.1:{canary.port}",
        "x-forwarded-for": "127.0.0.1",
        "forwarded": f"host=127.0.0.1:{canary.port}",
        "x-upstream-url": canary.url,
        "x-base-url": canary.url,
        "openai-base-url": canary.url,
        "anthropic-base-url": canary.url,
        "x-original-url": canary.url + "/v1/chat/completions",
        "x-rewrite-url": canary.url,
    }


@pytest.mark.live
@pytest.mark.parametrize(
    ("path", "body", "upstream_path"),
    [
        pytest.param(
            "/v1/chat/completions",
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            "/v1/chat/completions",
            id="openai",
        ),
        pytest.param(
            "/v1/messages",
            {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            "/v1/messages",
            id="anthropic",
        ),
    ],
)
def test_request_fields_and_headers_cannot_change_where_keygate_connects(
    live: LiveKeygate, canary: Canary, path: str, body: dict, upstream_path: str
) -> None:
    request_id = new_request_id()
    headers = {**_steering_headers(canary), "x-request-id": request_id, "anthropic-version": "2023-06-01"}

    response = live.post(path, json={**body, **_steering_fields(canary.url)}, headers=headers)

    assert response.status_code == 200, response.text
    received = live.upstream_request(request_id)
    assert received["path"] == upstream_path and received["query"] == ""
    assert received["headers"]["host"] == f"127.0.0.1:{live.upstream.port}"
    assert not {"x-forwarded-host", "forwarded", "x-upstream-url", "x-original-url"} & set(received["headers"])
    assert canary.connections == 0


@pytest.mark.live
@pytest.mark.parametrize(
    "model",
    [
        "http://127.0.0.1:{port}/v1",
        "//127.0.0.1:{port}/x",
        "../../../../{port}",
        "gpt-4o@127.0.0.1:{port}",
    ],
)
def test_a_model_name_that_looks_like_a_url_goes_to_the_configured_upstream(
    live: LiveKeygate, canary: Canary, model: str
) -> None:
    request_id = new_request_id()

    response = live.post(
        "/v1/chat/completions",
        json={"model": model.format(port=canary.port), "messages": []},
        headers={"x-request-id": request_id},
    )

    assert response.status_code == 200, response.text
    assert live.upstream_request(request_id)["path"] == "/v1/chat/completions"
    assert canary.connections == 0


@pytest.mark.live
def test_a_query_string_on_the_proxy_does_not_reach_the_upstream(live: LiveKeygate, canary: Canary) -> None:
    request_id = new_request_id()

    response = live.post(
        f"/v1/chat/completions?base_url={canary.url}&api-version=1",
        json={"model": "gpt-4o", "messages": []},
        headers={"x-request-id": request_id},
    )

    assert response.status_code == 200
    assert live.upstream_request(request_id)["query"] == ""
    assert canary.connections == 0
