"""Team limits as clients meet them: a live Keygate (demo provider), keys of one team."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.support.live import KeygateServer
from tests.support.wait import wait_until

pytestmark = pytest.mark.live

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with KeygateServer(tmp_path_factory.mktemp("teams")) as live:
        yield live


def _team(server: KeygateServer, name: str, **limits) -> None:
    server.shell(f"from keys import services; services.team_create(name={name!r}, **{limits!r})")


def test_keys_of_a_team_share_its_budget_and_the_refusal_names_the_team(server) -> None:
    _team(server, "search", model_patterns="gpt-*", budget_tokens=60, budget_period="month")
    keys = server.make_keys(*({"name": f"k{i}", "model_patterns": "gpt-4o", "team": "search"} for i in range(3)))
    clients = [openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0) for key in keys]
    used = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for turn in range(12):
            client = clients[turn % 3]
            used += client.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=16).usage.total_tokens
    assert 0 < used <= 60
    assert refused.value.code == "team_budget_exceeded" and refused.value.type == "insufficient_quota"
    assert refused.value.response.headers["x-keygate-limit-scope"] == "team"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert "This team has used its token budget" in refused.value.message


def test_a_model_outside_the_teams_is_refused_in_the_anthropic_dialect_naming_the_team(server) -> None:
    _team(server, "gpt-only", model_patterns="gpt-*")
    (key,) = server.make_keys({"name": "narrow", "model_patterns": "gpt-*", "team": "gpt-only"})
    server.shell(
        "from keys import services; services.team_update(team=services.find_team('gpt-only'), model_patterns='gpt-4o')"
    )
    client = anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)

    def refused():
        try:
            client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=HELLO)
        except anthropic.PermissionDeniedError as error:
            return error
        return None

    error = wait_until(refused, timeout=10)  # the state TTL bounds a change made by another process
    assert error.body["error"]["type"] == "permission_error"
    assert error.response.headers["x-keygate-limit-scope"] == "team"
    assert "team may not use the model" in error.body["error"]["message"]


def test_a_teams_rpm_set_later_reaches_the_gateway(server) -> None:
    _team(server, "later")
    (key,) = server.make_keys({"name": "l", "model_patterns": "*", "team": "later"})
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=HELLO).choices
    server.shell("from keys import services; services.team_update(team=services.find_team('later'), rpm_limit=1)")

    def limited():
        response = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
        return response.headers.get("x-ratelimit-limit-requests") == "1"

    wait_until(limited, timeout=10)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert refused.value.response.headers["x-keygate-limit-scope"] == "team"
