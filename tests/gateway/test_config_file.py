"""gateway.config_file and `manage.py gateway check|reload`: the declarative KEYGATE_CONFIG file."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateway import config_file
from gateway.config_file import ConfigError
from gateway.models import Deployment, ModelPrice, Provider, Route
from gateway.routing import load_table

# The issue's example, exactly.
EXAMPLE = """\
providers:
  - name: primary
    kind: openai                 # openai | anthropic | demo
    base_url: http://10.0.0.5:8000/v1
    api_key_env: KEYGATE_UPSTREAM_PRIMARY   # the variable holding the credential
    timeouts: {connect: 5, first_byte: 60, idle: 120}
  - name: backup
    kind: anthropic
    base_url: https://api.anthropic.com
    api_key_env: KEYGATE_UPSTREAM_BACKUP
routes:
  - model: gpt-4o                # pattern, as today
    deployments:
      - {provider: primary, model: gpt-4o, priority: 0, weight: 3}
      - {provider: backup, model: claude-sonnet-4-5, priority: 1}   # a fallback of another protocol
prices:
  - {model: gpt-4o, input_per_mtok: 2.5, output_per_mtok: 10}
"""


def _problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        config_file.parse(textwrap.dedent(text), "f.yaml")
    return caught.value.problems


def test_the_issues_example_is_valid() -> None:
    config = config_file.parse(EXAMPLE)

    assert [p["name"] for p in config.providers] == ["primary", "backup"]
    assert config.providers[0]["first_byte_timeout"] == 60
    assert config.routes[0]["deployments"] == [
        {"provider": "primary", "upstream_model": "gpt-4o", "priority": 0, "weight": 3},
        {"provider": "backup", "upstream_model": "claude-sonnet-4-5", "priority": 1, "weight": 1},
    ]
    assert config.prices == [
        {"model_pattern": "gpt-4o", "input_per_mtok": Decimal("2.5"), "output_per_mtok": Decimal("10")}
    ]


def test_an_unknown_provider_is_reported_at_its_line() -> None:
    problems = _problems(EXAMPLE.replace("{provider: backup,", "{provider: backupp,"))

    assert problems == [(15, "route 'gpt-4o': unknown provider 'backupp' (backup, primary)")]


def test_a_bad_url_is_reported_at_its_line() -> None:
    problems = _problems(EXAMPLE.replace("http://10.0.0.5:8000/v1", "ftp://10.0.0.5/v1"))

    assert [line for line, _ in problems] == [4]
    assert "bad base_url" in problems[0][1]


@pytest.mark.parametrize(
    "variable",
    [
        pytest.param("SECRET_KEY", id="keygate-own-secret"),
        pytest.param("HOME", id="not-allow-listed"),
        pytest.param("KEYGATE_PEPPER", id="keygate-family"),
    ],
)
def test_a_credential_variable_outside_the_allow_list_is_refused(variable: str) -> None:
    problems = _problems(EXAMPLE.replace("KEYGATE_UPSTREAM_BACKUP", variable))

    assert [line for line, _ in problems] == [10]
    assert "api_key_env" in problems[0][1]


def test_an_allow_listed_credential_variable_is_accepted(settings: object) -> None:
    settings.KEYGATE_UPSTREAM_ENV_ALLOWED = ["VLLM_TOKEN"]

    config_file.parse(EXAMPLE.replace("KEYGATE_UPSTREAM_BACKUP", "VLLM_TOKEN"))


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    problems = _problems(
        """\
        providers:
          - name: a
            kind: cloud
            base_url: http://a.test
            colour: red
        routes:
          - model: gpt-4o
            deployments: []
            retry_on: [400, 503]
        prices:
          - {model: gpt-4o, input_per_mtok: -1, output_per_mtok: 1}
        extra: 1
        """
    )

    assert [line for line, _ in problems] == [3, 5, 8, 9, 11, 12]
    assert "unknown field 'colour'" in problems[1][1]
    assert "never retried" in problems[3][1]


def test_invalid_yaml_names_its_line() -> None:
    problems = _problems("providers:\n  - name: a\n   kind: [openai\n")

    assert problems[0][0] in (2, 3, 4) and "not valid YAML" in problems[0][1]


@pytest.mark.django_db
def test_applying_creates_the_file_managed_rows_and_the_router_sees_them() -> None:
    assert config_file.apply(config_file.parse(EXAMPLE)) is True

    assert set(Provider.objects.filter(from_file=True).values_list("name", flat=True)) == {"primary", "backup"}
    route = load_table().resolve("gpt-4o")
    assert route is not None
    assert [(d.key, d.priority, d.weight) for d in route.deployments] == [
        ("primary:gpt-4o", 0, 3),
        ("backup:claude-sonnet-4-5", 1, 1),
    ]
    assert ModelPrice.objects.get(model_pattern="gpt-4o").from_file


@pytest.mark.django_db
def test_applying_the_same_file_again_writes_nothing() -> None:
    config_file.apply(config_file.parse(EXAMPLE))
    route_ids = list(Route.objects.values_list("pk", flat=True))

    assert config_file.apply(config_file.parse(EXAMPLE)) is False
    assert list(Route.objects.values_list("pk", flat=True)) == route_ids


@pytest.mark.django_db
def test_what_the_file_no_longer_declares_is_removed_and_the_admins_entries_stay() -> None:
    admin_provider = Provider.objects.create(name="house", kind="openai", base_url="http://house.test/v1")
    Route.objects.create(provider=admin_provider, model_pattern="house-*")
    config_file.apply(config_file.parse(EXAMPLE))

    config_file.apply(config_file.parse("providers: []\n"))

    assert list(Provider.objects.values_list("name", flat=True)) == ["house"]
    assert list(Route.objects.values_list("model_pattern", flat=True)) == ["house-*"]
    assert not Deployment.objects.exists() and not ModelPrice.objects.exists()


@pytest.mark.django_db
def test_a_file_provider_named_like_an_admin_provider_is_an_error_not_a_takeover() -> None:
    Provider.objects.create(name="primary", kind="openai", base_url="http://mine.test/v1")

    with pytest.raises(ConfigError, match="'primary' already exists"):
        config_file.apply(config_file.parse(EXAMPLE))
    assert Provider.objects.get(name="primary").base_url == "http://mine.test/v1"


def test_gateway_check_prints_each_problem_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "keygate.yaml"
    path.write_text(EXAMPLE.replace("{provider: backup,", "{provider: nobody,"))

    with pytest.raises(CommandError, match="1 problem"):
        call_command("gateway", "check", str(path))

    assert f"{path}:15: route 'gpt-4o': unknown provider 'nobody'" in capsys.readouterr().err


@pytest.mark.django_db
def test_gateway_check_applies_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "keygate.yaml"
    path.write_text(EXAMPLE)

    call_command("gateway", "check", str(path))

    assert "valid — 2 providers, 1 routes, 2 deployments, 1 prices" in capsys.readouterr().out
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_gateway_reload_applies_the_configured_file(
    tmp_path: Path, settings: object, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "keygate.yaml"
    path.write_text(EXAMPLE)
    settings.KEYGATE_CONFIG = str(path)

    call_command("gateway", "reload")
    call_command("gateway", "reload")

    assert capsys.readouterr().out.splitlines() == [f"{path}: applied", f"{path}: unchanged"]
    assert Route.objects.get(from_file=True).deployments.count() == 2
