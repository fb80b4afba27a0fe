"""axe-core on every Keygate page, the admin pages Keygate customises and the API docs, at
desktop (1280×900) and phone (390×844) sizes, in English, 简体中文 and Русский.

Fails on any critical or serious violation. One server and one browser for the whole module;
each language × viewport is one browser context that signs in once and walks every page
(16 pages, 96 audits in all). Also saves the reveal page, key list and key detail in Russian
on a phone under tests/browser/screenshots/ (kept as CI artefacts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.axe import AxeUnavailable, Violation, audit, axe_source
from tests.support.live import KeygateServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

PASSWORD = "operator-password-1"
LANGUAGES = ["en", "zh-hans", "ru"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# The dark theme is audited once more, in English on both sizes (colours do not depend on the language).
RUNS = [(language, viewport, "light") for language in LANGUAGES for viewport in VIEWPORTS] + [
    ("en", viewport, "dark") for viewport in VIEWPORTS
]

SEED = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from keys import services
from keys.models import UsageRecord
operator = User.objects.get(username="operator")
alice = User.objects.get(username="alice")
key, _ = services.key_create(name="reporting-job", model_patterns="gpt-4o,claude-sonnet-4-5", owner=alice,
                             expires_at=timezone.now() + timedelta(days=3), rpm_limit=60, budget_usd=10,
                             budget_period="month", actor=operator, via="dashboard")
services.key_update(key=key, tpm_limit=1000, via="cli")
now = timezone.now()
for day in range(10):
    for n in range(day % 4 + 2):
        UsageRecord.objects.create(key=key, created_at=now - timedelta(days=day, minutes=n), endpoint="chat",
                                   model=("gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini")[n % 3],
                                   status_code=429 if n == 3 else 200, input_tokens=100 + n, output_tokens=300,
                                   cost_usd="0.0125", latency_ms=210, request_id=f"req_{day}_{n}")
paused, _ = services.key_create(name="nightly-batch-import", model_patterns="*", owner=operator)
services.key_pause(key=paused, via="api:AbCdEfGhIjKl")
gone, _ = services.key_create(name="old-laptop", model_patterns="gpt-4o-mini", owner=alice)
services.key_revoke(key=gone, via="admin")
services.key_create(name="ci-management", model_patterns="", is_management=True, owner=operator)
team = services.team_create(name="search", model_patterns="gpt-*", budget_tokens=50000, budget_usd=20,
                            budget_period="month", rpm_limit=600)
services.member_add(team=team, user=alice, role="admin", actor=operator, via="dashboard")
services.key_create(name="search-indexer", model_patterns="gpt-4o", owner=alice, team=team)
print(key.public_id)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeygateServer]:
    with KeygateServer(tmp_path_factory.mktemp("a11y")) as keygate:
        keygate.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.create_user('alice', 'a@example.com', 'alice-password-1'); "
            f"User.objects.create_superuser('operator', 'ops@example.com', '{PASSWORD}')",
        )
        keygate.public_id = keygate.manage("shell", "-c", SEED).stdout.strip().splitlines()[-1]
        yield keygate


@pytest.fixture(scope="module")
def axe() -> str:
    try:
        return axe_source()
    except AxeUnavailable as error:
        if __import__("os").environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(str(error))
        pytest.skip(str(error))


def _sign_in(page: Page, server: KeygateServer) -> None:
    page.locator("#id_username").fill("operator")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    expect(page.locator("h1")).to_be_visible()


def walk(page: Page, server: KeygateServer, shot: Callable[[str], None]) -> Iterator[str]:
    """Visit every page, yielding its name when it is ready to audit."""
    base = server.url
    page.goto(f"{base}/")
    yield "sign-in"
    _sign_in(page, server)
    page.wait_for_load_state()
    yield "key-list"
    shot("key-list")
    page.goto(f"{base}/keys/new")
    yield "create-form"
    page.locator("form.key-form button[type=submit]").click()
    expect(page.locator(".error-summary")).to_be_visible()
    yield "create-form-with-errors"
    page.locator("#id_name").fill("phone-app")
    page.locator("#id_models_0").check()
    page.locator("form.key-form button[type=submit]").click()
    expect(page.locator("#new-key")).to_be_visible()
    yield "reveal"
    shot("reveal")
    detail = f"{base}/keys/{server.public_id}/"
    page.goto(detail)
    expect(page.locator("#chart-requests svg")).to_be_attached()
    yield "key-detail"
    shot("key-detail")
    for name in ("edit", "rotate", "revoke"):
        page.goto(f"{detail}{name}")
        yield f"key-{name}"
    page.goto(f"{base}/?status=")
    page.locator("input[name=key]").nth(0).check()
    page.locator("input[name=key]").nth(1).check()
    page.locator("button[name=bulk_action][value=pause]").click()
    expect(page.locator("#bulk-title")).to_be_visible()
    yield "bulk-confirmation"
    page.goto(f"{base}/teams/")
    yield "team-list"
    page.locator("table a").first.click()
    expect(page.locator("#members-title")).to_be_visible()
    yield "team-detail"
    shot("team-detail")
    page.goto(f"{base}/usage/")
    yield "usage"
    page.goto(f"{base}/accounts/password_change/")
    yield "password-change"
    page.goto(f"{base}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    yield "api-docs"
    page.goto(f"{base}/admin/keys/apikey/")
    yield "admin-key-list"
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option("revoke_keys")
    page.locator("button[name=index]").click()
    yield "admin-bulk-revoke-confirmation"
    page.goto(f"{base}/admin/keys/apikey/add/")
    yield "admin-add-key"
    page.locator("#id_name").fill("admin-made")
    page.locator("#id_model_patterns").fill("*")
    page.locator("input[type=submit]").click()
    expect(page.locator("#new-key-1")).to_be_visible()
    yield "admin-key-created"


@pytest.mark.parametrize("language, viewport, scheme", RUNS, ids=["-".join(run) for run in RUNS])
def test_no_page_has_a_critical_or_serious_axe_violation(
    browser: Browser, server: KeygateServer, axe: str, screenshot_dir: Path, language: str, viewport: str, scheme: str
) -> None:
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale=language, timezone_id="UTC", color_scheme=scheme)
    context.add_cookies([{"name": "django_language", "value": language, "url": server.url}])
    context.set_default_timeout(15_000)
    page = context.new_page()

    def shot(name: str) -> None:
        if language == "ru" and viewport == "phone" and scheme == "light":
            page.screenshot(path=screenshot_dir / f"ru-phone-{name}.png", full_page=True)

    found: dict[str, list[Violation]] = {}
    audited = []
    try:
        for name in walk(page, server, shot):
            audited.append(name)
            assert page.locator("html").get_attribute("lang") in (language, language.split("-")[0]), name
            violations = audit(page)
            if violations:
                found[name] = violations
                failed = screenshot_dir / f"axe-{language}-{viewport}-{scheme}-{name}-FAILED.png"
                page.screenshot(path=failed, full_page=True)
    finally:
        context.close()
    assert len(audited) == 19
    report = "\n".join(f"{name}: {violation}" for name, violations in found.items() for violation in violations)
    assert not found, f"{language} {viewport} {scheme}:\n{report}"


# --- the enhancements behind the findings ---------------------------------------------------


def _contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``rgb(r, g, b)`` colours."""

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in colour[colour.index("(") + 1 : colour.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def signed_in(browser: Browser, server: KeygateServer) -> Callable[..., Page]:
    contexts = []

    def open_page(**options) -> Page:
        context = browser.new_context(**{"viewport": VIEWPORTS["desktop"], **options})
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{server.url}/")
        _sign_in(page, server)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_focus_ring_has_at_least_3_to_1_contrast_on_page_and_header(signed_in, scheme) -> None:
    page = signed_in(color_scheme=scheme)
    for selector, background in (("a.button.primary", "body"), (".main-nav a", ".site-header")):
        page.locator(selector).first.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # keyboard focus, so :focus-visible applies
        ring = page.locator(selector).first.evaluate("(el) => getComputedStyle(el).outlineColor")
        behind = page.locator(background).first.evaluate("(el) => getComputedStyle(el).backgroundColor")
        assert _contrast(ring, behind) >= 3, (selector, scheme, ring, behind)


def test_the_theme_toggle_overrides_the_system_and_is_remembered(signed_in) -> None:
    page = signed_in(color_scheme="light")
    toggle = page.locator("[data-theme-toggle]")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    light = page.locator("body").evaluate("(el) => getComputedStyle(el).backgroundColor")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark = page.locator("body").evaluate("(el) => getComputedStyle(el).backgroundColor")
    assert dark != light and _contrast(dark, "rgb(255, 255, 255)") > 15


def test_times_are_shown_in_the_browsers_zone_with_the_servers_on_hover(signed_in, server) -> None:
    page = signed_in(timezone_id="Asia/Shanghai")
    page.goto(f"{server.url}/keys/{server.public_id}/")
    created = page.locator(".facts time[data-local=minutes]").first
    expect(created).to_contain_text("GMT+8")
    assert created.get_attribute("title").endswith("UTC")
    page.goto(f"{server.url}/")
    relative = page.locator("time[data-local=title]").first  # "(in 2 days)" beside an expiry
    assert "GMT+8" in relative.get_attribute("title") and "UTC" in relative.get_attribute("title")


def test_charts_have_round_ticks_readable_text_on_a_phone_and_a_summary(signed_in, server) -> None:
    page = signed_in(viewport=VIEWPORTS["phone"])
    page.goto(f"{server.url}/keys/{server.public_id}/")
    chart = page.locator("#chart-requests")
    expect(chart.locator("svg")).to_be_attached()
    ticks = [int(text) for text in chart.locator("svg > text[text-anchor=end]").all_text_contents()]
    step = ticks[1] - ticks[0]
    assert ticks[0] == 0 and all(b - a == step for a, b in pairwise(ticks)) and step in (1, 2, 5, 10, 20, 50)
    rendered = chart.locator("svg > text").first.evaluate("(el) => el.getBoundingClientRect().height")
    assert rendered >= 11  # about 12 px on screen, not a 640-unit drawing scaled down to ~6 px
    assert "in total" in chart.get_attribute("aria-label") and "top model" in chart.get_attribute("aria-label")
