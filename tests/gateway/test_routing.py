"""gateway.routing: which provider serves a model, what /v1/models lists, what a request costs,
and how providers declared by the environment are kept in step with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.models import Provider, ProviderKind, Route
from gateway.providers.demo import DEMO_MODELS
from gateway.routing import (
    Deployment,
    Price,
    RouteEntry,
    RoutingTable,
    Upstream,
    decrypt_credential,
    encrypt_credential,
    load_table,
    sync_env_providers,
)

ENV_VARS = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_MODELS",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_MODELS",
)


def _upstream(name: str, kind: str = "openai") -> Upstream:
    return Upstream(
        id=hash(name) % 1000,
        name=name,
        kind=kind,
        base_url=f"http://{name}.test",
        credential=None,
        connect_timeout=1,
        first_byte_timeout=1,
        idle_timeout=1,
    )


def _route(pattern: str, upstream: str, *, kind: str = "openai", listed: tuple[str, ...] = ()) -> RouteEntry:
    return RouteEntry(
        pattern=pattern, deployments=(Deployment(_upstream(upstream, kind)),), priority=100, listed_models=listed
    )


def _provider(name: str, kind: str = ProviderKind.OPENAI, **fields: object) -> Provider:
    return Provider.objects.create(name=name, kind=kind, base_url=f"http://{name}.test/v1", **fields)


def _served_by(model: str) -> str | None:
    route = load_table().resolve(model)
    return route.upstream.name if route else None


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- resolve ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_route_with_the_lowest_priority_number_wins() -> None:
    Route.objects.create(provider=_provider("catch-all"), model_pattern="*", priority=1000)
    Route.objects.create(provider=_provider("gpts"), model_pattern="gpt-*", priority=100)

    assert _served_by("gpt-4o") == "gpts"
    assert _served_by("mistral-large") == "catch-all"


@pytest.mark.django_db
def test_priority_beats_specificity() -> None:
    Route.objects.create(provider=_provider("catch-all"), model_pattern="*", priority=10)
    Route.objects.create(provider=_provider("exact"), model_pattern="gpt-4o", priority=20)

    assert _served_by("gpt-4o") == "catch-all"


@pytest.mark.django_db
def test_among_equal_priorities_the_most_specific_pattern_wins() -> None:
    for name, pattern in [("broad", "gpt-*"), ("narrow", "gpt-4o*"), ("exact", "gpt-4o"), ("any", "*")]:
        Route.objects.create(provider=_provider(name), model_pattern=pattern, priority=100)

    assert _served_by("gpt-4o") == "exact"
    assert _served_by("gpt-4o-mini") == "narrow"
    assert _served_by("gpt-3.5-turbo") == "broad"
    assert _served_by("llama") == "any"


@pytest.mark.django_db
def test_disabled_routes_and_providers_serve_nothing() -> None:
    Route.objects.create(provider=_provider("off", is_enabled=False), model_pattern="gpt-4o", priority=1)
    Route.objects.create(provider=_provider("route-off"), model_pattern="gpt-4o", priority=2, is_enabled=False)
    Route.objects.create(provider=_provider("on"), model_pattern="gpt-*", priority=3)

    assert _served_by("gpt-4o") == "on"


@pytest.mark.django_db
def test_a_model_no_route_matches_resolves_to_nothing() -> None:
    Route.objects.create(provider=_provider("gpts"), model_pattern="gpt-*")

    assert _served_by("claude-sonnet-4-6") is None


@pytest.mark.parametrize(
    ("pattern", "model", "matches"),
    [
        pytest.param("gpt-4o", "gpt-4o", True, id="exact"),
        pytest.param("gpt-4o", "gpt-4o-mini", False, id="exact-is-not-a-prefix"),
        pytest.param("gpt-*", "gpt-4o-mini", True, id="glob"),
        pytest.param("gpt-*", "GPT-4o", False, id="case-sensitive"),
        pytest.param("claude-*", "my-claude-x", False, id="anchored"),
        pytest.param("gpt-[4]o", "gpt-[4]o", True, id="brackets-literal-without-star"),
    ],
)
def test_a_route_pattern_matches_whole_model_names(pattern: str, model: str, matches: bool) -> None:
    assert _route(pattern, "p").matches(model) is matches


@pytest.mark.django_db
def test_the_route_carries_its_upstream_model() -> None:
    Route.objects.create(provider=_provider("p"), model_pattern="house", upstream_model="gpt-4o-mini")

    route = load_table().resolve("house")

    assert route is not None and route.upstream_model == "gpt-4o-mini"


# --- credentials ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_provider_credential_comes_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYGATE_UPSTREAM_TEST_KEY", "sk-from-env")
    Route.objects.create(provider=_provider("p", api_key_env="KEYGATE_UPSTREAM_TEST_KEY"), model_pattern="*")

    upstream = load_table().resolve("x").upstream

    assert upstream.credential == "sk-from-env"
    assert "sk-from-env" not in repr(upstream)


@pytest.mark.django_db
def test_a_stored_credential_is_encrypted_and_decrypted_for_the_table() -> None:
    provider = _provider("p")
    provider.api_key_encrypted = encrypt_credential("sk-stored-secret")
    provider.save()
    Route.objects.create(provider=provider, model_pattern="*")

    assert "sk-stored-secret" not in provider.api_key_encrypted
    assert load_table().resolve("x").upstream.credential == "sk-stored-secret"


def test_a_credential_that_cannot_be_decrypted_is_none() -> None:
    assert decrypt_credential("not-a-fernet-token") is None


# --- listed_models ----------------------------------------------------------------------------


def test_listed_models_are_exact_patterns_and_the_names_glob_routes_list() -> None:
    table = RoutingTable(
        routes=[
            _route("gpt-4o", "openai"),
            _route("claude-*", "anthropic", kind="anthropic", listed=("claude-a", "claude-b")),
            _route("gpt-*", "openai-rest"),
        ],
        prices=[],
    )

    assert table.listed_models() == ["gpt-4o", "claude-a", "claude-b"]


def test_a_listed_name_another_route_serves_is_listed_once() -> None:
    table = RoutingTable(
        routes=[_route("gpt-4o", "first"), _route("gpt-*", "second", listed=("gpt-4o", "gpt-4o-mini"))], prices=[]
    )

    assert table.listed_models() == ["gpt-4o", "gpt-4o-mini"]


def test_a_listed_name_the_route_does_not_serve_is_not_listed() -> None:
    table = RoutingTable(routes=[_route("claude-*", "anthropic", listed=("claude-a", "gpt-4o"))], prices=[])

    assert table.listed_models() == ["claude-a"]


def test_a_demo_route_without_a_list_lists_the_demo_models() -> None:
    table = RoutingTable(routes=[_route("*", "demo", kind=ProviderKind.DEMO)], prices=[])

    assert table.listed_models() == list(DEMO_MODELS)


def test_demo_models_served_by_an_earlier_route_are_not_listed_for_the_demo() -> None:
    table = RoutingTable(
        routes=[
            _route("claude-*", "anthropic", kind="anthropic", listed=("claude-x",)),
            _route("*", "demo", kind=ProviderKind.DEMO),
        ],
        prices=[],
    )

    listed = table.listed_models()

    assert listed[0] == "claude-x"
    assert listed[1:] == [name for name in DEMO_MODELS if not name.startswith("claude-")]


# --- cost -------------------------------------------------------------------------------------


PRICES = [
    Price("*", Decimal("5"), Decimal("5")),
    Price("gpt-4o*", Decimal("2.5"), Decimal("10")),
    Price("gpt-4o-mini", Decimal("0.15"), Decimal("0.6")),
]


@pytest.mark.parametrize(
    ("model", "tokens", "cost"),
    [
        pytest.param("gpt-4o-mini", (1_000_000, 1_000_000), Decimal("0.75"), id="exact-price"),
        pytest.param("gpt-4o-2024-08-06", (1000, 2000), Decimal("0.0225"), id="longest-glob"),
        pytest.param("llama-3", (200, 0), Decimal("0.001"), id="catch-all"),
        pytest.param("gpt-4o", (0, 0), Decimal("0"), id="no-tokens"),
    ],
)
def test_cost_uses_the_most_specific_price(model: str, tokens: tuple[int, int], cost: Decimal) -> None:
    table = RoutingTable(routes=[], prices=PRICES)

    assert table.cost(model, *tokens) == cost


def test_cost_is_zero_without_a_price() -> None:
    table = RoutingTable(routes=[], prices=[Price("gpt-*", Decimal(1), Decimal(1))])

    assert table.cost("claude-sonnet-4-6", 1000, 1000) == 0


# --- sync_env_providers -----------------------------------------------------------------------


def _providers() -> dict[str, tuple[str, str, list[str]]]:
    """name → (kind, base_url, route patterns)."""
    return {
        p.name: (p.kind, p.base_url, sorted(r.model_pattern for r in p.routes.all()))
        for p in Provider.objects.prefetch_related("routes")
    }


@pytest.mark.django_db
def test_with_nothing_configured_the_demo_provider_serves_every_model(no_env: pytest.MonkeyPatch) -> None:
    names = sync_env_providers()

    assert names == ["demo"]
    assert _providers() == {"demo": (ProviderKind.DEMO, "", ["*"])}
    assert _served_by("anything-at-all") == "demo"


@pytest.mark.django_db
def test_openai_and_anthropic_variables_declare_their_providers(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OPENAI_BASE_URL", "http://openai.test/v1")
    no_env.setenv("OPENAI_API_KEY", "sk-openai")
    no_env.setenv("ANTHROPIC_BASE_URL", "http://anthropic.test")
    no_env.setenv("ANTHROPIC_API_KEY", "sk-anthropic")

    sync_env_providers()

    assert _providers() == {
        "anthropic": (ProviderKind.ANTHROPIC, "http://anthropic.test", ["claude-*"]),
        "openai": (ProviderKind.OPENAI, "http://openai.test/v1", ["*"]),
    }
    table = load_table()
    assert table.resolve("claude-haiku-4-5").upstream.credential == "sk-anthropic"
    assert table.resolve("gpt-4o").upstream.credential == "sk-openai"


@pytest.mark.django_db
def test_an_api_key_alone_points_at_the_official_api(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OPENAI_API_KEY", "sk-openai")
    no_env.setenv("ANTHROPIC_API_KEY", "sk-anthropic")

    sync_env_providers()

    assert _providers()["openai"][1] == "https://api.openai.com/v1"
    assert _providers()["anthropic"][1] == "https://api.anthropic.com"


@pytest.mark.django_db
def test_the_demo_provider_goes_once_an_env_provider_appears(no_env: pytest.MonkeyPatch) -> None:
    sync_env_providers()
    no_env.setenv("OPENAI_API_KEY", "sk-openai")

    sync_env_providers()

    assert set(_providers()) == {"openai"}


@pytest.mark.django_db
def test_env_providers_go_when_their_variables_do(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OPENAI_API_KEY", "sk-openai")
    no_env.setenv("ANTHROPIC_API_KEY", "sk-anthropic")
    sync_env_providers()
    no_env.delenv("ANTHROPIC_API_KEY")

    sync_env_providers()

    assert set(_providers()) == {"openai"}


@pytest.mark.django_db
def test_syncing_twice_changes_nothing(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OPENAI_API_KEY", "sk-openai")
    no_env.setenv("ANTHROPIC_API_KEY", "sk-anthropic")
    sync_env_providers()
    before = (_providers(), Route.objects.count())

    sync_env_providers()

    assert (_providers(), Route.objects.count()) == before


@pytest.mark.django_db
def test_a_changed_base_url_is_applied_but_operator_timeouts_are_kept(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OPENAI_BASE_URL", "http://old.test/v1")
    sync_env_providers()
    Provider.objects.filter(name="openai").update(first_byte_timeout=7, idle_timeout=3)
    no_env.setenv("OPENAI_BASE_URL", "http://new.test/v1")

    sync_env_providers()

    provider = Provider.objects.get(name="openai")
    assert (provider.base_url, provider.first_byte_timeout, provider.idle_timeout) == ("http://new.test/v1", 7, 3)


@pytest.mark.django_db
def test_an_admin_provider_means_no_demo(no_env: pytest.MonkeyPatch) -> None:
    Route.objects.create(provider=_provider("mine"), model_pattern="*")

    assert sync_env_providers() == []
    assert set(_providers()) == {"mine"}


@pytest.mark.django_db
def test_admin_providers_are_never_touched(no_env: pytest.MonkeyPatch) -> None:
    mine = _provider("mine", api_key_env="MY_KEY", first_byte_timeout=9)
    Route.objects.create(provider=mine, model_pattern="mistral-*", priority=5)
    no_env.setenv("OPENAI_API_KEY", "sk-openai")

    sync_env_providers()
    no_env.delenv("OPENAI_API_KEY")
    sync_env_providers()

    mine.refresh_from_db()
    assert (mine.base_url, mine.api_key_env, mine.first_byte_timeout) == ("http://mine.test/v1", "MY_KEY", 9)
    assert _providers()["mine"][2] == ["mistral-*"]


@pytest.mark.django_db
def test_an_admin_provider_named_like_an_env_one_is_not_overwritten(no_env: pytest.MonkeyPatch) -> None:
    _provider("openai")
    no_env.setenv("OPENAI_BASE_URL", "http://env.test/v1")

    sync_env_providers()

    provider = Provider.objects.get(name="openai")
    assert (provider.base_url, provider.from_environment) == ("http://openai.test/v1", False)


@pytest.mark.django_db
def test_env_model_lists_are_what_v1_models_lists_for_catch_all_routes(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OPENAI_API_KEY", "sk-openai")
    no_env.setenv("OPENAI_MODELS", "gpt-4o, gpt-4o-mini")
    no_env.setenv("ANTHROPIC_API_KEY", "sk-anthropic")
    no_env.setenv("ANTHROPIC_MODELS", "claude-sonnet-4-6")
    sync_env_providers()
    assert load_table().listed_models() == ["claude-sonnet-4-6", "gpt-4o", "gpt-4o-mini"]

    no_env.setenv("OPENAI_MODELS", "gpt-4.1")
    sync_env_providers()
    assert load_table().listed_models() == ["claude-sonnet-4-6", "gpt-4.1"]


def test_an_alias_is_priced_as_the_upstream_model_it_routes_to() -> None:
    alias = RouteEntry(pattern="cheap", deployments=(Deployment(_upstream("p"), "gpt-4o"),), priority=1)
    table = RoutingTable(routes=[alias], prices=[Price("gpt-4o", Decimal(1), Decimal(2))])

    assert table.cost("cheap", 1_000_000, 1_000_000) == Decimal(3)


@pytest.mark.parametrize(
    ("model", "provider", "upstream_model"),
    [
        pytest.param("openai/gpt-4o", "oai", "gpt-4o", id="kind-prefix"),
        pytest.param("anthropic/claude-sonnet-4-5", "ant", "claude-sonnet-4-5", id="anthropic-prefix"),
        pytest.param("ant/claude-x", "ant", "claude-x", id="provider-name-prefix"),
        pytest.param("meta-llama/Llama-3", "oai", "meta-llama/Llama-3", id="not-a-provider-prefix"),
    ],
)
def test_a_provider_prefixed_model_is_routed_to_that_provider_without_the_prefix(
    model: str, provider: str, upstream_model: str
) -> None:
    table = RoutingTable(
        routes=[_route("claude-*", "ant", kind="anthropic"), _route("*", "oai")],
        prices=[],
    )

    route = table.resolve(model)

    assert route is not None and route.upstream.name == provider
    assert route.upstream_name(model) == upstream_model


def test_a_route_for_the_whole_prefixed_name_wins() -> None:
    exact = _route("openai/gpt-4o", "special")
    table = RoutingTable(routes=[exact, _route("*", "oai")], prices=[])

    assert table.resolve("openai/gpt-4o") is exact


def test_an_openai_prefix_reaches_a_chat_completions_only_provider_too() -> None:
    table = RoutingTable(routes=[_route("*", "vllm", kind="openai-chat")], prices=[])

    route = table.resolve("openai/llama-3")

    assert route is not None and route.upstream.name == "vllm"
    assert route.upstream_name("openai/llama-3") == "llama-3"
