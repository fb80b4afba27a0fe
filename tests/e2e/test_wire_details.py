"""Protocol details real clients rely on, with the official SDKs against a live Keygate (issue #11):
no retries of a refused key, the Anthropic SDK's ``beta`` calls, upstream headers, provider
prefixes, the ``/api/v1`` base URL, wrong base URLs."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from tests.conftest_live import LiveKeygate, new_request_id, unknown_key

pytestmark = pytest.mark.live

HELLO = [{"role": "user", "content": "Hello"}]


def _counting_client(package: Any = httpx) -> tuple[Any, list[str]]:
    sent: list[str] = []
    return package.Client(event_hooks={"request": [lambda request: sent.append(str(request.url))]}), sent


def test_the_anthropic_sdk_does_not_retry_a_refused_key(live: LiveKeygate) -> None:
    http, sent = _counting_client(httpx2)  # the anthropic SDK's HTTP client package
    client = anthropic.Anthropic(base_url=live.url, api_key=unknown_key(), http_client=http, max_retries=3)

    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=HELLO)

    assert len(sent) == 1


def test_the_openai_sdk_does_not_retry_a_refused_key(live: LiveKeygate) -> None:
    http, sent = _counting_client()
    client = openai.OpenAI(base_url=live.url + "/v1", api_key=unknown_key(), http_client=http, max_retries=3)

    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)

    assert len(sent) == 1


def test_claude_codes_messages_beta_true_reaches_the_upstream(live: LiveKeygate) -> None:
    request_id = new_request_id()

    message = live.anthropic("all").messages.create(
        model="claude-sonnet-4-6",
        max_tokens=10,
        messages=HELLO,
        extra_headers={"x-request-id": request_id},
        extra_query={"beta": "true"},
    )

    assert message.content[0].text
    assert live.upstream_request(request_id)["query"] == "beta=true"


def test_the_upstream_request_id_comes_back_under_its_own_name(live: LiveKeygate) -> None:
    request_id = new_request_id()

    raw = live.openai("all").chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HELLO, extra_headers={"x-request-id": request_id}
    )

    assert raw.headers["x-request-id"] == request_id
    assert raw.headers["x-upstream-request-id"]


def test_a_provider_prefixed_model_reaches_the_upstream_without_its_prefix(live: LiveKeygate) -> None:
    request_id = new_request_id()

    completion = live.openai("all").chat.completions.create(
        model="openai/gpt-4o", messages=HELLO, extra_headers={"x-request-id": request_id}
    )

    assert completion.choices[0].message.content
    assert live.upstream_request(request_id)["body"]["model"] == "gpt-4o"


def test_the_openai_sdk_works_with_an_api_v1_base_url(live: LiveKeygate) -> None:
    client = openai.OpenAI(base_url=live.url + "/api/v1", api_key=live.keys["all"], max_retries=0)

    completion = client.chat.completions.create(model="gpt-4o", messages=HELLO)

    assert completion.choices[0].message.content


def test_a_base_url_without_v1_gets_a_json_404_that_names_the_fix(live: LiveKeygate) -> None:
    client = openai.OpenAI(base_url=live.url, api_key=live.keys["all"], max_retries=0)

    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)

    assert "/v1" in raised.value.message


def test_a_base_url_ending_in_v1_works_for_the_anthropic_sdk(live: LiveKeygate) -> None:
    client = anthropic.Anthropic(base_url=live.url + "/v1", api_key=live.keys["all"], max_retries=0)

    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=HELLO)

    assert message.content[0].text
