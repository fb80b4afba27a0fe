"""gateway.asgi in process: the request pipeline end to end through the real ASGI app."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.models import ModelPrice, Provider, ProviderKind, Route
from tests.gateway.conftest import InProcessGateway


def test_a_demo_answer_comes_back_through_the_asgi_app(gateway: InProcessGateway) -> None:
    response = gateway.request(
        "POST", "/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    )

    assert response.status_code == 200, response.text
    assert "You said" in response.json()["choices"][0]["message"]["content"]


# --- issue #10: what Keygate repeats, prices, labels, ambiguous bodies ---------------------

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
KEY_SHAPED = "sk-kg-abcdefghijklSECRETSECRETSECRET1234"


def test_a_key_shaped_request_id_is_masked_in_the_response_the_log_and_the_usage_row(
    gateway: InProcessGateway,
) -> None:
    response = gateway.request("POST", "/v1/chat/completions", json=CHAT, headers={"x-request-id": KEY_SHAPED})

    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert "SECRET" not in echoed and echoed.startswith("sk-kg-abcdefghijkl")
    assert "SECRET" not in gateway.log.getvalue() or gateway.access_lines() == []
    assert all("SECRET" not in str(line) for line in gateway.access_lines())
    assert [row["request_id"] for row in gateway.usage_rows()] == [echoed]


def test_a_body_with_a_duplicate_top_level_key_is_refused(gateway: InProcessGateway) -> None:
    body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"model":"other"}'

    response = gateway.request("POST", "/v1/chat/completions", content=body)

    assert response.status_code == 400
    assert "model" in response.json()["error"]["message"]


def test_a_duplicate_key_spelled_with_an_escape_is_refused_too(gateway: InProcessGateway) -> None:
    body = b'{"model":"gpt-4o","messages":[],"mod\\u0065l":"other"}'

    assert gateway.request("POST", "/v1/chat/completions", content=body).status_code == 400


def test_a_body_whose_text_mentions_its_keys_is_not_a_duplicate(gateway: InProcessGateway) -> None:
    body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"say \\"model\\": and \\u00e9"}]}'

    assert gateway.request("POST", "/v1/chat/completions", content=body).status_code == 200


def test_a_model_on_another_protocols_provider_is_never_echoed_unmasked(
    gateway: InProcessGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import plans

    monkeypatch.setattr(plans, "translate", None)
    provider = Provider.objects.create(name="oai", kind=ProviderKind.OPENAI, base_url="http://127.0.0.1:9/v1")
    Route.objects.create(provider=provider, model_pattern="sk-kg-*", priority=1)
    gateway.reload()

    response = gateway.request(
        "POST",
        "/v1/messages",
        json={"model": KEY_SHAPED, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        anthropic=True,
    )

    assert response.status_code == 400
    assert "SECRET" not in response.text


def test_metric_labels_for_models_are_bounded_to_the_routed_models(gateway: InProcessGateway) -> None:
    from gateway import metrics

    for index in range(30):
        gateway.request("POST", "/v1/chat/completions", json={**CHAT, "model": f"made-up-{index}"})
    gateway.request("POST", "/v1/chat/completions", json=CHAT)

    labels = {sample.labels["model"] for metric in metrics.REQUESTS.collect() for sample in metric.samples}
    assert not any(label.startswith("made-up-") for label in labels)
    assert {"other", "gpt-4o"} <= labels


def test_a_routed_alias_is_priced_as_its_upstream_model(gateway: InProcessGateway) -> None:
    Route.objects.create(
        provider=Provider.objects.get(name="demo"), model_pattern="cheap", upstream_model="gpt-4o", priority=1
    )
    ModelPrice.objects.create(model_pattern="gpt-4o", input_per_mtok=Decimal("1000"), output_per_mtok=Decimal(0))
    gateway.reload()

    gateway.request("POST", "/v1/chat/completions", json={**CHAT, "model": "cheap"})

    assert gateway.usage_rows()[0]["cost_usd"] != "0"
    assert Decimal(gateway.usage_rows()[0]["cost_usd"]) > 0
