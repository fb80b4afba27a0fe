"""Every upstream fault, in both dialects: what the client gets (a 502/504 or the upstream's own
error status in its dialect, or a well-formed error event mid-stream), what the usage record says
happened, and that no answer carries the upstream credential or address.

The client-facing side of most faults is already tested with the SDKs (``tests/e2e``); this
module adds what was missing — the usage record of each fault, OpenAI-dialect 529, the Anthropic
dialect for invalid JSON, redirects, oversized answers and a slow first byte — and checks every
answer for the credential in one table.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.conftest_live import (
    ANTHROPIC_FAULTS,
    FLAKY_FIRST_BYTE_TIMEOUT,
    UPSTREAM_SECRET,
    WRONG_UPSTREAM_SECRET,
    LiveKeygate,
    new_request_id,
    shell,
    wait_until,
)

pytestmark = pytest.mark.live

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
EXTRA_ANTHROPIC_FAULTS = ("error-503", "invalid-json", "redirect", "huge")

ROUTES = """
import json, sys
from gateway.models import Provider, Route
anthropic = Provider.objects.get(name="anthropic")
for fault in json.loads(sys.stdin.read()):
    Route.objects.create(provider=anthropic, model_pattern="sec-claude-" + fault, upstream_model="mock-" + fault, priority=5)
slow = Provider.objects.get(name="flaky-anthropic")
Route.objects.create(provider=slow, model_pattern="sec-claude-slow-first-byte", upstream_model="mock-slow-first-byte", priority=5)
"""


@dataclass(frozen=True)
class Fault:
    path: str
    model: str
    stream: bool
    status: int  # what the client gets (200: the stream began, then an error event)
    error_type: str  # what the usage record says
    provider: str
    extra: tuple[tuple[str, object], ...] = ()

    @property
    def dialect(self) -> str:
        return "anthropic" if self.path == MESSAGES else "openai"


FAULTS = [
    # OpenAI dialect
    Fault(CHAT, "dead-model", False, 502, "upstream_unreachable", "dead"),
    Fault(CHAT, "mock-reset", False, 502, "upstream_connection_error", "openai"),
    Fault(CHAT, "mock-reset", True, 200, "upstream_reset", "openai"),
    Fault(CHAT, "mock-slow-first-byte", False, 504, "upstream_timeout", "flaky", (("mock_delay", 4),)),
    Fault(CHAT, "mock-stall", False, 504, "upstream_idle_timeout", "flaky"),
    Fault(CHAT, "mock-stall", True, 200, "upstream_idle_timeout", "flaky"),
    Fault(CHAT, "mock-error-500", False, 500, "upstream_500", "openai"),
    Fault(CHAT, "mock-error-503", False, 503, "upstream_503", "openai"),
    Fault(CHAT, "mock-error-529", False, 529, "upstream_529", "openai"),
    Fault(CHAT, "mock-error-529", True, 529, "upstream_529", "openai"),
    Fault(CHAT, "mock-error-401", False, 502, "upstream_auth", "openai"),
    Fault(CHAT, "badcred-model", False, 502, "upstream_auth", "badcred"),
    Fault(CHAT, "mock-invalid-json", False, 502, "upstream_invalid_json", "openai"),
    Fault(CHAT, "mock-redirect", False, 502, "upstream_redirect", "openai"),
    Fault(CHAT, "mock-huge", False, 502, "upstream_too_large", "openai"),
    Fault(CHAT, "mock-huge", True, 502, "upstream_too_large", "openai"),
    # Anthropic dialect
    Fault(MESSAGES, "claude-dead", False, 502, "upstream_unreachable", "dead-anthropic"),
    Fault(MESSAGES, "claude-mock-reset", False, 502, "upstream_connection_error", "anthropic"),
    Fault(MESSAGES, "claude-mock-reset", True, 200, "upstream_reset", "anthropic"),
    Fault(MESSAGES, "claude-mock-stall", True, 200, "upstream_idle_timeout", "flaky-anthropic"),
    Fault(MESSAGES, "claude-mock-stall", False, 504, "upstream_idle_timeout", "flaky-anthropic"),
    Fault(MESSAGES, "claude-mock-error-500", False, 500, "upstream_500", "anthropic"),
    Fault(MESSAGES, "claude-mock-error-529", False, 529, "upstream_529", "anthropic"),
    Fault(MESSAGES, "sec-claude-error-503", False, 503, "upstream_503", "anthropic"),
    Fault(MESSAGES, "sec-claude-invalid-json", False, 502, "upstream_invalid_json", "anthropic"),
    Fault(MESSAGES, "sec-claude-redirect", False, 502, "upstream_redirect", "anthropic"),
    Fault(MESSAGES, "sec-claude-huge", False, 502, "upstream_too_large", "anthropic"),
    Fault(
        MESSAGES, "sec-claude-slow-first-byte", False, 504, "upstream_timeout", "flaky-anthropic", (("mock_delay", 4),)
    ),
]


@pytest.fixture(scope="module")
def fault_routes(live: LiveKeygate) -> None:
    """Anthropic-kind routes to the faults the session's setup does not route (``sec-claude-*``)."""
    assert set(EXTRA_ANTHROPIC_FAULTS).isdisjoint(ANTHROPIC_FAULTS)
    shell(live.server, ROUTES, stdin=orjson.dumps(list(EXTRA_ANTHROPIC_FAULTS)).decode())
    wanted = {f"sec-claude-{fault}" for fault in EXTRA_ANTHROPIC_FAULTS} | {"sec-claude-slow-first-byte"}
    wait_until(
        lambda: wanted <= {m["id"] for m in live.request("GET", "/v1/models").json()["data"]},
        timeout=10,
    )


def _last_event(text: str) -> tuple[str | None, dict]:
    """The name and JSON data of the stream's last event."""
    events = [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    name, data = None, ""
    for line in events[-1].splitlines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
    return name, orjson.loads(data)


@dataclass(frozen=True)
class Answer:
    request_id: str
    response: httpx.Response
    record: dict


@pytest.fixture(scope="module")
def answers(live: LiveKeygate, fault_routes: None) -> dict[Fault, Answer]:
    """Every fault's answer and usage record: the requests run concurrently, so the slow faults
    overlap, and the usage records are read once the batch writer has written them all."""

    def send(fault: Fault) -> tuple[str, httpx.Response]:
        request_id = new_request_id()
        body = {"model": fault.model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        body.update(dict(fault.extra))
        if fault.stream:
            body["stream"] = True
        headers = {"x-request-id": request_id, "anthropic-version": "2023-06-01"}
        return request_id, live.post(fault.path, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=8) as pool:
        sent = dict(zip(FAULTS, pool.map(send, FAULTS), strict=True))
    records = live.usage(*(request_id for request_id, _ in sent.values()), timeout=15)
    return {fault: Answer(rid, response, records[rid]) for fault, (rid, response) in sent.items()}


@pytest.mark.parametrize(
    "fault", [pytest.param(f, id=f"{f.dialect}-{f.model}{'-stream' if f.stream else ''}") for f in FAULTS]
)
def test_an_upstream_fault_is_a_clear_answer_and_a_usage_record_and_leaks_nothing(
    live: LiveKeygate, answers: dict[Fault, Answer], fault: Fault
) -> None:
    request_id, response, record = answers[fault].request_id, answers[fault].response, answers[fault].record

    assert response.status_code == fault.status, response.text[:300]
    everything = str(response.headers) + response.text
    for secret in (UPSTREAM_SECRET, WRONG_UPSTREAM_SECRET, live.keys["all"]):
        assert secret not in everything
    assert f"127.0.0.1:{live.upstream.port}" not in everything and live.dead_url not in everything
    assert "location" not in response.headers and "Traceback" not in everything
    if fault.status == 200:
        name, error = _last_event(response.text)
        assert response.headers["content-type"].startswith("text/event-stream")
        if fault.dialect == "anthropic":
            assert name == "error" and error["type"] == "error" and error["request_id"] == request_id
            assert error["error"]["type"] in ("api_error", "timeout_error")
        else:
            assert error["error"]["code"] == fault.error_type and error["error"]["request_id"] == request_id
    else:
        payload = response.json()
        if fault.dialect == "anthropic":
            assert payload["type"] == "error" and set(payload["error"]) == {"type", "message"}
            assert payload["request_id"] == request_id
        else:
            assert {"message", "type", "code"} <= set(payload["error"])
            assert payload["error"]["request_id"] == request_id
    assert (record["status_code"], record["error_type"], record["provider"]) == (
        fault.status,
        fault.error_type,
        fault.provider,
    )
    assert record["model"] == fault.model
    assert bool(record["streamed"]) == (fault.status == 200)


@pytest.mark.parametrize("fault", [f for f in FAULTS if f.error_type == "upstream_timeout"], ids=lambda f: f.dialect)
def test_a_slow_first_byte_is_cut_at_the_providers_timeout(answers: dict[Fault, Answer], fault: Fault) -> None:
    response = answers[fault].response

    assert response.status_code == 504
    error = response.json()["error"]
    assert error["type"] == "timeout_error" if fault.dialect == "anthropic" else error["code"] == "upstream_timeout"
    assert FLAKY_FIRST_BYTE_TIMEOUT * 0.9 <= response.elapsed.total_seconds() < FLAKY_FIRST_BYTE_TIMEOUT + 1.5
