"""The declarative configuration file, ``KEYGATE_CONFIG`` (README, "Failover and load balancing").

Providers, routes with their deployments, and prices, in YAML::

    providers:
      - {name: primary, kind: openai, base_url: http://10.0.0.5:8000/v1,
         api_key_env: KEYGATE_UPSTREAM_PRIMARY, timeouts: {connect: 5, first_byte: 60, idle: 120}}
    routes:
      - model: gpt-4o
        deployments:
          - {provider: primary, model: gpt-4o, priority: 0, weight: 3}
    prices:
      - {model: gpt-4o, input_per_mtok: 2.5, output_per_mtok: 10}

:func:`parse` validates a file without touching anything and reports every problem with its
line number (``manage.py gateway check FILE``); :func:`apply` makes the database's file-managed
entries (``from_file``) match it — at every start and on ``manage.py gateway reload`` — and
leaves what the admin and the environment declared alone. A name the admin already uses is an
error, never a silent takeover. Credentials are only ever named (``api_key_env``, through the
allow-list of :func:`gateway.models.credential_env_refusal`), never written in the file.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from django import forms
from django.db import IntegrityError, OperationalError, transaction

from gateway.models import (
    DEFAULT_RETRY_ON,
    Deployment,
    ModelPrice,
    Provider,
    ProviderKind,
    Route,
    credential_env_refusal,
    validate_retry_on,
)

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
_TOP = {"providers", "routes", "prices"}
_PROVIDER = {"name", "kind", "base_url", "api_key_env", "timeouts", "enabled"}
_TIMEOUTS = {"connect": "connect_timeout", "first_byte": "first_byte_timeout", "idle": "idle_timeout"}
_ROUTE = {"model", "deployments", "priority", "max_attempts", "retry_on", "deadline", "retry_after_cap"}
_ROUTE |= {"listed_models"}
_DEPLOYMENT = {"provider", "model", "priority", "weight"}
_PRICE = {"model", "input_per_mtok", "output_per_mtok"}


class ConfigError(Exception):
    """The file is not valid: ``problems`` are ``(line, message)``, line 0 for the whole file."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path, self.problems = path, sorted(problems)
        super().__init__("\n".join(f"{path}:{line}: {message}" for line, message in self.problems))


class _Map(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Map:  # type: ignore[override]
        mapping = _Map(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
        return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


@dataclass
class Config:
    """A valid file, as the rows it declares (field values of the models)."""

    providers: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)  # each with "deployments": [dict]
    prices: list[dict[str, Any]] = field(default_factory=list)


def load(path: str | Path) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` listing every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), [(0, f"cannot read the file ({error.strerror or error})")]) from None
    return parse(text, str(path))


def parse(text: str, path: str = "<config>") -> Config:
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = getattr(error, "problem", None) or str(error)
        raise ConfigError(path, [(mark.line + 1 if mark else 0, f"not valid YAML: {reason}")]) from None
    checker = _Checker()
    config = checker.document(document)
    if checker.problems:
        raise ConfigError(path, checker.problems)
    return config


class _Checker:
    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []

    def fail(self, where: Any, message: str, key: str | None = None) -> None:
        line = getattr(where, "lines", {}).get(key, 0) if key else 0
        self.problems.append((line or getattr(where, "line", 0), message))

    def mapping(self, value: Any, allowed: set[str], what: str, parent: Any) -> _Map | None:
        if not isinstance(value, _Map):
            self.fail(parent, f"each {what} must be a mapping")
            return None
        for key in value:
            if key not in allowed:
                self.fail(value, f"unknown field '{key}' in a {what} (known: {', '.join(sorted(allowed))})", key)
        return value

    def items(self, document: _Map, name: str) -> list[Any]:
        value = document.get(name, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(document, f"'{name}' must be a list", name)
            return []
        return value

    def number(self, item: _Map, key: str, default: float, low: float, high: float, *, integer: bool = False) -> Any:
        value = item.get(key, default)
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            noun = "a whole number" if integer else "a number"
            self.fail(item, f"'{key}' must be {noun} between {low:g} and {high:g}", key)
            return default
        return value

    def text(self, item: _Map, key: str, what: str, *, required: bool = True, max_length: int = 128) -> str:
        value = item.get(key, "")
        if value == "" and not required:
            return ""
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            self.fail(item, f"a {what} needs '{key}': a non-empty string of at most {max_length} characters", key)
            return ""
        return value

    def document(self, document: Any) -> Config:
        config = Config()
        if document is None:
            return config
        if not isinstance(document, _Map):
            self.fail(None, "the file must be a mapping with providers, routes and prices")
            return config
        for key in document:
            if key not in _TOP:
                self.fail(document, f"unknown section '{key}' (known: providers, routes, prices)", key)
        names: set[str] = set()
        for item in self.items(document, "providers"):
            provider = self.provider(item, document)
            if provider is None:
                continue
            if provider["name"] in names:
                self.fail(item, f"provider '{provider['name']}' is declared twice", "name")
            names.add(provider["name"])
            config.providers.append(provider)
        for item in self.items(document, "routes"):
            route = self.route(item, document, names)
            if route is not None:
                config.routes.append(route)
        patterns: set[str] = set()
        for item in self.items(document, "prices"):
            price = self.price(item, document)
            if price is not None:
                if price["model_pattern"] in patterns:
                    self.fail(item, f"a price for '{price['model_pattern']}' is declared twice", "model")
                patterns.add(price["model_pattern"])
                config.prices.append(price)
        return config

    def provider(self, value: Any, parent: Any) -> dict[str, Any] | None:
        from gateway.admin import validate_base_url

        item = self.mapping(value, _PROVIDER, "provider", parent)
        if item is None:
            return None
        name = item.get("name")
        if not isinstance(name, str) or not _SLUG.match(name):
            self.fail(item, "a provider needs a 'name': letters, digits, '-' and '_' (at most 64)", "name")
            name = ""
        kind = item.get("kind")
        if kind not in ProviderKind.values:
            self.fail(item, f"provider '{name}': 'kind' must be one of {', '.join(ProviderKind.values)}", "kind")
        base_url = item.get("base_url", "")
        if kind != ProviderKind.DEMO:
            if not isinstance(base_url, str) or not base_url:
                self.fail(item, f"provider '{name}' needs a 'base_url'", "base_url")
            else:
                try:
                    base_url = validate_base_url(base_url)
                except forms.ValidationError as error:
                    self.fail(item, f"provider '{name}': bad base_url: {' '.join(error.messages)}", "base_url")
        variable = item.get("api_key_env", "")
        if variable:
            refusal = credential_env_refusal(variable) if isinstance(variable, str) else "use a variable name"
            if refusal:
                self.fail(item, f"provider '{name}': api_key_env {variable!r} refused: {refusal}", "api_key_env")
        timeouts: dict[str, float] = {}
        given = item.get("timeouts", {})
        if given:
            given = self.mapping(given, set(_TIMEOUTS), "timeouts mapping", item) or {}
            for key, column in _TIMEOUTS.items():
                if key in given:
                    timeouts[column] = self.number(given, key, 1, 0.001, 3600)
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            self.fail(item, f"provider '{name}': 'enabled' must be true or false", "enabled")
        return {
            "name": name,
            "kind": kind,
            "base_url": base_url if kind != ProviderKind.DEMO else "",
            "api_key_env": variable if isinstance(variable, str) else "",
            "is_enabled": enabled is not False,
            "connect_timeout": 5.0,
            "first_byte_timeout": 120.0,
            "idle_timeout": 120.0,
            **timeouts,
        }

    def route(self, value: Any, parent: Any, providers: set[str]) -> dict[str, Any] | None:
        item = self.mapping(value, _ROUTE, "route", parent)
        if item is None:
            return None
        pattern = self.text(item, "model", "route")
        deployments = []
        given = item.get("deployments")
        if not isinstance(given, list) or not given:
            self.fail(item, f"route '{pattern}' needs 'deployments': a non-empty list", "deployments")
            given = []
        seen: set[tuple[str, str]] = set()
        for entry in given:
            deployment = self.mapping(entry, _DEPLOYMENT, "deployment", item)
            if deployment is None:
                continue
            provider = deployment.get("provider")
            if provider not in providers:
                known = ", ".join(sorted(providers)) or "none declared"
                self.fail(deployment, f"route '{pattern}': unknown provider {provider!r} ({known})", "provider")
            model = self.text(deployment, "model", "deployment", required=False)
            if (provider, model) in seen:
                self.fail(deployment, f"route '{pattern}': deployment {provider}:{model or '*'} is listed twice")
            seen.add((provider, model))
            deployments.append(
                {
                    "provider": provider,
                    "upstream_model": model,
                    "priority": self.number(deployment, "priority", 0, -1000, 1000, integer=True),
                    "weight": self.number(deployment, "weight", 1, 0, 1000, integer=True),
                }
            )
        retry_on = item.get("retry_on", list(DEFAULT_RETRY_ON))
        try:
            validate_retry_on(retry_on)
        except forms.ValidationError as error:
            self.fail(item, f"route '{pattern}': retry_on: {' '.join(error.messages)}", "retry_on")
        listed = item.get("listed_models", [])
        if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
            self.fail(item, f"route '{pattern}': 'listed_models' must be a list of names", "listed_models")
            listed = []
        return {
            "model_pattern": pattern,
            "priority": self.number(item, "priority", 100, -100000, 100000, integer=True),
            "max_attempts": self.number(item, "max_attempts", 3, 1, 10, integer=True),
            "retry_on": retry_on if isinstance(retry_on, list) else list(DEFAULT_RETRY_ON),
            "deadline": float(self.number(item, "deadline", 0, 0, 3600)),
            "retry_after_cap": float(self.number(item, "retry_after_cap", 0, 0, 60)),
            "listed_models": listed,
            "deployments": deployments,
        }

    def price(self, value: Any, parent: Any) -> dict[str, Any] | None:
        item = self.mapping(value, _PRICE, "price", parent)
        if item is None:
            return None
        price = {"model_pattern": self.text(item, "model", "price")}
        for key in ("input_per_mtok", "output_per_mtok"):
            raw = item.get(key)
            try:
                amount = Decimal(str(raw)) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
            except InvalidOperation:
                amount = None
            if amount is None or amount < 0 or amount >= 10**6:
                self.fail(item, f"price '{price['model_pattern']}': '{key}' must be a number of USD, 0 or more", key)
                amount = Decimal(0)
            price[key] = amount.quantize(Decimal("0.000001"))
        return price


# --- applying ------------------------------------------------------------------------------


def _state() -> dict[str, Any]:
    """The file-managed rows now in the database, in the shape :func:`_desired` gives."""
    providers = {p.name: {f: getattr(p, f) for f in _PROVIDER_FIELDS} for p in Provider.objects.filter(from_file=True)}
    routes = []
    for route in Route.objects.filter(from_file=True).prefetch_related("deployments__provider").order_by("pk"):
        routes.append(
            {
                **{f: getattr(route, f) for f in _ROUTE_FIELDS},
                "deployments": [
                    {"provider": d.provider.name, **{f: getattr(d, f) for f in _DEPLOYMENT_FIELDS}}
                    for d in sorted(route.deployments.all(), key=lambda d: d.pk)
                ],
            }
        )
    prices = [
        {"model_pattern": p.model_pattern, "input_per_mtok": p.input_per_mtok, "output_per_mtok": p.output_per_mtok}
        for p in ModelPrice.objects.filter(from_file=True).order_by("pk")
    ]
    return {"providers": providers, "routes": routes, "prices": prices}


_PROVIDER_FIELDS = (
    "kind",
    "base_url",
    "api_key_env",
    "is_enabled",
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
)
_ROUTE_FIELDS = ("model_pattern", "priority", "max_attempts", "retry_on", "deadline", "retry_after_cap")
_ROUTE_FIELDS += ("listed_models",)
_DEPLOYMENT_FIELDS = ("upstream_model", "priority", "weight")


def _desired(config: Config) -> dict[str, Any]:
    return {
        "providers": {p["name"]: {f: p[f] for f in _PROVIDER_FIELDS} for p in config.providers},
        "routes": config.routes,
        "prices": config.prices,
    }


def apply(config: Config, path: str = "<config>") -> bool:
    """Make the file-managed providers, routes and prices match ``config`` (one transaction).
    Returns False when they already did (nothing written). Raises ConfigError on a conflict with
    what the admin or the environment declared."""
    with transaction.atomic():
        if _state() == _desired(config):
            return False
        taken = set(
            Provider.objects.filter(name__in=[p["name"] for p in config.providers], from_file=False).values_list(
                "name", flat=True
            )
        )
        priced = set(
            ModelPrice.objects.filter(
                model_pattern__in=[p["model_pattern"] for p in config.prices], from_file=False
            ).values_list("model_pattern", flat=True)
        )
        problems = [(0, f"provider '{name}' already exists outside the file (admin or environment)") for name in taken]
        problems += [(0, f"a price for '{pattern}' already exists in the admin") for pattern in priced]
        if problems:
            raise ConfigError(path, problems)
        Route.objects.filter(from_file=True).delete()
        ModelPrice.objects.filter(from_file=True).delete()
        Provider.objects.filter(from_file=True).exclude(name__in=[p["name"] for p in config.providers]).delete()
        providers = {}
        for spec in config.providers:
            values = {f: spec[f] for f in _PROVIDER_FIELDS}
            provider, _ = Provider.objects.update_or_create(
                name=spec["name"], defaults={**values, "from_file": True, "api_key_encrypted": ""}
            )
            providers[provider.name] = provider
        for spec in config.routes:
            route = Route.objects.create(from_file=True, **{f: spec[f] for f in _ROUTE_FIELDS})
            Deployment.objects.bulk_create(
                Deployment(route=route, provider=providers[d["provider"]], **{f: d[f] for f in _DEPLOYMENT_FIELDS})
                for d in spec["deployments"]
            )
        ModelPrice.objects.bulk_create(ModelPrice(from_file=True, **spec) for spec in config.prices)
    # bulk_create sends no post_save: announce the change once (this process and, via Redis, the others).
    from django.db.models.signals import post_save

    post_save.send(sender=Route, instance=None, created=False, raw=False, using="default", update_fields=None)
    return True


def apply_configured() -> bool:
    """Apply ``KEYGATE_CONFIG`` (at every start): with it unset, what a file declared before is
    removed. False when nothing changed. Several workers starting at once may race: the loser
    looks again."""
    from django.conf import settings

    path = settings.KEYGATE_CONFIG
    config = load(path) if path else Config()
    for attempt in range(5):
        try:
            return apply(config, path or "<none>")
        except (IntegrityError, OperationalError):  # a unique name taken, or SQLite busy: look again
            time.sleep(0.1 * (attempt + 1))
    return apply(config, path or "<none>")
