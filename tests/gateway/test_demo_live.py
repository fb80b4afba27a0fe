"""The quickstart the README promises: with no OPENAI_* / ANTHROPIC_* settings, `make run` serves
the built-in demo provider, and the official SDKs work against it offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from gateway.providers.demo import DEMO_MODELS
from tests.conftest_live import LiveKeygate, new_request_id, start_server

pytestmark = pytest.mark.live

HI = [{"role": "user", "content": "Is this the demo?"}]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, migrated_database: Path) -> Iterator[LiveKeygate]:
    # KeygateServer drops every OPENAI_* / ANTHROPIC_* variable of this environment.
    server = start_server(tmp_path_factory.mktemp("keygate-demo"), migrated_database)
    try:
        everything, some = server.make_keys(
            {"name": "everything", "model_patterns": ["*"]},
            {"name": "some", "model_patterns": ["gpt-4o*", "claude-haiku-4-5"]},
        )
        yield LiveKeygate(server=server, keys={"everything": everything, "some": some})
    finally:
        server.stop()


def test_the_openai_sdk_gets_a_demo_answer(demo: LiveKeygate) -> None:
    completion = demo.openai("everything").chat.completions.create(model="gpt-4o", messages=HI)

    assert completion.choices[0].message.content.startswith("Hello from Keygate's demo provider!")
    assert completion.usage.total_tokens > 0


def test_the_openai_sdk_gets_a_demo_stream(demo: LiveKeygate) -> None:
    chunks = list(demo.openai("everything").chat.completions.create(model="demo-gpt", messages=HI, stream=True))

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert len(chunks) > 3
    assert text.startswith("Hello from Keygate's demo provider!")
    assert all(chunk.choices for chunk in chunks)


def test_the_anthropic_sdk_gets_a_demo_answer(demo: LiveKeygate) -> None:
    message = demo.anthropic("everything").messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HI)

    assert "Is this the demo?" in message.content[0].text


def test_the_anthropic_sdk_gets_a_demo_stream(demo: LiveKeygate) -> None:
    client = demo.anthropic("everything")

    with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=HI) as stream:
        text = "".join(stream.text_stream)

    assert "Is this the demo?" in text


def test_the_demo_lists_its_models(demo: LiveKeygate) -> None:
    models = demo.openai("everything").models.list()

    assert [model.id for model in models] == list(DEMO_MODELS)
    assert {model.owned_by for model in models} == {"demo"}


def test_the_demo_lists_only_the_models_a_key_may_use(demo: LiveKeygate) -> None:
    models = demo.openai("some").models.list()

    assert [model.id for model in models] == ["gpt-4o", "gpt-4o-mini", "claude-haiku-4-5"]


def test_the_demo_still_enforces_the_keys_patterns(demo: LiveKeygate) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        demo.openai("some").chat.completions.create(model="gpt-4.1-mini", messages=HI)
    with pytest.raises(anthropic.PermissionDeniedError):
        demo.anthropic("some").messages.create(model="claude-opus-4-6", max_tokens=5, messages=HI)


def test_demo_usage_is_recorded(demo: LiveKeygate) -> None:
    request_id = new_request_id()

    completion = demo.openai("everything").chat.completions.create(
        model="gpt-4o", messages=HI, extra_headers={"X-Request-Id": request_id}
    )

    record = demo.usage(request_id)[request_id]
    assert (record["provider"], record["status_code"]) == ("demo", 200)
    assert (record["input_tokens"], record["output_tokens"]) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )


def test_the_openai_sdk_gets_a_demo_tool_call(demo: LiveKeygate) -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
        }
    ]

    completion = demo.openai("everything").chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "use the tool"}], tools=tools
    )

    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls" and call.function.name == "lookup"


def test_the_anthropic_sdk_streams_a_demo_tool_use(demo: LiveKeygate) -> None:
    tools = [{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]

    with demo.anthropic("everything").messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "use the tool"}], tools=tools
    ) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use" and final.content[-1].input == {"q": "use the tool"}
