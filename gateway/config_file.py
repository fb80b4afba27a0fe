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
allow-list of :func:`gateway.models.credential_env_refusal`), never written in the file. The
fields each section may have and their checks live in :mod:`gateway.config_schema`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from django.db import IntegrityError, OperationalError, transaction

from gateway.config_schema import Checker, Config, LineMap
from gateway.models import Deployment, ModelPrice, Provider, Route


class ConfigError(Exception):
    """The file is not valid: ``problems`` are ``(line, message)``, line 0 for the whole file."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path, self.problems = path, sorted(problems)
        super().__init__("\n".join(f"{path}:{line}: {message}" for line, message in self.problems))


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineMap:  # type: ignore[override]
        mapping = LineMap(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
        return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


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
    checker = Checker()
    config = checker.document(document)
    if checker.problems:
        raise ConfigError(path, checker.problems)
    return config


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
