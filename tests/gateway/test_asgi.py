"""gateway.asgi in process: the request pipeline end to end through the real ASGI app."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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
    metrics.flush()

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


# --- issue #16: per-request metrics are tallied on the loop and flushed ---------------------


def _samples(metric: Any, endpoint: str) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in metric.collect()
        for sample in family.samples
        if sample.labels.get("endpoint") == endpoint
    }


def test_flushed_tallies_read_as_the_same_observations_made_one_by_one() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    from gateway import metrics

    reference = Histogram(
        "keygate_request_duration_seconds",
        "reference",
        ["endpoint"],
        buckets=metrics.LATENCY._upper_bounds[:-1],
        registry=CollectorRegistry(),
    )
    # On, between and beyond the bounds, the last one past the largest.
    durations = [0.0004, 0.001, 0.0011, 0.0025, 0.3, 0.3, 1.0, 7.5, 200.0]
    for seconds in durations:
        metrics.observe_request("tally-test", "gpt-4o", 200, seconds, seconds / 2)
        reference.labels("tally-test").observe(seconds)

    assert _samples(metrics.LATENCY, "tally-test") == {}  # nothing before the flush
    metrics.flush()

    assert _samples(metrics.LATENCY, "tally-test") == _samples(reference, "tally-test")
    ttfb = _samples(metrics.TTFB, "tally-test")
    assert ttfb[("keygate_time_to_first_byte_seconds_count", "")] == len(durations)
    assert ttfb[("keygate_time_to_first_byte_seconds_sum", "")] == pytest.approx(sum(durations) / 2)
    requests = _samples(metrics.REQUESTS, "tally-test")
    assert requests == {("keygate_requests_total", ""): len(durations)}
    metrics.flush()  # a second flush adds nothing
    assert _samples(metrics.REQUESTS, "tally-test") == requests


def test_the_metrics_page_counts_a_request_that_just_finished(gateway: InProcessGateway, settings: Any) -> None:
    from gateway import metrics

    settings.KEYGATE_METRICS_TOKEN = "metrics-test-token"

    def count() -> float:
        page = gateway.request(
            "GET",
            "/metrics",
            key=None,
            headers={"authorization": "Bearer metrics-test-token"},
            app=metrics.serve,
        )
        assert page.status_code == 200
        for line in page.text.splitlines():
            if line.startswith('keygate_requests_total{endpoint="chat/completions",model="gpt-4o",status="200"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    for _ in range(2):
        assert gateway.request("POST", "/v1/chat/completions", json=CHAT).status_code == 200

    assert count() == before + 2  # no wait for the background flush: the page flushes first
