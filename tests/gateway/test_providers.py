"""Provider adapters: what each kind speaks natively, and so what the forwarder translates."""

from __future__ import annotations

import pytest

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
