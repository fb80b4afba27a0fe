"""A real Keygate server process for live tests: ``python -m config.serve`` (what ``make run``
serves: uvicorn with Keygate's connection bounds) on loopback.

The server gets its own SQLite database (or DATABASE_URL / REDIS_URL passed in ``env``), and
its stdout/stderr are captured to a log file so tests can assert nothing secret was logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KeygateServer:
    """``KeygateServer(tmp_path, env={...}).start()``; ``.url``; ``.manage('keys', 'create', …)``."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, workers: int = 1) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / f"keygate-{self.port}.log"
        self.workers = workers
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OPENAI_", "ANTHROPIC_", "DJANGO_SUPERUSER_")) and key != "PYTEST_CURRENT_TEST"
        }
        self.env = {
            **base,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "KEYGATE_ENV_FILE": str(self.workdir / "no.env"),
            "KEYGATE_TESTING": "true",
            "DEBUG": "false",
            "SECRET_KEY": "live-test-secret-key-" + "x" * 40,
            "KEYGATE_PEPPER": "live-test-pepper",
            "DATABASE_URL": f"sqlite:///{self.workdir / 'keygate.sqlite3'}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "DEBUG",
            "PYTHONUNBUFFERED": "1",
            # Tests send many bad keys on purpose; the brute-force guard has tests of its own.
            "KEYGATE_AUTH_FAILURES_PER_MINUTE": "1000000",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a management command against this server's database."""
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=check
        )

    def create_key(self, *args: str) -> str:
        """`keys create …` → the plaintext key (stdout holds only the key)."""
        return self.manage("keys", "create", *args).stdout.strip()

    def make_keys(self, *specs: dict) -> list[str]:
        """Create several keys in one subprocess: each spec is keyword arguments of ``key_create``
        (``owner`` as a username, ``team`` as a team name). Returns the plaintext keys in order."""
        code = (
            "import json, sys\n"
            "from keys import services\n"
            "out = []\n"
            "for spec in json.loads(sys.stdin.read()):\n"
            "    if spec.get('owner'): spec['owner'] = services.get_user(spec['owner'])\n"
            "    if spec.get('team'): spec['team'] = services.find_team(spec['team'])\n"
            "    out.append(services.key_create(**spec)[1])\n"
            "print(json.dumps(out))\n"
        )
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=self.env,
            input=json.dumps(list(specs)),
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    def shell(self, code: str) -> str:
        """Run Python in ``manage.py shell`` against this server's database; its stdout."""
        return self.manage("shell", "-c", code).stdout

    def start(self, timeout: float = 30.0) -> KeygateServer:
        self.manage("migrate", "--noinput", "-v0")
        log = self.log_path.open("ab")
        # What `make run` serves: config.serve, uvicorn with Keygate's request-head bounds and
        # connection limits (KeygateHttpProtocol), so every live test also runs through them.
        server_env = {
            **self.env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WORKERS": str(self.workers),
            "GRACEFUL_TIMEOUT": "5",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "config.serve"],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Keygate exited with {self.process.returncode}:\n{self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Keygate did not become ready in {timeout}s:\n{self.logs()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def query(self, sql: str, *params: object) -> list[tuple]:
        """Rows from the server's SQLite database, read-only (a ``manage.py shell`` costs ~1 s)."""
        database = self.workdir / "keygate.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute(sql, params).fetchall()

    def __enter__(self) -> KeygateServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
