"""Claude Code (the real CLI, from npm) on GPT through Keygate: an OpenAI-only upstream, a tool used.

``claude -p … --model gpt-4o`` with ``ANTHROPIC_BASE_URL`` at Keygate speaks Anthropic Messages
(streamed, ``/v1/messages?beta=true``); Keygate routes ``gpt-4o`` to a Chat-Completions-only
provider and translates both ways. The upstream asks for the Bash tool, Claude Code runs it and
sends the tool result, the upstream answers in words. Claude Code runs with a throwaway HOME, no
telemetry, no auto-update and no non-essential traffic (README, "Claude Code, Codex and any model").
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest_live import unknown_key
from tests.e2e import npm
from tests.e2e.conftest import SECRET, AgentsKeygate, call_when_asked
from tests.support.wait import wait_until

# The first test installs the npm packages (tests/e2e/npm.py): minutes on a cold npm cache.
pytestmark = [pytest.mark.live, pytest.mark.timeout(npm.INSTALL_TIMEOUT + 120)]

MARKER = "keygate-claude-42"
COMMAND = f"echo {MARKER}"
QUIET = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}


def _claude(
    agents: AgentsKeygate, tmp_path: Path, credential: dict[str, str], prompt: str
) -> subprocess.CompletedProcess[str]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **QUIET}
    env |= {"ANTHROPIC_BASE_URL": agents.url, **credential}
    command = [str(npm.claude()), "-p", prompt, "--model", "gpt-4o", "--allowedTools", "Bash"]
    return subprocess.run(
        [*command, "--output-format", "json"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def claude_binary() -> Path:
    return npm.claude()


@pytest.mark.parametrize("variable", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_claude_code_runs_a_tool_on_gpt_4o_behind_an_openai_only_upstream(
    agents: AgentsKeygate, claude_binary: Path, tmp_path: Path, variable: str
) -> None:
    agents.script(call_when_asked("Bash", {"command": COMMAND, "description": "Print the marker"}))

    result = _claude(agents, tmp_path, {variable: agents.keys["all"]}, f"Use the Bash tool to run: {COMMAND}")

    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["is_error"] is False
    assert outcome["result"] == f"The tool answered: {MARKER}"
    requests = agents.upstream.requests
    assert {r["path"] for r in requests} == {"/v1/chat/completions"}, "every turn was translated to Chat"
    asked, answered = requests[0]["body"], requests[-1]["body"]
    assert asked["model"] == "gpt-4o" and asked["stream"] is True
    assert "Bash" in {tool["function"]["name"] for tool in asked["tools"] if tool["type"] == "function"}
    call = next(m for m in answered["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
    [tool_call] = call["tool_calls"]
    assert tool_call["function"]["name"] == "Bash"
    assert json.loads(tool_call["function"]["arguments"])["command"] == COMMAND
    tool_result = answered["messages"][-1]
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == tool_call["id"]
    assert MARKER in str(tool_result["content"])
    assert all(r["headers"]["authorization"] == f"Bearer {SECRET}" for r in requests)
    assert agents.keys["all"] not in json.dumps(requests)


def test_claude_code_gives_up_at_once_on_a_key_keygate_refuses(
    agents: AgentsKeygate, claude_binary: Path, tmp_path: Path
) -> None:
    agents.script(None)
    logged_before = len(agents.server.logs())

    # 401 with x-should-retry: false: without the header Claude Code retried for minutes (issue #11).
    result = _claude(agents, tmp_path, {"ANTHROPIC_API_KEY": unknown_key()}, "Say hello")

    outcome = json.loads(result.stdout)
    assert result.returncode != 0 and outcome["is_error"] is True
    assert outcome["api_error_status"] == 401
    assert agents.upstream.requests == []
    refused = wait_until(
        lambda: [line for line in agents.server.logs()[logged_before:].splitlines() if '"status":401' in line],
        timeout=5,
        what="the access-log line of the refused request",
    )
    assert len(refused) == 1, refused
