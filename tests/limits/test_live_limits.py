"""Limits, usage and operators' views as clients meet them: a live Keygate with the demo provider."""

from __future__ import annotations

import json
import threading
import time

import anthropic
import httpx
import openai
import pytest

from tests.support.live import KeygateServer
from tests.support.wait import first, wait_until

pytestmark = pytest.mark.live

METRICS_TOKEN = "metrics-token-for-tests"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with KeygateServer(
        tmp_path_factory.mktemp("limits"), env={"KEYGATE_METRICS_TOKEN": METRICS_TOKEN, "KEYGATE_ROUTES_REFRESH": "0.5"}
    ) as live:
        yield live


def _openai(server: KeygateServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def test_successful_responses_carry_the_remaining_counts(server) -> None:
    (key,) = server.make_keys({"name": "rpm", "model_patterns": "*", "rpm_limit": 10, "tpm_limit": 1000})
    first = _openai(server, key).chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert first.headers["x-ratelimit-limit-requests"] == "10"
    assert first.headers["x-ratelimit-remaining-requests"] == "9"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    second = _openai(server, key).chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert second.headers["x-ratelimit-remaining-requests"] == "8"
    assert int(second.headers["x-ratelimit-remaining-tokens"]) < 1000


def test_anthropic_requests_get_anthropic_rate_limit_headers(server) -> None:
    (key,) = server.make_keys({"name": "anthropic-rpm", "model_patterns": "*", "rpm_limit": 5})
    client = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)
    response = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    assert response.headers["anthropic-ratelimit-requests-limit"] == "5"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "4"
    assert response.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
    for _ in range(4):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=HELLO)
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    assert int(refused.value.response.headers["retry-after"]) >= 1


def test_over_the_rpm_limit_is_a_429_with_retry_after(server) -> None:
    (key,) = server.make_keys({"name": "rpm2", "model_patterns": "*", "rpm_limit": 2})
    client = _openai(server, key)
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    headers = refused.value.response.headers
    assert 25 <= int(headers["retry-after"]) <= 31
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.value.code == "rate_limit_exceeded"
    assert "2 requests per minute" in refused.value.message


def test_tokens_per_minute_are_charged_from_reported_usage(server) -> None:
    (key,) = server.make_keys({"name": "tpm", "model_patterns": "*", "tpm_limit": 20})
    client = _openai(server, key)
    first = client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert first.usage.total_tokens == 16  # the demo's answer to "hello"
    client.chat.completions.create(model="gpt-4o", messages=HELLO)  # 4 tokens left: still admitted
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert "tokens per minute" in refused.value.message


def test_streamed_usage_counts_against_tokens_per_minute(server) -> None:
    (key,) = server.make_keys({"name": "tpm-stream", "model_patterns": "*", "tpm_limit": 10})
    client = _openai(server, key)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True))
    assert all(chunk.choices for chunk in chunks)  # the usage chunk Keygate asked for is not passed on
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)


def test_max_parallel_refuses_a_second_request_in_flight(server) -> None:
    (key,) = server.make_keys({"name": "parallel", "model_patterns": "*", "max_parallel": 1})
    client = _openai(server, key)
    stream = client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    first_chunk = next(iter(stream))  # the stream is now in flight
    assert first_chunk.choices
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert "in flight" in refused.value.message
    list(stream)
    assert client.chat.completions.create(model="gpt-4o", messages=HELLO).choices


def test_an_exhausted_token_budget_is_insufficient_quota_and_not_retried(server) -> None:
    (key,) = server.make_keys({"name": "budget", "model_patterns": "*", "budget_tokens": 60, "budget_period": "month"})
    client = _openai(server, key)
    used = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(10):
            used += client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=16).usage.total_tokens
    assert 0 < used <= 60
    assert refused.value.code == "key_budget_exceeded"
    assert refused.value.type == "insufficient_quota"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert "resets at" in refused.value.message


def test_a_cost_budget_uses_the_price_table(server) -> None:
    server.shell(
        "from gateway.models import ModelPrice;"
        "ModelPrice.objects.update_or_create(model_pattern='gpt-4o-mini', "
        "defaults={'input_per_mtok': 100000, 'output_per_mtok': 100000})"
    )
    (key,) = server.make_keys({"name": "usd", "model_patterns": "*", "budget_usd": "5", "budget_period": "day"})
    client = _openai(server, key)
    # Until the server re-reads prices (every KEYGATE_ROUTES_REFRESH, 0.5 s here) requests cost
    # nothing; then the budget runs out within a few requests.
    admitted = 0
    refused = None
    deadline = time.monotonic() + 12
    while refused is None and time.monotonic() < deadline:
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, max_tokens=16)
            admitted += 1
        except openai.RateLimitError as error:
            refused = error
    assert refused is not None and refused.code == "key_budget_exceeded"
    # The usage writer flushes in batches after the responses: wait for every admitted request's row.
    public_id = key[6:18]
    rows = wait_until(
        lambda: (
            found
            if len(
                found := server.query(
                    "SELECT u.cost_usd FROM keys_usagerecord u JOIN keys_apikey k ON k.id = u.key_id "
                    "WHERE k.public_id = ? AND u.status_code = 200",
                    public_id,
                )
            )
            >= admitted
            else None
        ),
        timeout=10,
        what=f"{admitted} usage rows",
    )
    spent = sum(float(cost) for (cost,) in rows)
    assert 0 < spent <= 5


def test_a_client_ip_outside_the_allowed_networks_is_refused(server) -> None:
    outside, inside = server.make_keys(
        {"name": "ip-out", "model_patterns": "*", "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"]},
        {"name": "ip-in", "model_patterns": "*", "allowed_ips": ["127.0.0.0/8"]},
    )
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _openai(server, outside).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert "127.0.0.1" in refused.value.message
    assert _openai(server, inside).chat.completions.create(model="gpt-4o", messages=HELLO).choices


def test_metrics_are_protected_and_count_requests(server) -> None:
    (key,) = server.make_keys({"name": "metrics", "model_patterns": "*"})
    _openai(server, key).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    page = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert page.status_code == 200
    series = 'keygate_requests_total{endpoint="chat/completions",model="gpt-4o",status="200"}'

    # A request is counted once its answer has been sent: wait for the count, do not race it.
    def counted() -> str | None:
        text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        return text if series in text and "keygate_time_to_first_byte_seconds_bucket" in text else None

    text = wait_until(counted, timeout=5, what="the request counted in /metrics")
    assert 'keygate_key_cache_total{result="hit"}' in text
    assert key not in text


def test_the_access_log_is_json_with_the_request_id_and_no_key(server) -> None:
    (key,) = server.make_keys({"name": "logged", "model_patterns": "*"})
    response = _openai(server, key).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HELLO, extra_headers={"X-Request-Id": "trace-me-123"}
    )
    assert response.headers["x-request-id"] == "trace-me-123"
    # The access log is written by a background thread: wait for the line.
    line = wait_until(
        lambda: first(text for text in server.logs().splitlines() if '"trace-me-123"' in text),
        timeout=5,
        what="the access-log line",
    )
    entry = json.loads(line)
    assert entry["logger"] == "keygate.access" and entry["request_id"] == "trace-me-123"
    assert entry["key"] == key[6:18] and entry["status"] == 200 and entry["model"] == "gpt-4o"
    assert key not in server.logs()


def test_usage_is_flushed_on_a_clean_stop_and_last_used_is_set(tmp_path) -> None:
    live = KeygateServer(tmp_path / "flush").start()
    try:
        (key,) = live.make_keys({"name": "flush", "model_patterns": "*"})
        client = _openai(live, key)
        threads = [
            threading.Thread(target=lambda: client.chat.completions.create(model="gpt-4o", messages=HELLO))
            for _ in range(25)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        live.stop()
    counts = live.shell(
        "from keys.models import APIKey, UsageRecord as U;"
        f"k = APIKey.objects.get(public_id='{key[6:18]}');"
        "print(U.objects.filter(key=k).count(), k.last_used_at is not None, k.last_used_ip)"
    ).split()[-3:]
    assert counts == ["25", "True", "127.0.0.1"]
