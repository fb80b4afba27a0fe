"""How a request reaches each deployment of its route: pass-through or translated.

A provider that speaks the client's endpoint natively gets the request as it came
(**pass-through**); one that does not, but speaks a protocol :mod:`gateway.translate` can turn
the client's into, gets it **translated** (OpenAI Chat ⇄ Anthropic Messages ⇄ Responses, in
that order of preference). A deployment that can do neither is left out; when none is left,
the request is refused with a 400 that names the endpoint to use — decided before any limit
is taken (:meth:`gateway.proxy.Forwarder.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import translate
from gateway.exceptions import BadRequest
from gateway.http import GatewayRequest
from gateway.models import ProviderKind
from gateway.providers import adapter
from gateway.providers.base import CHAT, ENDPOINT_OF_PROTOCOL, MESSAGES, PROTOCOL_OF_ENDPOINT, RESPONSES, Provider
from gateway.routing import Deployment, RouteEntry
from gateway.wire import mask_echo

# Which native protocol a translated request is sent in, in order of preference.
_TARGET_PREFERENCE = (CHAT, MESSAGES, RESPONSES)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one request reaches a provider: ``endpoint`` upstream, and for a translated request
    the client's protocol (``source``) and the one the provider speaks (``target``)."""

    provider: Provider
    endpoint: str
    source: str = ""
    target: str = ""

    @property
    def translated(self) -> bool:
        return bool(self.target)


#: A request's plan for each deployment that can serve it, by deployment key, in route order.
Plans = dict[str, Plan]


def plan_route(request: GatewayRequest, route: RouteEntry) -> Plans:
    """The plan of ``request`` for each deployment of ``route`` that can serve it, or a 400
    when none can."""
    plans: Plans = {}
    for deployment in route.deployments:
        plan = plan_one(request, deployment)
        if plan is not None:
            plans[deployment.key] = plan
    if not plans:
        kind = route.upstream.kind
        other = "/v1/messages" if kind == ProviderKind.ANTHROPIC else "/v1/chat/completions"
        raise BadRequest(
            f"The model '{mask_echo(request.model or '')}' is served by an "
            f"{ProviderKind(kind).label} provider; call it through {other}.",
            param="model",
        )
    return plans


def plan_one(request: GatewayRequest, deployment: Deployment) -> Plan | None:
    """How ``request`` reaches ``deployment``, or None when its provider can take it neither
    natively nor translated."""
    provider = adapter(deployment.upstream.kind)
    if provider.speaks(request.endpoint):
        return Plan(provider, request.endpoint)
    source = PROTOCOL_OF_ENDPOINT.get(request.endpoint, "")
    targets = [p for p in _TARGET_PREFERENCE if p in provider.protocols]
    if translate is not None and source and targets:
        return Plan(provider, ENDPOINT_OF_PROTOCOL[targets[0]], source=source, target=targets[0])
    return None
