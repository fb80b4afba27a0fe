"""The Node clients the agent tests drive, installed from the npm registry at test time.

``npm install`` of the pinned versions below into ``tests/e2e/.npm/`` (gitignored) on first use;
later runs reuse it. Everything comes from the npm registry, nothing from anywhere else:

- ``@anthropic-ai/claude-code`` ships its native binary as an optional dependency
  (``@anthropic-ai/claude-code-linux-x64`` …, from the registry); its postinstall only links that
  binary over the ``bin/claude.exe`` placeholder. :func:`claude` runs the platform package's binary
  directly, so the tests work whether or not npm ran the install script.
- ``@openai/codex`` likewise ships ``@openai/codex-linux-x64`` … as optional dependencies; its
  ``bin/codex.js`` picks the right one.
- ``openai`` and ``@anthropic-ai/sdk`` are plain JavaScript.

Only a missing npm skips (:func:`require_npm`); a failed install fails the test loudly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

PACKAGES = {
    "@anthropic-ai/claude-code": "2.1.332",
    "@openai/codex": "0.171.0",
    "openai": "6.49.0",  # 7.x needs Node 22; Debian 12 ships Node 18
    "@anthropic-ai/sdk": "1.16.0",
}
FOLDER = Path(__file__).parent / ".npm"
MODULES = FOLDER / "node_modules"
INSTALL_TIMEOUT = 600  # the two agents' binaries are ~400 MB each on a cold npm cache


def require_npm() -> str:
    """npm's path; skips the test when npm is absent (CI installs it: scripts/install_system_deps.sh)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm is not installed (scripts/install_system_deps.sh)")
    return npm


def _installed(name: str) -> str | None:
    manifest = MODULES / name / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@cache
def install() -> Path:
    """``node_modules`` with every package of :data:`PACKAGES` at its pinned version."""
    npm = require_npm()
    if any(_installed(name) != version for name, version in PACKAGES.items()):
        FOLDER.mkdir(exist_ok=True)
        manifest = {"private": True, "dependencies": PACKAGES}
        (FOLDER / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        command = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"]
        result = subprocess.run(command, cwd=FOLDER, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        if result.returncode != 0:
            pytest.fail(f"npm install of {PACKAGES} failed:\n{result.stderr[-2000:]}")
        wrong = {name: _installed(name) for name, version in PACKAGES.items() if _installed(name) != version}
        if wrong:
            pytest.fail(f"npm install left these packages at the wrong version: {wrong}")
    return MODULES


def claude() -> Path:
    """The Claude Code binary for this platform (the optional dependency npm installed)."""
    binaries = sorted((install() / "@anthropic-ai").glob("claude-code-*/claude"))
    if not binaries:
        pytest.fail("npm installed no @anthropic-ai/claude-code-<platform> package for this platform")
    return binaries[0]


def codex() -> Path:
    """Codex CLI's launcher (``bin/codex.js`` runs the platform package's binary)."""
    return install() / "@openai" / "codex" / "bin" / "codex.js"


def node_script(script: Path) -> Path:
    """``script`` copied beside ``node_modules``, where Node resolves its imports (ESM ignores NODE_PATH)."""
    target = install().parent / script.name
    target.write_text(script.read_text())
    return target
