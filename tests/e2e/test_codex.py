"""Codex CLI (the real one, from npm) through Keygate's /v1/responses to upstreams without that API.

``codex exec`` speaks only the Responses API (streamed, with its shell tool ``exec_command``, a
``namespace`` of sub-agent tools and ``client_metadata``). Keygate translates it to Chat Completions
for ``gpt-4o`` (provider kind ``openai-chat``) and to Anthropic Messages for ``claude-sonnet-4-5``.
The upstream asks for a shell command, Codex runs it and sends the output back, the upstream
answers in words. Codex is configured as the README says: a ``config.toml`` in its own
``CODEX_HOME`` with a model provider whose ``base_url`` is Keygate and ``wire_api = "responses"``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e import npm
from tests.e2e.conftest import SECRET, AgentsKeygate, call_when_asked

# The first test installs the npm packages (tests/e2e/npm.py): minutes on a cold npm cache.
pytestmark = [pytest.mark.live, pytest.mark.timeout(npm.INSTALL_TIMEOUT + 120)]

MARKER = "keygate-codex-7"
COMMAND = f"echo {MARKER}"
CONFIG = """\
model_provider = "keygate"
web_search = "disabled"  # a hosted tool: no upstream but OpenAI's runs it
check_for_update_on_startup = false

[features]
plugins = false  # else Codex looks up github.com for its plugin marketplace: Keygate is all it calls

[model_providers.keygate]
name = "Keygate"
base_url = "{url}/v1"
env_key = "KEYGATE_API_KEY"
wire_api = "responses"
"""


def _codex(agents: AgentsKeygate, tmp_path: Path, model: str, prompt: str) -> subprocess.CompletedProcess[str]:
    home, codex_home, work = tmp_path / "home", tmp_path / "codex", tmp_path / "work"
    for folder in (home, codex_home, work):
        folder.mkdir()
    (codex_home / "config.toml").write_text(CONFIG.format(url=agents.url))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "KEYGATE_API_KEY": agents.keys["all"],
    }
    # The sandbox needs user namespaces that CI containers lack; the command is an echo.
    command = ["node", str(npm.codex()), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
    return subprocess.run(
        [*command, "--model", model, prompt],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def codex_launcher() -> Path:
    return npm.codex()


def _tool_output(request: dict) -> str:
    """What the last turn of an upstream request returned from the tool, in either protocol."""
    last = request["body"]["messages"][-1]
    if request["path"] == "/v1/chat/completions":
        assert last["role"] == "tool"
        return last["content"]
    [result] = [block for block in last["content"] if block["type"] == "tool_result"]
    return json.dumps(result["content"])


@pytest.mark.parametrize(
    ("model", "path"),
    [
        pytest.param("gpt-4o", "/v1/chat/completions", id="chat-completions-only-upstream"),
        pytest.param("claude-sonnet-4-5", "/v1/messages", id="anthropic-only-upstream"),
    ],
)
def test_codex_runs_a_shell_command_through_responses_on_an_upstream_without_it(
    agents: AgentsKeygate, codex_launcher: Path, tmp_path: Path, model: str, path: str
) -> None:
    agents.script(call_when_asked("exec_command", {"cmd": COMMAND}))

    result = _codex(agents, tmp_path, model, f"Run {COMMAND} in the shell")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stderr, result.stderr
    final = result.stdout.strip().splitlines()[-1]
    assert final.startswith("The tool answered: "), result.stdout
    requests = agents.upstream.requests
    assert [r["path"] for r in requests] == [path, path], "both turns were translated from Responses"
    asked, answered = requests[0]["body"], requests[1]["body"]
    assert asked["model"] == model and asked["stream"] is True
    offered = {tool.get("name") or tool["function"]["name"] for tool in asked["tools"]}
    assert "exec_command" in offered
    assert any("--" in name for name in offered), "the sub-agent namespace reaches the upstream flattened"
    assert MARKER in _tool_output(requests[1])
    assert COMMAND in json.dumps(answered["messages"])
    assert all(SECRET in (r["headers"].get("authorization", "") + r["headers"].get("x-api-key", "")) for r in requests)
