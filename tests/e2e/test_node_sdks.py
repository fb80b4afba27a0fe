"""The official Node SDKs (``openai``, ``@anthropic-ai/sdk``, from npm) against a live Keygate.

``node_sdks.mjs`` runs every scenario once (one Node process, ~2 s) and prints the results; each
test below asserts one of them. Upstreams speak one protocol each (``tests/e2e/conftest.py``):
``gpt-4o`` → Chat Completions only, ``claude-sonnet-4-5`` → Anthropic Messages only, so a
cross-protocol scenario goes through the translator, plain, streamed and with tools.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest_live import unknown_key
from tests.e2e import npm
from tests.e2e.conftest import AgentsKeygate, call_when_asked

# The first test installs the npm packages (tests/e2e/npm.py): minutes on a cold npm cache.
pytestmark = [pytest.mark.live, pytest.mark.timeout(npm.INSTALL_TIMEOUT + 120)]

SCRIPT = Path(__file__).with_name("node_sdks.mjs")
HELLO = "Hello from node"
WEATHER = {"city": "Paris"}


@pytest.fixture(scope="module")
def results(agents: AgentsKeygate) -> dict[str, Any]:
    script = npm.node_script(SCRIPT)
    agents.script(call_when_asked("get_weather", WEATHER))
    config = {"url": agents.url, "keys": {**agents.keys, "unknown": unknown_key()}}
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "KEYGATE_NODE_TEST": json.dumps(config)}
    ran = subprocess.run(["node", str(script)], cwd=script.parent, env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    found["_upstream"] = agents.upstream.requests
    return found


def _ok(results: dict[str, Any], name: str) -> dict[str, Any]:
    outcome = results[name]
    assert outcome["ok"], outcome
    return outcome["value"]


def _paths(results: dict[str, Any], model: str) -> set[str]:
    return {r["path"] for r in results["_upstream"] if r["model"] == model}


def test_every_model_is_served_only_in_its_upstreams_protocol(results: dict[str, Any]) -> None:
    assert _paths(results, "gpt-4o") == {"/v1/chat/completions"}
    assert _paths(results, "claude-sonnet-4-5") == {"/v1/messages"}


@pytest.mark.parametrize("name", ["openai_plain", "openai_to_anthropic_plain"])
def test_the_openai_sdk_gets_an_answer(results: dict[str, Any], name: str) -> None:
    value = _ok(results, name)

    assert HELLO in value["text"]
    assert value["usage"]["prompt_tokens"] > 0 and value["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("name", ["openai_stream", "openai_to_anthropic_stream"])
def test_the_openai_sdk_streams_the_same_answer_in_pieces_with_usage(results: dict[str, Any], name: str) -> None:
    value = _ok(results, name)
    plain = _ok(results, name.replace("stream", "plain"))

    assert value["pieces"] > 1 and value["text"] == plain["text"]
    assert value["finish"] == "stop" and value["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("name", ["openai_tools", "openai_to_anthropic_tools"])
def test_the_openai_sdk_gets_a_tool_call_and_an_answer_to_its_result(results: dict[str, Any], name: str) -> None:
    value = _ok(results, name)

    assert (value["finish"], value["name"], value["arguments"]) == ("tool_calls", "get_weather", WEATHER)
    assert value["answer"] == "The tool answered: Sunny, 21 C"


def test_the_openai_sdk_reassembles_a_translated_streamed_tool_call(results: dict[str, Any]) -> None:
    value = _ok(results, "openai_to_anthropic_stream_tools")

    [call] = value["calls"]
    assert value["finish"] == "tool_calls"
    assert call["name"] == "get_weather" and call["id"] and json.loads(call["arguments"]) == WEATHER


def test_the_openai_sdks_responses_api_reaches_an_anthropic_only_upstream(results: dict[str, Any]) -> None:
    value = _ok(results, "openai_responses_to_anthropic")

    assert HELLO in value["text"] and value["status"] == "completed"
    assert value["usage"]["input_tokens"] > 0


@pytest.mark.parametrize("name", ["anthropic_plain", "anthropic_to_openai_plain"])
def test_the_anthropic_sdk_gets_an_answer(results: dict[str, Any], name: str) -> None:
    value = _ok(results, name)

    assert HELLO in value["text"] and value["stop"] == "end_turn"
    assert value["usage"]["input_tokens"] > 0 and value["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("name", ["anthropic_stream", "anthropic_to_openai_stream"])
def test_the_anthropic_sdk_streams_every_event_in_order(results: dict[str, Any], name: str) -> None:
    value = _ok(results, name)
    plain = _ok(results, name.replace("stream", "plain"))

    events = [event for event in value["events"] if event != "ping"]
    assert events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"]
    assert events[1] == "content_block_start" and events[-3] == "content_block_stop"
    assert value["pieces"] > 1 and value["content"][0]["text"] == plain["text"]
    assert value["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("name", ["anthropic_tools", "anthropic_to_openai_tools"])
def test_the_anthropic_sdk_gets_a_tool_use_and_an_answer_to_its_result(results: dict[str, Any], name: str) -> None:
    value = _ok(results, name)

    assert (value["stop"], value["name"], value["input"]) == ("tool_use", "get_weather", WEATHER)
    assert value["answer"] == "The tool answered: Sunny, 21 C"


def test_the_anthropic_sdk_reassembles_a_translated_streamed_tool_use(results: dict[str, Any]) -> None:
    value = _ok(results, "anthropic_to_openai_stream_tools")

    [use] = [block for block in value["content"] if block["type"] == "tool_use"]
    assert value["stop"] == "tool_use"
    assert use["name"] == "get_weather" and use["input"] == WEATHER


@pytest.mark.parametrize(
    ("name", "error", "status"),
    [
        pytest.param("openai_401", "AuthenticationError", 401, id="openai-401"),
        pytest.param("openai_403", "PermissionDeniedError", 403, id="openai-403"),
        pytest.param("anthropic_401", "AuthenticationError", 401, id="anthropic-401"),
        pytest.param("anthropic_403", "PermissionDeniedError", 403, id="anthropic-403"),
    ],
)
def test_a_refusal_is_the_sdks_typed_error_and_says_not_to_retry(
    results: dict[str, Any], name: str, error: str, status: int
) -> None:
    outcome = results[name]

    assert outcome["ok"] is False and outcome["typed"] is True
    assert (outcome["class"], outcome["status"]) == (error, status)
    assert outcome["shouldRetry"] == "false"
