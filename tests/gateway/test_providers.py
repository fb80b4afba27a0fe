"""Provider adapters: what each kind speaks natively, and so what the forwarder translates."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gateway.exceptions import UpstreamError
from gateway.models import ProviderKind
from gateway.plans import Plan
from gateway.providers import adapter
from gateway.proxy import Forwarder
from gateway.routing import Deployment, RouteEntry
from tests.gateway.test_proxy import _request, _upstream


def test_every_provider_kind_has_an_adapter() -> None:
    assert {adapter(kind).kind for kind in ProviderKind.values} == set(ProviderKind.values)


@pytest.mark.parametrize(
    ("kind", "protocols"),
    [
        pytest.param("openai", {"chat", "responses"}, id="openai"),
        pytest.param("openai-chat", {"chat"}, id="openai-chat"),
        pytest.param("anthropic", {"messages"}, id="anthropic"),
        pytest.param("demo", {"chat", "messages", "responses"}, id="demo"),
    ],
)
def test_each_kind_declares_the_protocols_it_speaks(kind: str, protocols: set[str]) -> None:
    assert adapter(kind).protocols == protocols


def _route(kind: str) -> RouteEntry:
    return RouteEntry(pattern="*", deployments=(Deployment(_upstream(kind)),), priority=1)


def _plan(endpoint: str, kind: str) -> Plan:
    (plan,) = (
        Forwarder(max_response_bytes=1024)
        .plan(_request(endpoint, {"model": "m", "input": "hi"}), _route(kind))
        .values()
    )
    return plan


def test_a_responses_request_to_a_chat_only_provider_is_translated_to_chat_completions() -> None:
    plan = _plan("responses", "openai-chat")

    assert (plan.endpoint, plan.source, plan.target) == ("chat/completions", "responses", "chat")


def test_a_responses_request_to_an_openai_provider_passes_through() -> None:
    plan = _plan("responses", "openai")

    assert (plan.endpoint, plan.translated) == ("responses", False)


def test_a_chat_only_provider_still_serves_embeddings_as_they_are() -> None:
    plan = _plan("embeddings", "openai-chat")

    assert (plan.endpoint, plan.translated) == ("embeddings", False)


# --- the idle timeout of a streamed answer (gateway.deadlines.idle_limit in _HTTPReply.chunks) ---


class _SlowReader:
    """What ``_HTTPReply`` uses of an aiohttp response: chunks that arrive ``gaps`` seconds apart."""

    status, headers = 200, {"content-type": "text/event-stream"}

    def __init__(self, gaps: list[float]) -> None:
        self.content = self
        self._gaps = list(gaps)

    async def readany(self) -> bytes:
        if not self._gaps:
            return b""
        await asyncio.sleep(self._gaps.pop(0))
        return b"data: {}\n\n"

    def release(self) -> None:
        pass


def _stream(gaps: list[float], consumer_pause: float) -> tuple[int, BaseException | None]:
    from gateway.providers.base import _HTTPReply

    upstream = dataclasses.replace(_upstream("openai"), idle_timeout=0.3)  # far above the 0.01 s gaps

    async def main() -> tuple[int, BaseException | None]:
        received = 0
        try:
            async for _ in _HTTPReply(_SlowReader(gaps), upstream).chunks():
                received += 1
                await asyncio.sleep(consumer_pause)  # the relay sending the chunk on to a slow client
        except UpstreamError as error:
            return received, error
        return received, None

    return asyncio.run(main())


def test_a_stream_whose_client_is_slower_than_the_idle_timeout_is_not_cut() -> None:
    assert _stream([0.01] * 4, consumer_pause=0.5) == (4, None)


def test_a_stream_that_stalls_longer_than_the_idle_timeout_is_cut_with_an_idle_timeout_error() -> None:
    received, error = _stream([0.01, 0.01, 5], consumer_pause=0)
    assert received == 2
    assert isinstance(error, UpstreamError) and error.kind == "upstream_idle_timeout"
