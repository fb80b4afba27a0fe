"""Which upstream serves a model: an in-memory snapshot of providers, routes and prices.

The snapshot is read from the database at start-up and re-read in the background (every
``KEYGATE_ROUTES_REFRESH`` seconds, and soon after any change made in this process), so routing
a request costs a list scan, not a query. Upstream URLs and credentials come only from here —
never from a request (no SSRF through the body).
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import logging
import os
from dataclasses import dataclass, field
from decimal import Decimal

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction

from gateway.models import (
    DEFAULT_RETRY_ON,
    NEVER_RETRIED,
    ModelPrice,
    Provider,
    ProviderKind,
    Route,
    credential_env_refusal,
)
from gateway.models import Deployment as DeploymentRow
from gateway.providers import adapter

log = logging.getLogger(__name__)

ENV_OPENAI = "openai"
ENV_ANTHROPIC = "anthropic"
ENV_DEMO = "demo"


def _fernet() -> Fernet:
    key = hashlib.sha256(b"keygate-provider-credentials:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_credential(plaintext: str) -> str:
    """Encrypt an upstream credential for storage (Fernet, key derived from SECRET_KEY)."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_credential(token: str) -> str | None:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        log.error("a stored provider credential could not be decrypted (was SECRET_KEY changed?)")
        return None


_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Upstream:
    """A provider as the proxy sees it. ``repr`` never shows the credential."""

    id: int
    name: str
    kind: str
    base_url: str
    credential: str | None = field(repr=False)
    connect_timeout: float
    first_byte_timeout: float
    idle_timeout: float


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream a route may use: a provider, the model asked of it, its priority (lowest
    first) and weight (its share among the healthy deployments of one priority).

    ``key`` names its circuit breaker (``provider:model``, ``*`` when the client's model name
    is passed on): stable across reloads and processes, and bounded by configuration, so it can
    label metrics.
    """

    upstream: Upstream
    upstream_model: str = ""
    priority: int = 0
    weight: int = 1
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:  # a copy made for a prefixed model name keeps its deployment's key
            object.__setattr__(self, "key", f"{self.upstream.name}:{self.upstream_model or '*'}")

    def upstream_name(self, model: str) -> str:
        """The model name the upstream is asked for."""
        return self.upstream_model or model


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """How a route retries: at most ``max_attempts`` deployments per request, moving on for the
    ``retry_on`` statuses (401/403 always), within ``deadline`` seconds until the answer starts
    (0: no bound beyond each attempt's timeouts)."""

    max_attempts: int = 3
    retry_on: frozenset[int] = frozenset(DEFAULT_RETRY_ON)
    deadline: float = 0.0
    retry_after_cap: float = 0.0


_DEFAULT_POLICY = RoutePolicy()


@dataclass(frozen=True, slots=True)
class RouteEntry:
    pattern: str
    deployments: tuple[Deployment, ...]
    priority: int
    listed_models: tuple[str, ...] = ()
    policy: RoutePolicy = _DEFAULT_POLICY

    @property
    def upstream(self) -> Upstream:
        """The first deployment's upstream (what /v1/models names as the owner)."""
        return self.deployments[0].upstream

    @property
    def upstream_model(self) -> str:
        return self.deployments[0].upstream_model

    def matches(self, model: str) -> bool:
        return self.pattern == model or ("*" in self.pattern and fnmatch.fnmatchcase(model, self.pattern))

    def upstream_name(self, model: str) -> str:
        """The model name the first deployment's upstream is asked for."""
        return self.deployments[0].upstream_name(model)


@dataclass(frozen=True, slots=True)
class Price:
    pattern: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal


@dataclass(slots=True)
class RoutingTable:
    routes: list[RouteEntry]
    prices: list[Price]
    #: Model names fetched from each upstream's own /v1/models (by upstream id), kept by the
    #: gateway's background refresh (gateway.asgi) and shared by every table it loads.
    discovered: dict[int, tuple[str, ...]] = field(default_factory=dict)
    _known: frozenset[str] = field(default=frozenset(), init=False, repr=False)

    def __post_init__(self) -> None:
        names = set(self.listed_models())
        names.update(route.pattern for route in self.routes if "*" not in route.pattern)
        names.update(d.upstream_model for route in self.routes for d in route.deployments if d.upstream_model)
        self._known = frozenset(names)

    def resolve(self, model: str) -> RouteEntry | None:
        if "/" in model:
            prefixed = self._resolve_prefixed(model)
            if prefixed is not None:
                return prefixed
        for route in self.routes:
            if route.matches(model):
                return route
        return None

    def _resolve_prefixed(self, model: str) -> RouteEntry | None:
        """``openai/gpt-4o``, ``anthropic/claude-sonnet-4-5`` (OpenRouter/LiteLLM style): the
        route a provider of that kind (or name) has for the rest, asking the upstream for the
        name without the prefix. A route for the whole prefixed name wins."""
        prefix, _, rest = model.partition("/")
        if not rest or any(route.pattern == model for route in self.routes):
            return None
        for route in self.routes:
            if not route.matches(rest):
                continue
            chosen = tuple(
                dataclasses.replace(d, upstream_model=d.upstream_model or rest)
                for d in route.deployments
                if prefix in (d.upstream.kind.partition("-")[0], d.upstream.name)  # openai-chat is "openai/"
            )
            if chosen:
                return dataclasses.replace(route, deployments=chosen)
        return None

    def listed_models(self) -> list[str]:
        """Concrete model names the routes serve (for /v1/models and the dashboard)."""
        names: list[str] = []
        for route in self.routes:
            candidates = list(route.listed_models)
            if "*" not in route.pattern:
                candidates.insert(0, route.pattern)
            if not route.listed_models:
                candidates.extend(adapter(route.upstream.kind).default_models())
                candidates.extend(self.discovered.get(route.upstream.id, ()))
            for name in candidates:
                if name not in names and self.resolve(name) is route:
                    names.append(name)
        return names

    def metric_label(self, model: str) -> str:
        """``model`` when this table routes it by name, else ``"other"``: a metric label must
        come from a bounded set, never from whatever a client types (issue #10)."""
        return model if model in self._known else "other"

    def cost(self, model: str, input_tokens: int, output_tokens: int, upstream: str | None = None) -> Decimal:
        """USD cost of a request for ``model``, priced as the upstream model that answered it
        (``upstream``; by default the one its route's first deployment asks for): an alias
        ``cheap`` → ``gpt-4o`` costs what gpt-4o costs, so budgets hold, and a request that failed
        over costs what the deployment that answered charges. The alias's own price applies only
        when the upstream model has none. 0 when nothing is priced."""
        if not self.prices:
            return _ZERO
        if upstream is None:
            route = self.resolve(model)
            upstream = route.upstream_name(model) if route is not None else model
        best = self._price(upstream) or (self._price(model) if upstream != model else None)
        if best is None:
            return _ZERO
        return (best.input_per_mtok * input_tokens + best.output_per_mtok * output_tokens) / Decimal(1_000_000)

    def _price(self, model: str) -> Price | None:
        best = None
        for price in self.prices:
            if price.pattern == model or ("*" in price.pattern and fnmatch.fnmatchcase(model, price.pattern)):
                if best is None or len(price.pattern.replace("*", "")) > len(best.pattern.replace("*", "")):
                    best = price
        return best


def _credential(provider: Provider) -> str | None:
    if provider.api_key_env:
        # Checked again where the value is read, not only when the admin saved it: a row that
        # reached the database another way (a shell, a fixture, an old version) reads nothing.
        refusal = credential_env_refusal(provider.api_key_env)
        if refusal:
            log.error("provider %r: credential variable refused, sending no credential: %s", provider.name, refusal)
            return None
        return os.environ.get(provider.api_key_env) or None
    if provider.api_key_encrypted:
        return decrypt_credential(provider.api_key_encrypted)
    return None


def load_table() -> RoutingTable:
    """Read enabled routes with their deployments and providers, and prices (a few small queries).

    A route's own provider is its first deployment (priority 0, weight 1); its enabled
    :class:`~gateway.models.Deployment` rows with enabled providers follow. A route left with
    no deployment is not routed.
    """
    upstreams: dict[int, Upstream] = {}

    def upstream_of(provider: Provider) -> Upstream:
        if provider.pk not in upstreams:
            upstreams[provider.pk] = Upstream(
                id=provider.pk,
                name=provider.name,
                kind=provider.kind,
                base_url=provider.base_url.rstrip("/"),
                credential=_credential(provider),
                connect_timeout=provider.connect_timeout,
                first_byte_timeout=provider.first_byte_timeout,
                idle_timeout=provider.idle_timeout,
            )
        return upstreams[provider.pk]

    extra: dict[int, list[Deployment]] = {}
    for row in DeploymentRow.objects.filter(
        is_enabled=True, route__is_enabled=True, provider__is_enabled=True
    ).select_related("provider"):
        extra.setdefault(row.route_id, []).append(
            Deployment(upstream_of(row.provider), row.upstream_model, row.priority, row.weight)
        )
    routes: list[RouteEntry] = []
    for route in Route.objects.filter(is_enabled=True).select_related("provider"):
        deployments: list[Deployment] = []
        if route.provider is not None and route.provider.is_enabled:
            deployments.append(Deployment(upstream_of(route.provider), route.upstream_model))
        deployments.extend(extra.get(route.pk, ()))
        if not deployments:
            continue
        deployments.sort(key=lambda d: d.priority)  # stable: the route's own provider first among equals
        retry_on = frozenset(s for s in route.retry_on or () if isinstance(s, int)) - NEVER_RETRIED
        routes.append(
            RouteEntry(
                pattern=route.model_pattern,
                deployments=tuple(deployments),
                priority=route.priority,
                listed_models=tuple(route.listed_models or ()),
                policy=RoutePolicy(
                    max_attempts=max(1, route.max_attempts),
                    retry_on=retry_on,
                    deadline=max(0.0, route.deadline),
                    retry_after_cap=max(0.0, route.retry_after_cap),
                ),
            )
        )
    # Lowest priority first; among equals the most specific pattern (fewest wildcards, longest).
    routes.sort(key=lambda r: (r.priority, r.pattern.count("*"), -len(r.pattern)))
    prices = [Price(p.model_pattern, p.input_per_mtok, p.output_per_mtok) for p in ModelPrice.objects.all()]
    return RoutingTable(routes=routes, prices=prices)


def model_choices() -> list[str]:
    """Model names for the dashboard's "models" picker (``KEYGATE_MODEL_CHOICES``)."""
    return load_table().listed_models()


def _env_models(name: str) -> list[str]:
    """Model names an environment variable lists (comma-separated), for /v1/models."""
    return [m.strip() for m in os.environ.get(name, "").split(",") if m.strip()]


def _declared_providers() -> list[dict]:
    declared = []
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        declared.append(
            {
                "name": ENV_OPENAI,
                "kind": ProviderKind.OPENAI,
                "base_url": os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
                "api_key_env": "OPENAI_API_KEY",
                "route": ("*", 1000, _env_models("OPENAI_MODELS")),
            }
        )
    if os.environ.get("ANTHROPIC_BASE_URL") or os.environ.get("ANTHROPIC_API_KEY"):
        declared.append(
            {
                "name": ENV_ANTHROPIC,
                "kind": ProviderKind.ANTHROPIC,
                "base_url": os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com",
                "api_key_env": "ANTHROPIC_API_KEY",
                "route": ("claude-*", 500, _env_models("ANTHROPIC_MODELS")),
            }
        )
    return declared


def sync_env_providers() -> list[str]:
    """Make the environment-declared providers match the environment (run at every start).

    ``OPENAI_BASE_URL``/``OPENAI_API_KEY`` → provider ``openai`` for every model;
    ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY`` → provider ``anthropic`` for ``claude-*``.
    ``OPENAI_MODELS`` / ``ANTHROPIC_MODELS`` (comma-separated) name the models ``/v1/models`` lists
    for those catch-all routes.
    With neither, and no provider configured in the admin, the built-in ``demo`` provider answers
    every model. Providers made in the admin are never touched. Returns the managed names.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _sync_env_providers()
        except IntegrityError:  # another worker synced at the same moment; look again
            continue
    return _sync_env_providers()


def _sync_env_providers() -> list[str]:
    declared = _declared_providers()
    names = [d["name"] for d in declared]
    has_admin_providers = Provider.objects.filter(from_environment=False, is_enabled=True).exists()
    if not declared and not has_admin_providers:
        declared.append(
            {"name": ENV_DEMO, "kind": ProviderKind.DEMO, "base_url": "", "api_key_env": "", "route": ("*", 10000, [])}
        )
        names.append(ENV_DEMO)
    Provider.objects.filter(from_environment=True).exclude(name__in=names).delete()
    for spec in declared:
        pattern, priority, listed = spec.pop("route")
        name = spec.pop("name")
        provider, created = Provider.objects.get_or_create(name=name, defaults={**spec, "from_environment": True})
        if not created:
            if not provider.from_environment:
                log.warning("provider %r exists in the admin; the environment's %s settings are ignored", name, name)
                continue
            changed = [f for f, v in spec.items() if getattr(provider, f) != v]
            for f in changed:
                setattr(provider, f, spec[f])
            if changed:
                provider.save(update_fields=[*changed, "updated_at"])
        route = provider.routes.filter(model_pattern=pattern).first()
        if route is None and not provider.routes.exists():
            Route.objects.create(provider=provider, model_pattern=pattern, priority=priority, listed_models=listed)
        elif route is not None and route.listed_models != listed:
            route.listed_models = listed
            route.save(update_fields=["listed_models"])
    return names
