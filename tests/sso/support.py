"""A real OpenID provider on loopback for the SSO tests: node-oidc-provider (an OpenID-certified
implementation), installed from npm at test time into ``tests/sso/.oidc-provider/`` (gitignored)
as tests/browser/axe.py does for axe-core. Tests that need it are skipped only when npm (or node)
is absent; an npm install that fails is an error, never a skip.

And :func:`sign_in`: a real HTTP client (requests, one cookie jar) walking the authorization code
flow — Keygate's button, the provider's login and consent forms, back to Keygate's callback.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from tests.support.live import free_port
from tests.support.wait import wait_until

OIDC_PROVIDER_VERSION = "9.13.3"
FOLDER = Path(__file__).parent / ".oidc-provider"
SCRIPT = Path(__file__).parent / "provider.mjs"
CLIENT_ID = "keygate-test"
CLIENT_SECRET = "keygate-test-client-secret-" + "s" * 16


def install_provider() -> Path:
    """``node_modules`` with oidc-provider at :data:`OIDC_PROVIDER_VERSION` (installed once)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm/node are not installed (scripts/install_system_deps.sh): no OpenID provider to test against")
    installed = FOLDER / "node_modules" / "oidc-provider" / "package.json"
    if not (installed.exists() and json.loads(installed.read_text())["version"] == OIDC_PROVIDER_VERSION):
        FOLDER.mkdir(exist_ok=True)
        (FOLDER / "package.json").write_text('{"private": true, "type": "module"}\n')
        command = [npm, "install", "--no-audit", "--no-fund", "--silent", f"oidc-provider@{OIDC_PROVIDER_VERSION}"]
        result = subprocess.run(command, cwd=FOLDER, capture_output=True, text=True, timeout=300)
        if result.returncode != 0 or not installed.exists():
            raise RuntimeError(f"npm install oidc-provider@{OIDC_PROVIDER_VERSION} failed: {result.stderr[-500:]}")
    return FOLDER


class OpenIDProvider:
    """``node provider.mjs`` on a free loopback port, with one confidential client whose redirect
    URI is ``redirect_uri``. ``accounts`` (login → claims) can be changed while it runs."""

    def __init__(self, workdir: Path, redirect_uri: str) -> None:
        self.folder = install_provider()
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.accounts_file = workdir / "accounts.json"
        self.client_file = workdir / "client.json"
        self.log_path = workdir / "oidc-provider.log"
        self.set_accounts({})
        self.client_file.write_text(
            json.dumps(
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [redirect_uri],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "client_secret_basic",
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def set_accounts(self, accounts: dict[str, dict[str, Any]]) -> None:
        self.accounts_file.write_text(json.dumps(accounts))

    def start(self) -> OpenIDProvider:
        env = {"PATH": "/usr/bin:/bin", "NODE_PATH": str(self.folder / "node_modules")}
        script = self.folder / "provider.mjs"  # beside node_modules, so `import 'oidc-provider'` resolves
        shutil.copyfile(SCRIPT, script)
        command = ["node", str(script), str(self.port), str(self.accounts_file), str(self.client_file)]
        self.process = subprocess.Popen(
            command, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
            try:
                return requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout=30)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": {}})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")


def submit_form(session: requests.Session, page: requests.Response, **fields: str) -> requests.Response:
    """Post the page's first form with ``fields`` filled in, following redirects."""
    parser = _Forms()
    parser.feed(page.text)
    assert parser.forms, f"no form on {page.url}: {page.text[:500]}"
    form = parser.forms[0]
    return session.post(urljoin(page.url, form["action"]), data={**form["fields"], **fields}, timeout=10)


def sign_in(keygate_url: str, login: str, *, session: requests.Session | None = None) -> requests.Response:
    """Click "Sign in with …" on Keygate's sign-in page, sign in at the provider as ``login``,
    consent, and follow the redirects back to Keygate. The last response."""
    session = session or requests.Session()
    page = session.get(f"{keygate_url}/accounts/login/", timeout=10)
    button = re.search(r'href="(/sso/login/[^"]*)"', page.text)
    assert button, "the sign-in page has no single sign-on button"
    at_provider = session.get(urljoin(page.url, button.group(1).replace("&amp;", "&")), timeout=10)
    after_login = submit_form(session, at_provider, login=login, password="any")
    if "/interaction/" in after_login.url:  # the consent page
        return submit_form(session, after_login)
    return after_login
