"""Fixtures for browser tests: Debian's Chromium driven by Playwright's sync API.

The browser is never downloaded: Playwright's Python package ships only its driver, and we
launch the system Chromium through ``executable_path`` (``KEYGATE_CHROMIUM``, default
``/usr/bin/chromium``, installed by ``scripts/install_system_deps.sh``). Do not run
``playwright install``: the machine has no route to Playwright's CDN.

Two facts shape these fixtures:

* Playwright's sync API keeps an asyncio event loop *running* in the main thread from the
  moment it starts until it stops. While it runs, Django treats every ORM call in the test
  thread as "async-unsafe" (``SynchronousOnlyOperation``) and ``async_to_sync`` /
  ``asyncio.run`` refuse to work. So browser tests are moved to the end of the run, and
  ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set only while the browser is alive — the rest of the
  suite keeps Django's async-safety checks. (microsoft/playwright-pytest#29)
* Headless Chromium has one clipboard per browser process, shared by all contexts, so the
  ``clipboard`` fixture empties it before each test that asks for it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = os.environ.get("KEYGATE_CHROMIUM", "/usr/bin/chromium")

# Headless, and nothing that reaches for Google's servers: the network here is closed and
# Chromium's background requests would be refused (or worse, hang a test). --no-sandbox
# because CI runs as root. Playwright gives every launch a fresh temporary --user-data-dir.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT_DIR = Path(__file__).parent / "screenshots"
DEFAULT_TIMEOUT_MS = 10_000

# An origin Chromium treats as secure (loopback), answered by Playwright's request
# interception so no socket is ever opened; the Clipboard API needs a secure context.
_CLIPBOARD_ORIGIN = "http://127.0.0.1:9"


def _is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _unavailable(reason: str) -> None:
    """Skip on a developer machine without a browser; fail in CI, where one must exist."""
    if _is_ci():
        pytest.fail(f"{reason} (CI=true: browser tests must run; see scripts/install_system_deps.sh)")
    pytest.skip(reason)


def _is_browser_test(item: pytest.Item) -> bool:
    return item.get_closest_marker("browser") is not None or "tests/browser/" in item.nodeid


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run browser tests last, so Playwright's event loop cannot leak into other tests."""
    items.sort(key=_is_browser_test)  # stable: keeps each group's own order


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keep each phase's report on the item so the page fixture can tell a failed test.
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")[:120]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole run."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"Chromium not found at {CHROMIUM} (set KEYGATE_CHROMIUM or install Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -r requirements-dev.txt)")

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    return SCREENSHOT_DIR


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh, isolated profile per test: no cookies or storage carried over."""
    context = browser.new_context(
        viewport=VIEWPORT,
        device_scale_factor=1,
        locale="en-US",
        timezone_id="UTC",
        color_scheme="light",
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest, screenshot_dir: Path) -> Iterator[Page]:
    """A page in a fresh context; when the test fails, its last state is saved as a PNG."""
    page = context.new_page()
    yield page
    report = getattr(request.node, "_report_call", None)
    if report is not None and report.failed and not page.is_closed():
        try:
            page.screenshot(path=screenshot_dir / f"{_slug(request.node.nodeid)}-FAILED.png", full_page=True)
        except Exception:  # a crashed page must not hide the test's own failure
            pass


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest, screenshot_dir: Path) -> Callable[[str], Path]:
    """``screenshot("after-copy")`` saves the page as screenshots/<test>-after-copy.png."""

    def take(name: str, *, full_page: bool = True) -> Path:
        path = screenshot_dir / f"{_slug(request.node.nodeid)}-{name}.png"
        page.screenshot(path=path, full_page=full_page)
        return path

    return take


class Clipboard:
    """The browser's clipboard, read and written the way a page's script would.

    Works through a helper tab on a secure loopback origin answered by request
    interception, so it does not matter which origin (if any) the page under test is on.
    """

    def __init__(self, page: Page) -> None:
        self._page = page
        self._helper: Page | None = None

    def _evaluate(self, script: str, arg: str | None = None) -> Any:
        if self._helper is None or self._helper.is_closed():
            self._helper = self._page.context.new_page()
            self._helper.route(
                f"{_CLIPBOARD_ORIGIN}/**",
                lambda route: route.fulfill(body="<!doctype html><title>clipboard</title>", content_type="text/html"),
            )
            self._helper.goto(f"{_CLIPBOARD_ORIGIN}/")
        try:
            return self._helper.evaluate(script, arg)
        finally:
            # A background tab gets no animation frames: without this, the next screenshot
            # of the page under test waits about a second for one.
            self._page.bring_to_front()

    def read_text(self) -> str:
        return self._evaluate("() => navigator.clipboard.readText()")

    def write_text(self, text: str) -> None:
        self._evaluate("(text) => navigator.clipboard.writeText(text)", text)


@pytest.fixture
def clipboard(page: Page) -> Clipboard:
    """The clipboard, emptied first: one clipboard is shared by every context of the browser."""
    clipboard = Clipboard(page)
    clipboard.write_text("")
    return clipboard
