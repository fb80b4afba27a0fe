"""/v1/models on the live proxy lists exactly the models a key may use."""

from __future__ import annotations

import pytest

from tests.conftest_live import ANTHROPIC_FAULTS, LiveKeygate

pytestmark = pytest.mark.live

VERSION = {"anthropic-version": "2023-06-01"}


def _ids(live: LiveKeygate, key: str, **options: object) -> list[str]:
    response = live.request("GET", "/v1/models", key=key, **options)
    assert response.status_code == 200, response.text
    return [model["id"] for model in response.json()["data"]]


def test_a_key_for_one_model_lists_that_model_alone(live: LiveKeygate) -> None:
    assert _ids(live, "gpt-4o") == ["gpt-4o"]


def test_a_key_for_two_models_on_two_providers_lists_both(live: LiveKeygate) -> None:
    response = live.request("GET", "/v1/models", key="mixed")

    assert response.json() == {
        "object": "list",
        "data": [
            {"id": "gpt-4o", "object": "model", "created": response.json()["data"][0]["created"], "owned_by": "openai"},
            {
                "id": "claude-sonnet-4-6",
                "object": "model",
                "created": response.json()["data"][1]["created"],
                "owned_by": "anthropic",
            },
        ],
    }


def test_a_glob_key_lists_exactly_the_routed_models_it_matches(live: LiveKeygate) -> None:
    expected = {f"claude-mock-{fault}" for fault in ANTHROPIC_FAULTS} | {"claude-mock-stall"}

    listed = _ids(live, "claude-mock")

    assert sorted(listed) == sorted(expected)


def test_with_anthropic_version_the_list_has_the_anthropic_shape(live: LiveKeygate) -> None:
    payload = live.request("GET", "/v1/models", key="mixed", headers=VERSION).json()

    assert [model["id"] for model in payload["data"]] == ["gpt-4o", "claude-sonnet-4-6"]
    assert {model["type"] for model in payload["data"]} == {"model"}
    assert (payload["has_more"], payload["first_id"], payload["last_id"]) == (False, "gpt-4o", "claude-sonnet-4-6")


def test_a_model_the_key_may_not_use_is_not_found_rather_than_forbidden(live: LiveKeygate) -> None:
    allowed = live.request("GET", "/v1/models/gpt-4o", key="gpt-4o")
    other = live.request("GET", "/v1/models/gpt-4o-mini", key="gpt-4o")

    assert allowed.json()["id"] == "gpt-4o"
    assert other.status_code == 404


def test_listing_models_needs_a_valid_key(live: LiveKeygate) -> None:
    assert live.request("GET", "/v1/models", key=None).status_code == 401
    assert live.request("GET", "/v1/models", key="revoked").status_code == 401


def test_a_management_key_lists_no_models(live: LiveKeygate) -> None:
    assert live.request("GET", "/v1/models", key="management").status_code == 403
