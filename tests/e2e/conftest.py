"""A Keygate whose upstreams each speak one protocol, for the agents and the Node SDKs.

``agents`` is a Keygate process of its own (the session's ``live`` one routes every model to
providers that speak everything): ``gpt-*`` goes to provider ``chat-only`` (kind ``openai-chat``:
Chat Completions, no Responses API, as vLLM or Ollama) and ``claude-*`` to ``messages-only`` (kind
``anthropic``), both on one fake upstream (:mod:`tests.support.upstream`) whose request log shows
which protocol each request arrived in. Tests script that upstream's tool calls
(:func:`call_when_asked`) and reset it first.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.providers import demo_skills
from tests.conftest_live import shell
from tests.support.live import KeygateServer
from tests.support.upstream import Script, ScriptedCall, UpstreamServer

SECRET = "agents-upstream-" + secrets.token_hex(12)
CREDENTIAL_ENV = "KEYGATE_UPSTREAM_AGENTS"

_SETUP = """
import json, sys
from gateway.models import Provider, Route
from keys import services

spec = json.loads(sys.stdin.read())
chat = Provider.objects.create(
    name="chat-only", kind="openai-chat", base_url=spec["upstream"] + "/v1", api_key_env=spec["env"]
)
Route.objects.create(provider=chat, model_pattern="gpt-*", priority=1)
messages = Provider.objects.create(
    name="messages-only", kind="anthropic", base_url=spec["upstream"], api_key_env=spec["env"]
)
Route.objects.create(provider=messages, model_pattern="claude-*", priority=1)
keys = {name: services.key_create(name=name, model_patterns=patterns)[1] for name, patterns in spec["keys"].items()}
print(json.dumps(keys))
"""


@dataclass
class AgentsKeygate:
    server: KeygateServer
    upstream: UpstreamServer
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def script(self, script: Script | None) -> None:
        """Forget earlier requests and answer the next ones with ``script``."""
        self.upstream.reset()
        self.upstream.script = script


def call_when_asked(name: str, arguments: dict[str, Any]) -> Script:
    """Call tool ``name`` with ``arguments`` whenever it is offered and the user has the turn; after a
    tool result the demo answers "The tool answered: <result>"."""

    def script(endpoint: str, body: dict[str, Any]) -> ScriptedCall | None:
        offered = {(tool.get("function") or tool).get("name") for tool in body.get("tools") or []}
        if name in offered and demo_skills.after_tool_result(endpoint, body) is None:
            return ScriptedCall(name, arguments)
        return None

    return script


@pytest.fixture(scope="session")
def agents(migrated_database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentsKeygate]:
    with UpstreamServer(expect_key=SECRET) as upstream:
        workdir = tmp_path_factory.mktemp("agents-keygate")
        server = KeygateServer(workdir, env={CREDENTIAL_ENV: SECRET})
        (workdir / "keygate.sqlite3").write_bytes(migrated_database.read_bytes())
        # Providers and keys exist before the server starts, so its first route load has them.
        spec = {
            "upstream": upstream.url,
            "env": CREDENTIAL_ENV,
            "keys": {"all": ["*"], "gpt-only": ["gpt-4o"]},
        }
        keys = json.loads(shell(server, _SETUP, stdin=json.dumps(spec)).strip().splitlines()[-1])
        server.start()
        try:
            yield AgentsKeygate(server=server, upstream=upstream, keys=keys)
        finally:
            server.stop()
