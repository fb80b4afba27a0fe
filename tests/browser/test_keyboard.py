"""The dashboard with the keyboard only: create → copy → rotate → pause → revoke.

After every submit, focus must land where the next step is (the error summary, the Copy
button, the outcome message), never on ``<body>``, so nobody tabs 11 or 41 times to go on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.live import KeygateServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

PASSWORD = "alice-password-1"
MAX_TABS = 60

FOCUSED = """() => {
  const el = document.activeElement;
  return {tag: el.tagName.toLowerCase(), id: el.id, cls: el.className, text: (el.innerText || el.value || '').trim(),
          copy: el.dataset ? el.dataset.copyTarget || '' : ''};
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeygateServer]:
    with KeygateServer(tmp_path_factory.mktemp("keyboard")) as keygate:
        keygate.manage(
            "shell",
            "-c",
            f"from django.contrib.auth.models import User; User.objects.create_user('alice', 'a@x.com', '{PASSWORD}')",
        )
        yield keygate


def focused(page: Page) -> dict[str, str]:
    return page.evaluate(FOCUSED)


def tab_to(page: Page, selector: str) -> int:
    """Press Tab until the element matching ``selector`` has focus; returns how many presses."""
    target = page.locator(selector).first
    for presses in range(1, MAX_TABS + 1):
        page.keyboard.press("Tab")
        if target.evaluate("(el) => el === document.activeElement"):
            return presses
    raise AssertionError(f"{selector} not reached in {MAX_TABS} Tabs; focus is on {focused(page)}")


def test_create_copy_rotate_pause_and_revoke_with_the_keyboard_only(page, clipboard, server) -> None:
    page.goto(f"{server.url}/")
    assert focused(page)["id"] == "id_username"  # the sign-in form starts in its first field
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("My keys")

    tab_to(page, "a.button.primary[href='/keys/new']")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Create key")

    # Submitting an incomplete form: focus on the summary that lists every error.
    tab_to(page, "form.key-form button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator(".error-summary")).to_be_visible()
    assert "error-summary" in focused(page)["cls"]
    assert page.locator(".error-summary li").count() >= 2  # name and models at once, not one per round
    page.keyboard.press("Tab")
    assert focused(page)["tag"] == "a"  # the first error's link is one Tab away

    page.locator("#id_name").focus()
    page.keyboard.type("keyboard-only")
    tab_to(page, "#id_models_0")
    page.keyboard.press("Space")
    tab_to(page, "form.key-form button[type=submit]")
    page.keyboard.press("Enter")

    # The reveal page: focus on Copy; Enter copies the key.
    expect(page.locator("#new-key")).to_be_visible()
    assert focused(page)["copy"] == "new-key"
    raw = page.locator("#new-key").input_value()
    # copy.js is deferred: the button is visible (and focused) before its handler is attached.
    page.wait_for_load_state("domcontentloaded")
    page.keyboard.press("Enter")
    expect(page.locator(".new-key button[data-copy-target=new-key]")).to_have_text("Copied")
    assert clipboard.read_text() == raw

    tab_to(page, ".actions a.button")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("keyboard-only")

    tab_to(page, "a.button[href$='/rotate']")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Rotate")
    tab_to(page, "form button[type=submit].primary")
    page.keyboard.press("Enter")
    expect(page.locator("#new-key")).to_be_visible()
    assert focused(page)["copy"] == "new-key"
    assert page.locator("#new-key").input_value() != raw

    tab_to(page, ".actions a.button")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("keyboard-only")
    tab_to(page, "form[action$='/pause'] button")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("paused")
    assert "messages" in focused(page)["cls"]  # the outcome is read first

    tab_to(page, "form[action$='/resume'] button")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("resumed")
    assert "messages" in focused(page)["cls"]

    tab_to(page, "a.button.danger[href$='/revoke']")
    page.keyboard.press("Enter")
    expect(page.get_by_text("cannot be undone")).to_be_visible()
    assert focused(page)["tag"] == "h1"  # the confirmation's question
    assert tab_to(page, "form button.danger[type=submit]") <= 3
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("no longer works")
    assert "messages" in focused(page)["cls"]
    expect(page.locator("h1 .badge")).to_have_text("Revoked")
