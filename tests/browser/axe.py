"""axe-core for the accessibility audits, fetched from the npm registry at test time.

``npm install axe-core@AXE_VERSION`` into ``tests/browser/.axe/`` (gitignored) on first use;
later runs reuse it. The script is evaluated in the page through the DevTools protocol
(``page.evaluate``), which the page's CSP (``script-src 'self'``) does not govern, so the
pages are audited exactly as served. Never loaded from a CDN.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE_VERSION = "4.11.0"
FOLDER = Path(__file__).parent / ".axe"
SCRIPT = FOLDER / "node_modules" / "axe-core" / "axe.min.js"
# What fails a page: WCAG 2.2 AA says "must"; axe rates those findings critical or serious.
FAILING_IMPACTS = ("critical", "serious")


class AxeUnavailable(RuntimeError):
    """npm is missing or the registry cannot be reached."""


@cache
def axe_source() -> str:
    """The text of axe.min.js at :data:`AXE_VERSION` (installed on first call)."""
    installed = FOLDER / "node_modules" / "axe-core" / "package.json"
    if not (installed.exists() and json.loads(installed.read_text())["version"] == AXE_VERSION):
        npm = shutil.which("npm")
        if npm is None:
            raise AxeUnavailable("npm is not installed (scripts/install_system_deps.sh)")
        FOLDER.mkdir(exist_ok=True)
        (FOLDER / "package.json").write_text('{"private": true}\n')
        command = [npm, "install", "--no-audit", "--no-fund", "--silent", f"axe-core@{AXE_VERSION}"]
        result = subprocess.run(command, cwd=FOLDER, capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or not SCRIPT.exists():
            raise AxeUnavailable(f"npm install axe-core@{AXE_VERSION} failed: {result.stderr.strip()[-500:]}")
    return SCRIPT.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.impact} {self.rule}: {self.help} — {', '.join(self.targets[:4])}"


def audit(page: Page) -> list[Violation]:
    """Run axe on the page as it is now; the critical and serious violations."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        Violation(
            rule=item["id"],
            impact=item["impact"],
            help=item["help"],
            targets=tuple(" ".join(map(str, node["target"])) for node in item["nodes"]),
        )
        for item in result["violations"]
        if item["impact"] in FAILING_IMPACTS
    ]
