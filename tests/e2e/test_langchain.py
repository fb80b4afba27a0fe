"""LangChain's ChatOpenAI against a live Keygate: ``base_url`` and ``api_key`` are all it needs."""

from __future__ import annotations

import time

import openai
import pytest
from langchain_openai import ChatOpenAI

from tests.conftest_live import LiveKeygate, new_request_id

pytestmark = pytest.mark.live


def _chat(live: LiveKeygate, key: str = "all", model: str = "gpt-4o", **options: object) -> ChatOpenAI:
    return ChatOpenAI(
        model=model, base_url=live.url + "/v1", api_key=live.keys[key], max_retries=0, timeout=10, **options
    )


def test_invoke_answers(live: LiveKeygate) -> None:
    reply = _chat(live).invoke("What is Keygate?")

    assert "What is Keygate?" in reply.content
    assert reply.usage_metadata["input_tokens"] > 0


def test_stream_yields_the_same_answer_in_several_chunks(live: LiveKeygate) -> None:
    chat = _chat(live)
    plain = chat.invoke("stream me")

    chunks = list(chat.stream("stream me"))

    assert len([chunk for chunk in chunks if chunk.content]) > 1
    assert "".join(chunk.content for chunk in chunks) == plain.content


def test_stream_delivers_the_first_chunk_before_the_upstream_sends_the_last(live: LiveKeygate) -> None:
    request_id = new_request_id()
    chat = _chat(
        live,
        model="mock-slow-stream",
        extra_body={"mock_chunks": 4, "mock_delay": 0.2},
        default_headers={"X-Request-Id": request_id},
    )

    received = [(chunk.content, time.time()) for chunk in chat.stream("hi") if chunk.content]

    sent = live.upstream_request(request_id)["chunk_times"]
    assert [text for text, _ in received] == [f"chunk {index} " for index in range(1, 5)]
    assert received[0][1] < sent[-1]
    assert received[0][1] < sent[2]


def test_a_model_outside_the_keys_patterns_raises_the_sdks_permission_error(live: LiveKeygate) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        _chat(live, key="gpt-4o", model="gpt-4o-mini").invoke("hi")
