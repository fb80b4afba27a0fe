"""The browser toolchain itself: Chromium starts, loads a local page, and its clipboard works."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

COPY_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Copy probe</title>
<h1>复制密钥 — copy key</h1>
<code id="secret">hello</code>
<button id="copy" type="button">Copy</button>
<p id="status" role="status"></p>
<script>
  document.getElementById("copy").addEventListener("click", async () => {
    const status = document.getElementById("status");
    try {
      await navigator.clipboard.writeText(document.getElementById("secret").textContent);
      status.textContent = "Copied ✓ 已复制";
    } catch (error) {
      status.textContent = "Copy failed: " + error;
    }
  });
</script>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[str]:
    """A tiny http.server on 127.0.0.1 (a secure context for the Clipboard API)."""
    (tmp_path / "copy.html").write_text(COPY_PAGE, encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_clicking_copy_puts_the_text_on_the_clipboard(page, clipboard, static_site, screenshot):
    clipboard.write_text("stale")

    page.goto(f"{static_site}/copy.html")
    page.click("#copy")
    page.wait_for_selector("#status:has-text('Copied')")

    assert clipboard.read_text() == "hello"
    assert page.evaluate("() => navigator.clipboard.readText()") == "hello"
    assert screenshot("copied").stat().st_size > 0


def test_each_test_starts_with_an_empty_clipboard(clipboard):
    assert clipboard.read_text() == ""
