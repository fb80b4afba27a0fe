"""The admin's routes, deployments and breakers: what the file declares is read-only, and a
provider's page shows each deployment's circuit breaker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from gateway import config_file
from gateway.breaker import process_board
from gateway.models import ModelPrice, Provider, Route
from tests.gateway.test_config_file import EXAMPLE


@pytest.fixture
def admin_client(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def from_file(db: None) -> None:
    config_file.apply(config_file.parse(EXAMPLE))


@pytest.fixture(autouse=True)
def fresh_breakers() -> Iterator[None]:
    process_board().breakers.clear()
    yield
    process_board().breakers.clear()


@pytest.mark.parametrize(
    ("model", "lookup"),
    [
        pytest.param(Provider, {"name": "primary"}, id="provider"),
        pytest.param(Route, {"model_pattern": "gpt-4o"}, id="route"),
        pytest.param(ModelPrice, {"model_pattern": "gpt-4o"}, id="price"),
    ],
)
def test_what_the_file_declares_is_read_only_in_the_admin(
    admin_client: Client, from_file: None, model: type, lookup: dict
) -> None:
    obj = model.objects.get(**lookup)
    url = f"/admin/gateway/{model._meta.model_name}/{obj.pk}/change/"

    page = admin_client.get(url)
    changed = admin_client.post(url, {"model_pattern": "hijacked", "name": "hijacked"})
    deleted = admin_client.post(url.replace("/change/", "/delete/"), {"post": "yes"})

    assert page.status_code == 200 and b"Save" not in page.content
    assert changed.status_code == 403 and deleted.status_code == 403
    assert model.objects.filter(pk=obj.pk, **lookup).exists()


def test_a_route_page_lists_its_deployments(admin_client: Client, from_file: None) -> None:
    route = Route.objects.get(model_pattern="gpt-4o")

    listing = admin_client.get("/admin/gateway/route/").content.decode()
    page = admin_client.get(f"/admin/gateway/route/{route.pk}/change/").content.decode()

    assert "primary:gpt-4o (p0, w3)" in listing and "backup:claude-sonnet-4-5 (p1, w1)" in listing
    assert "claude-sonnet-4-5" in page and "Retries and fallback" in page


def test_a_provider_page_shows_each_deployments_breaker_state_and_last_error(
    admin_client: Client, from_file: None
) -> None:
    board = process_board()
    for _ in range(board.policy.failures):
        board.failure("primary:gpt-4o", "upstream_unreachable")
    provider = Provider.objects.get(name="primary")

    page = admin_client.get(f"/admin/gateway/provider/{provider.pk}/change/").content.decode()

    assert "primary:gpt-4o" in page
    assert f"open · {board.policy.failures}/{board.policy.failures} errors · last: upstream_unreachable" in page


def test_the_admin_can_still_add_a_route_with_deployments(admin_client: Client, from_file: None) -> None:
    house = Provider.objects.create(name="house", kind="openai", base_url="http://house.test/v1")
    backup = Provider.objects.get(name="backup")
    form = {
        "model_pattern": "house-model",
        "provider": "",
        "upstream_model": "",
        "priority": "50",
        "is_enabled": "on",
        "listed_models": "[]",
        "max_attempts": "2",
        "retry_on": "[503]",
        "deadline": "0",
        "retry_after_cap": "0",
        "deployments-TOTAL_FORMS": "2",
        "deployments-INITIAL_FORMS": "0",
        "deployments-MIN_NUM_FORMS": "0",
        "deployments-MAX_NUM_FORMS": "1000",
        "deployments-0-provider": str(house.pk),
        "deployments-0-upstream_model": "m",
        "deployments-0-priority": "0",
        "deployments-0-weight": "1",
        "deployments-0-is_enabled": "on",
        "deployments-1-provider": str(backup.pk),
        "deployments-1-upstream_model": "claude-haiku-4-5",
        "deployments-1-priority": "1",
        "deployments-1-weight": "1",
        "deployments-1-is_enabled": "on",
    }

    response = admin_client.post("/admin/gateway/route/add/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    route = Route.objects.get(model_pattern="house-model")
    assert not route.from_file and route.max_attempts == 2
    assert [str(d) for d in route.deployments.all()] == ["house:m", "backup:claude-haiku-4-5"]


def test_the_admin_refuses_retrying_statuses_that_mean_the_request_is_wrong(admin_client: Client, db: None) -> None:
    response = admin_client.post(
        "/admin/gateway/route/add/",
        {
            "model_pattern": "x",
            "priority": "1",
            "listed_models": "[]",
            "max_attempts": "3",
            "retry_on": "[400, 503]",
            "deadline": "0",
            "retry_after_cap": "0",
            "deployments-TOTAL_FORMS": "0",
            "deployments-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    assert "never retried" in response.content.decode()
    assert not Route.objects.exists()
