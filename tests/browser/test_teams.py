"""Teams in headless Chromium against a real Keygate: a team admin creates a key for the team
from the dashboard; a viewer of the team sees it masked on the team page and cannot revoke it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.live import KeygateServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

PASSWORD = "team-password-1"
KEY_RE = re.compile(r"^sk-kg-[0-9A-Za-z]{50}$")

SETUP = f"""
from django.contrib.auth.models import User
from keys import services
alice = User.objects.create_user("alice", "a@example.com", "{PASSWORD}")
carol = User.objects.create_user("carol", "c@example.com", "{PASSWORD}")
team = services.team_create(name="search", model_patterns="gpt-*", budget_tokens=5000, budget_period="month")
services.member_add(team=team, user=alice, role="admin")
services.member_add(team=team, user=carol, role="viewer")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeygateServer]:
    with KeygateServer(tmp_path_factory.mktemp("teams-browser")) as keygate:
        keygate.shell(SETUP)
        yield keygate


def sign_in(page: Page, server: KeygateServer, username: str) -> None:
    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Teams")).to_be_visible()


def test_a_team_admin_creates_a_team_key_and_a_viewer_sees_it_masked_without_revoke(
    page, browser, server, screenshot
) -> None:
    sign_in(page, server, "alice")
    page.get_by_role("link", name="Teams").click()
    page.get_by_role("link", name="search").click()
    expect(page.get_by_role("heading", name=re.compile("search"))).to_be_visible()
    page.get_by_role("link", name="Create key in this team").click()
    expect(page.get_by_label("Team")).to_have_value(re.compile(r"\d+"))
    page.get_by_label("Name", exact=True).fill("search-indexer")
    page.get_by_label("Other models or patterns").fill("claude-*")
    page.get_by_label("Never").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("outside team search").first).to_be_visible()  # the team's models bound the key's
    page.get_by_label("Other models or patterns").fill("gpt-4o")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Key created")).to_be_visible()
    raw = page.get_by_role("textbox", name=re.compile("Your new key")).input_value()
    assert KEY_RE.match(raw)
    screenshot("teams-01-admin-created-team-key")

    viewer = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        carol = viewer.new_page()
        sign_in(carol, server, "carol")
        carol.goto(f"{server.url}/teams/")
        carol.get_by_role("link", name="search").click()
        row = carol.locator("section[aria-labelledby=team-keys-title]").get_by_role(
            "row", name=re.compile("search-indexer")
        )
        expect(row).to_be_visible()
        masked = row.locator("code.masked").inner_text()
        assert masked.startswith("sk-kg-") and "…" in masked and raw not in carol.content()
        expect(carol.get_by_role("button", name="Add member")).to_have_count(0)
        row.get_by_role("link", name="search-indexer").click()
        expect(carol.get_by_role("link", name="Revoke")).to_have_count(0)
        expect(carol.get_by_text("Team budget this period")).to_be_visible()
        # (a direct POST by a viewer is a 403: tests/keys/test_teams_dashboard.py)
    finally:
        viewer.close()
