"""What the ``KEYGATE_CONFIG`` file may say, and the rows it declares (``config_file`` loads the YAML).

The known fields of each section (providers with their timeouts, routes with their deployments, prices)
and :class:`Checker`, which walks a loaded document and collects every problem as ``(line, message)``
instead of stopping at the first: unknown fields and sections, names that are not slugs or are declared
twice, routes naming unknown providers, base URLs through the admin's own validator, credential variables
through :func:`gateway.models.credential_env_refusal`, retry statuses, numbers out of range and prices
that are not amounts of USD. What passes becomes a :class:`Config` of model field values; nothing here
reads or writes the database — :func:`gateway.config_file.parse` raises the problems, ``apply`` writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from gateway.models import DEFAULT_RETRY_ON, ProviderKind, credential_env_refusal, validate_retry_on

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
_TOP = {"providers", "routes", "prices"}
_PROVIDER = {"name", "kind", "base_url", "api_key_env", "timeouts", "enabled"}
_TIMEOUTS = {"connect": "connect_timeout", "first_byte": "first_byte_timeout", "idle": "idle_timeout"}
_ROUTE = {"model", "deployments", "priority", "max_attempts", "retry_on", "deadline", "retry_after_cap"}
_ROUTE |= {"listed_models"}
_DEPLOYMENT = {"provider", "model", "priority", "weight"}
_PRICE = {"model", "input_per_mtok", "output_per_mtok"}


class LineMap(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int = 0
    lines: dict[str, int]


@dataclass
class Config:
    """A valid file, as the rows it declares (field values of the models)."""

    providers: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, Any]] = field(default_factory=list)  # each with "deployments": [dict]
    prices: list[dict[str, Any]] = field(default_factory=list)


class Checker:
    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []

    def fail(self, where: Any, message: str, key: str | None = None) -> None:
        line = getattr(where, "lines", {}).get(key, 0) if key else 0
        self.problems.append((line or getattr(where, "line", 0), message))

    def mapping(self, value: Any, allowed: set[str], what: str, parent: Any) -> LineMap | None:
        if not isinstance(value, LineMap):
            self.fail(parent, f"each {what} must be a mapping")
            return None
        for key in value:
            if key not in allowed:
                self.fail(value, f"unknown field '{key}' in a {what} (known: {', '.join(sorted(allowed))})", key)
        return value

    def items(self, document: LineMap, name: str) -> list[Any]:
        value = document.get(name, [])
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(document, f"'{name}' must be a list", name)
            return []
        return value

    def number(self, item: LineMap, key: str, default: float, low: float, high: float, *, integer: bool = False) -> Any:
        value = item.get(key, default)
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            noun = "a whole number" if integer else "a number"
            self.fail(item, f"'{key}' must be {noun} between {low:g} and {high:g}", key)
            return default
        return value

    def text(self, item: LineMap, key: str, what: str, *, required: bool = True, max_length: int = 128) -> str:
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
        if not isinstance(document, LineMap):
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
