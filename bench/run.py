#!/usr/bin/env python3
"""`make bench`: start everything on 127.0.0.1 and measure it side by side in one run.

    .venv/bin/python bench/run.py [--quick] [--skip litellm,scale,...]

Targets (non-streaming, all in front of the same nginx mock upstream):
  direct   the mock itself (nginx, fixed JSON)           -- the zero
  raw      raw-ASGI + aiohttp forwarder, 1 uvicorn worker -- the floor for any Python hop
  keygate  Keygate as `make run` serves it (python -m config.serve), 1 worker, SQLite -- what we ship
  keygate_translated  the same Keygate, an Anthropic Messages request translated to Chat Completions
  keygate_failover    the same Keygate, a route whose priority-0 deployment refuses connections
                      (breaker open) and whose priority-1 deployment is the mock
  litellm  LiteLLM proxy, 1 worker, master key, no DB     -- the comparison

Rounds are interleaved (every round measures every target, in a rotated order) so that
noise from the 2 shared cores lands on all targets alike; "added" figures are medians of
per-round paired differences against `direct`. Every loop is bounded in count and time;
every process started here is killed on exit, Ctrl-C and errors included.

Writes bench/results/latest.json, latest.md, latest.png (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import load  # noqa: E402
import report  # noqa: E402
from procs import Procs, cpu_ns, cpu_seconds, free_port, http_status, rss_kib, wait_until  # noqa: E402

RESULTS = BENCH / "results"
LITELLM_VENV = BENCH / ".venv-litellm"
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
PY = sys.executable  # runs the mock SSE upstream and the raw forwarder

CHAT_BODY = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
# keygate_translated: an Anthropic Messages request for a model the mock (kind openai) serves.
MESSAGES_BODY = b'{"model":"gpt-4o","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}'
MESSAGES_HEADERS = {"anthropic-version": "2023-06-01"}
# keygate_failover: a model of its own, routed by the KEYGATE_CONFIG file below.
FAILOVER_MODEL = "bench-failover"
FAILOVER_BODY = b'{"model":"bench-failover","messages":[{"role":"user","content":"hi"}]}'
# The Keygate target's KEYGATE_CONFIG. It adds one route and leaves `gpt-4o` to the provider
# the environment declares (OPENAI_BASE_URL = the mock, route "*"), exactly as before: the
# pass-through row stays comparable with runs made before the translated and failover rows.
KEYGATE_CONFIG_YAML = """\
# written by bench/run.py: the keygate_failover target's route
providers:
  - {{name: refused, kind: openai, base_url: "http://127.0.0.1:{closed}/v1", timeouts: {{connect: 1}}}}
  - {{name: mock, kind: openai, base_url: "{mock}/v1", api_key_env: OPENAI_API_KEY}}
routes:
  - model: {model}
    deployments:
      - {{provider: refused, model: gpt-4o, priority: 0}}
      - {{provider: mock, model: gpt-4o, priority: 1}}
"""
JSON_HEADERS = {"Content-Type": "application/json"}
MOCK_UPSTREAM_KEY = "mock-upstream-key"
MOCK_REPLY = b"Hello from the mock upstream."
LITELLM_MASTER_KEY = "sk-bench-litellm-master"

# Environment the Keygate targets run with (on top of a scrubbed copy of ours). The project's
# own .env is not read, so a developer's local settings never change the figures.
KEYGATE_ENV = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "OPENAI_API_KEY": MOCK_UPSTREAM_KEY,
    "LOG_LEVEL": "warning",
}
# Variables that must not leak from the caller's shell into a target.
SCRUBBED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "DJANGO_SETTINGS_MODULE",
    "LITELLM_MASTER_KEY",
    "KEYGATE_ENV_FILE",
)

PROFILES = {
    "full": {
        "lat_rounds": 5,
        # concurrency -> (requests per target per round, seconds cap per target per round)
        "lat_plan": {1: (300, 2.0), 16: (1500, 2.0), 64: (3000, 2.5)},
        # one wrk thread saturates any Python target and leaves the second core to it
        # Nine short rounds rather than a few long ones: the judged ratio is the median of the
        # rounds' own keygate/raw ratios, and this machine drifts by ±20 % from one 10 s to the
        # next. With five rounds of 5 s, eight full runs of one tree gave medians from 48.9 to
        # 60.1 % (2026-12-04); more pairs narrow the median, not the rounds.
        "wrk_rounds": 9,
        "wrk_seconds": 4,
        "wrk_threads": 1,
        "wrk_connections": 64,
        "ttfb_rounds": 5,
        "ttfb_streams": 60,
        "gap_rounds": 3,
        "gap_streams": 8,
        "gap_chunks": 20,
        "gap_delay_ms": 20,
        "cpu_rounds": 5,
        "cpu_streams": 300,
        "cpu_chunks": 40,
        "cpu_delay_ms": 2,
        "open_streams": 1000,
        "open_chunks": 30,
        "open_delay_ms": 200,
        "disconnect_streams": 20,
        "scale_workers": (1, 2, 4),
        "scale_rounds": 2,
        "scale_seconds": 6,
        "budget_s": 570,
    },
    "quick": {
        "lat_rounds": 2,
        "lat_plan": {1: (100, 1.0), 16: (500, 1.0), 64: (1000, 1.2)},
        "wrk_rounds": 1,
        "wrk_seconds": 3,
        "wrk_threads": 1,
        "wrk_connections": 64,
        "ttfb_rounds": 2,
        "ttfb_streams": 30,
        "gap_rounds": 1,
        "gap_streams": 4,
        "gap_chunks": 10,
        "gap_delay_ms": 20,
        "cpu_rounds": 1,
        "cpu_streams": 150,
        "cpu_chunks": 40,
        "cpu_delay_ms": 2,
        "open_streams": 200,
        "open_chunks": 12,
        "open_delay_ms": 200,
        "disconnect_streams": 10,
        "scale_workers": (1, 2, 4),
        "scale_rounds": 1,
        "scale_seconds": 2,
        "budget_s": 115,
    },
}

NONSTREAM_TARGETS = ("direct", "raw", "keygate", "keygate_translated", "keygate_failover", "litellm")
# Measured in the keygate target's process, reported as their cost over pass-through.
KEYGATE_VARIANTS = ("keygate_translated", "keygate_failover")
STREAM_TARGETS = ("sse_direct", "sse_raw", "sse_keygate")
LABELS = {
    "direct": "direct (nginx mock)",
    "raw": "raw ASGI forwarder",
    "keygate": "Keygate",
    "keygate_translated": "Keygate translated (Messages → Chat)",
    "keygate_failover": "Keygate failover (primary refused, breaker open)",
    "litellm": "LiteLLM proxy",
    "sse_direct": "direct (SSE mock)",
    "sse_raw": "raw ASGI forwarder",
    "sse_keygate": "Keygate",
}


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat's ``cpu`` line."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_between(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The fraction of all cores' time spent busy between two ``machine_cpu()`` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class _GaveUp(Exception):
    """A target answers, but not with 200, for longer than its grace period."""


class Target:
    """One thing to send requests to; `available=False` keeps its row with the reason."""

    def __init__(self, name: str, url: str = "", headers: dict | None = None) -> None:
        self.name = name
        self.label = LABELS.get(name, name)
        self.url = url
        self.headers = {**JSON_HEADERS, **(headers or {})}
        self.proc: subprocess.Popen | None = None
        self.proc_name = name  # its log is <tmp>/<proc_name>.log
        self.available = False
        self.note = ""
        self.body = CHAT_BODY
        self.expect: tuple[bytes, ...] = (MOCK_REPLY,)  # in a good answer's body
        self.provider = ""  # the x-keygate-provider a good answer carries ("" = not checked)
        self.count_header: str | None = None  # a response header whose values latency runs count
        self.served_by: dict = {}  # x-keygate-provider / x-keygate-attempts of the ready check

    def fail(self, note: str) -> Target:
        self.available = False
        self.note = note
        log(f"{self.name}: not available: {note.splitlines()[0] if note else ''}")
        return self

    def as_json(self) -> dict:
        return {
            "label": self.label,
            "available": self.available,
            "note": self.note,
            "url": self.url,
            "pid": self.proc.pid if self.proc else None,
            **({"served_by": self.served_by} if self.served_by else {}),
        }


def base_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def post_once(url: str, body: bytes, headers: dict, timeout: float = 10) -> tuple[int, bytes, dict]:
    """(status, body, lower-cased headers) of one POST; (0, error text, {}) when the connection fails."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}
    except (OSError, ValueError) as error:
        return 0, str(error).encode(), {}


def rotated(items: list, r: int) -> list:
    """Round r's order: rotate by r, so no target always runs first (warmest) or last."""
    if not items:
        return items
    r %= len(items)
    return items[r:] + items[:r]


def paired_order(targets: list, r: int, pair: tuple[str, str] = ("raw", "keygate")) -> list:
    """Round r's order as ``rotated`` gives it, except that the two targets of ``pair`` run one
    right after the other (which goes first alternates): a round's ratio of the two then compares
    the same few seconds of the machine."""
    together = [t for t in targets if t.name in pair]
    if len(together) != 2:
        return rotated(targets, r)
    if r % 2:
        together.reverse()
    rest = rotated([t for t in targets if t.name not in pair], r)
    at = r % (len(rest) + 1)
    return rest[:at] + together + rest[at:]


def paired_ratios(runs_a: list, runs_b: list) -> list[float]:
    """Per round, a's req/s over b's (rounds where both ran)."""
    return [a["rps"] / b["rps"] for a, b in zip(runs_a, runs_b, strict=False) if a.get("rps") and b.get("rps")]


def paired_added(rounds_t: list, rounds_d: list) -> float | None:
    diffs = [t - d for t, d in zip(rounds_t, rounds_d, strict=False) if t is not None and d is not None]
    return statistics.median(diffs) if diffs else None


# ---------------------------------------------------------------------------------------------
# Starting the servers


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.mode = "quick" if args.quick else "full"
        self.p = PROFILES[self.mode]
        self.skip = set(filter(None, (args.skip or "").split(",")))
        self.tmp = Path(tempfile.mkdtemp(prefix="keygate-bench-"))
        self.procs = Procs(self.tmp)
        self.t0 = time.monotonic()
        self.targets: dict[str, Target] = {}
        self.results: dict = {"notes": []}
        self.keygate_py = str(PROJECT_PY) if PROJECT_PY.exists() else PY
        self.secret_key = secrets.token_urlsafe(40)
        self.pepper = secrets.token_urlsafe(40)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def remaining(self) -> float:
        return self.p["budget_s"] - self.elapsed()

    def note(self, text: str) -> None:
        log("note: " + text)
        self.results["notes"].append(text)

    # -- upstreams and the simple targets ------------------------------------------------------

    def start_mock(self) -> Target:
        t = Target("direct")
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if nginx is None:
            return t.fail("nginx not installed (scripts/install_system_deps.sh installs it)")
        port = free_port()
        ndir = self.tmp / "nginx"
        ndir.mkdir()
        conf = (BENCH / "mock_nginx.conf").read_text().replace("@PORT@", str(port)).replace("@DIR@", str(ndir))
        (ndir / "nginx.conf").write_text(conf)
        t.proc = self.procs.start("nginx", [nginx, "-p", ndir, "-c", ndir / "nginx.conf", "-e", ndir / "error.log"])
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        if not wait_until(lambda: http_status(t.url, "POST", CHAT_BODY)[0] == 200, t.proc, 10):
            return t.fail("nginx did not start: " + self.procs.log_tail("nginx"))
        t.available = True
        self.mock_base = f"http://127.0.0.1:{port}"
        return t

    def start_sse(self) -> Target:
        t = Target("sse_direct")
        port = free_port()
        t.proc = self.procs.start(
            "sse_upstream", [PY, BENCH / "sse_upstream.py", "--port", port, "--chunks", 2, "--delay-ms", 0]
        )
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.sse_base = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: http_status(self.sse_base + "/health")[0] == 200, t.proc, 15):
            return t.fail("SSE upstream did not start: " + self.procs.log_tail("sse_upstream"))
        t.available = True
        return t

    def start_raw(self, name: str, upstream: str) -> Target:
        t = Target(name)
        port = free_port()
        env = {**base_env(), "UPSTREAM": upstream}
        t.proc = self.procs.start(
            name,
            [
                PY,
                "-m",
                "uvicorn",
                "--app-dir",
                BENCH,
                "raw_forwarder:app",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
        )
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return t

    def start_litellm(self) -> Target:
        t = Target("litellm", headers={"Authorization": f"Bearer {LITELLM_MASTER_KEY}"})
        exe = LITELLM_VENV / "bin" / "litellm"
        if "litellm" in self.skip:
            return t.fail("skipped (--skip litellm)")
        if not exe.exists():
            return t.fail("bench/.venv-litellm missing: run bench/litellm_setup.sh")
        port = free_port()
        env = {
            **base_env(),
            "BENCH_MOCK_BASE": self.mock_base + "/v1",
            "LITELLM_MASTER_KEY": LITELLM_MASTER_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # offline: never fetch the cost map
            "LITELLM_LOG": "ERROR",
        }
        t.proc = self.procs.start(
            "litellm",
            [
                exe,
                "--config",
                BENCH / "litellm_config.yaml",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--num_workers",
                1,
                "--telemetry",
                "False",
                "--log_config",
                BENCH / "litellm_log_config.json",
            ],
            env=env,
            cwd=self.tmp,
        )
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return t

    # -- Keygate ---------------------------------------------------------------------------------

    def keygate_env(self, database_url: str, upstream_base: str, redis_url: str = "", config: str = "") -> dict:
        env = {
            **base_env(),
            **KEYGATE_ENV,
            "KEYGATE_ENV_FILE": str(self.tmp / "no.env"),
            "SECRET_KEY": self.secret_key,
            "KEYGATE_PEPPER": self.pepper,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "OPENAI_BASE_URL": upstream_base + "/v1",
        }
        if config:
            env["KEYGATE_CONFIG"] = config
        override = BENCH / "keygate.env"  # optional, uncommitted: extra settings for the targets
        if override.exists():
            for line in override.read_text().splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    key, value = line.split("=", 1)
                    env[key.strip()] = value.strip()
        return env

    def keygate_missing(self) -> str | None:
        if "keygate" in self.skip:
            return "skipped (--skip keygate)"
        if not (ROOT / "config" / "asgi.py").exists():
            return "config/asgi.py not found: the Keygate app is not there yet"
        return None

    def prepare_keygate(self, env: dict, tag: str) -> tuple[str | None, str]:
        """migrate + `keys create` (+ `gateway check` of its KEYGATE_CONFIG); (key, "") or (None, why not)."""
        steps = [
            ("migrate", ["manage.py", "migrate", "--noinput", "-v0"]),
            ("keys create", ["manage.py", "keys", "create", "--name", "bench", "--models", "*"]),
        ]
        if env.get("KEYGATE_CONFIG"):
            steps.insert(0, ("gateway check", ["manage.py", "gateway", "check", env["KEYGATE_CONFIG"]]))
        out = ""
        for what, argv in steps:
            try:
                r = subprocess.run(
                    [self.keygate_py, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
                )
            except subprocess.TimeoutExpired:
                return None, f"`manage.py {what}` ({tag}) timed out"
            if r.returncode != 0:
                tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-8:])
                return None, f"`manage.py {what}` ({tag}) failed:\n{tail}"
            out = r.stdout
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        if not lines:
            return None, "`manage.py keys create` printed no key"
        return lines[-1], ""

    def start_keygate(self, name: str, env: dict, key: str, workers: int = 1) -> Target:
        """Keygate as ``make run`` serves it: ``python -m config.serve`` (uvicorn with uvloop,
        httptools and Keygate's request-head bounds, no uvicorn access log)."""
        t = Target(name, headers={"Authorization": f"Bearer {key}"})
        port = free_port()
        t.proc = self.procs.start(
            name,
            [self.keygate_py, "-m", "config.serve"],
            env={**env, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": str(workers)},
            cwd=ROOT,
        )
        t.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return t

    def wait_ready(self, t: Target, timeout: float, grace: float = 8.0) -> Target:
        """Ready = the target answers the bench request itself: 200 with the mock's reply in it.

        Connection refused means "still booting" (wait up to `timeout`); an HTTP answer that
        stays wrong for `grace` seconds is final (e.g. a 404 before the gateway exists).
        """
        if t.proc is None or t.note:
            return t
        last: list = [0, b"", {}]
        first_wrong = [None]

        def check() -> bool:
            last[:] = post_once(t.url, t.body, t.headers, timeout=10)
            # The mock's own words: proves the answer came through the mock, not a demo provider
            # (and for Keygate, the deployment that answered is the one meant).
            good = last[0] == 200 and all(word in last[1] for word in t.expect)
            if good and (not t.provider or last[2].get("x-keygate-provider") == t.provider):
                t.served_by = {
                    h[len("x-keygate-") :]: last[2][h]
                    for h in ("x-keygate-provider", "x-keygate-attempts")
                    if h in last[2]
                }
                return True
            if last[0]:
                first_wrong[0] = first_wrong[0] or time.monotonic()
                if time.monotonic() - first_wrong[0] > grace:
                    raise _GaveUp
            return False

        try:
            if wait_until(check, t.proc, timeout, interval=0.25, reraise=(_GaveUp,)):
                t.available = True
                return t
        except _GaveUp:
            pass
        if t.proc.poll() is not None:
            return t.fail(f"exited with code {t.proc.returncode}:\n{self.procs.log_tail(t.proc_name)}")
        provider = last[2].get("x-keygate-provider")
        by = f" (x-keygate-provider {provider}, expected {t.provider})" if t.provider and provider else ""
        return t.fail(f"POST {t.url} answered {last[0] or 'nothing'}{by}: {last[1][:300].decode(errors='replace')}")

    def keygate_variants(self, base: Target) -> None:
        """The translated and failover targets: other requests to the keygate target's process."""
        T = self.targets
        key = base.headers.get("Authorization", "").removeprefix("Bearer ")
        root = base.url.removesuffix("/v1/chat/completions")
        translated = Target("keygate_translated", headers={"x-api-key": key, **MESSAGES_HEADERS})
        translated.url, translated.body = root + "/v1/messages", MESSAGES_BODY
        translated.expect, translated.provider = (MOCK_REPLY, b'"type":"message"'), "openai"
        failover = Target("keygate_failover", headers={"Authorization": f"Bearer {key}"})
        failover.url, failover.body, failover.provider = base.url, FAILOVER_BODY, "mock"
        failover.count_header = "x-keygate-attempts"
        for t in (translated, failover):
            T[t.name] = t
            if not base.available:
                t.fail("the keygate target is not available: " + (base.note.splitlines() or [""])[0])
                continue
            t.proc, t.proc_name = base.proc, base.proc_name
        if failover.proc is not None:
            self.results["failover"] = self.failover_warmup(failover)
        for t in (translated, failover):
            self.wait_ready(t, 20)

    def failover_warmup(self, t: Target) -> dict:
        """The failover route's first requests, one after another: the priority-0 deployment
        refuses connections until its breaker opens; then every request should go straight to
        the mock (x-keygate-attempts 1). Measured from there on."""
        seen = []
        for _ in range(40):
            t0 = time.perf_counter()
            status, _, headers = post_once(t.url, t.body, t.headers, timeout=10)
            seen.append(
                {
                    "status": status,
                    "attempts": headers.get("x-keygate-attempts"),
                    "provider": headers.get("x-keygate-provider"),
                    "ms": round((time.perf_counter() - t0) * 1000, 2),
                }
            )
            if len(seen) >= 3 and all(x["status"] == 200 and x["attempts"] == "1" for x in seen[-3:]):
                break
        ones = next((i for i, x in enumerate(seen) if x["attempts"] == "1"), None)
        out = {
            "first_request": seen[0],
            "warmup_attempts": [x["attempts"] for x in seen],
            "requests_before_one_attempt": ones,
            "breaker_open": ones is not None,
        }
        log(
            f"keygate_failover: first request {seen[0]['status']} in {seen[0]['ms']} ms, "
            f"{seen[0]['attempts']} attempts; warm-up attempts {out['warmup_attempts']}"
        )
        if ones is None:
            self.note("keygate_failover: x-keygate-attempts never came down to 1 in the warm-up (breaker not open)")
        return out

    # ---------------------------------------------------------------------------------------------

    def setup(self) -> None:
        T = self.targets
        T["direct"] = self.start_mock()
        T["sse_direct"] = self.start_sse()
        if not T["direct"].available:
            raise SystemExit("the nginx mock upstream is required: " + T["direct"].note)
        T["litellm"] = self.start_litellm()  # slowest to boot: start first, wait last
        T["raw"] = self.start_raw("raw", self.mock_base)
        T["sse_raw"] = self.start_raw("sse_raw", self.sse_base)

        missing = self.keygate_missing()
        if missing:
            for name in ("keygate", "sse_keygate", *KEYGATE_VARIANTS):
                T[name] = Target(name).fail(missing)
        else:
            for name, upstream in (("keygate", self.mock_base), ("sse_keygate", self.sse_base)):
                config = self.write_keygate_config() if name == "keygate" else ""
                env = self.keygate_env(f"sqlite:///{self.tmp / (name + '.sqlite3')}", upstream, config=config)
                key, why = self.prepare_keygate(env, name)
                T[name] = self.start_keygate(name, env, key) if key else Target(name).fail(why)
            T["keygate"].provider = "openai"  # the environment's provider, as before the config file

        for name in ("raw", "sse_raw", "keygate", "sse_keygate", "litellm"):
            t = T[name]
            self.wait_ready(t, 120 if name == "litellm" else 60)
            if t.available:
                log(f"{name}: ready at {t.url}")
            if name == "keygate" and not missing:
                self.keygate_variants(t)
                for v in KEYGATE_VARIANTS:
                    if T[v].available:
                        log(f"{v}: ready ({T[v].served_by})")
        self.results["targets"] = {name: t.as_json() for name, t in T.items()}

    def write_keygate_config(self) -> str:
        """The keygate target's KEYGATE_CONFIG: the failover route (a port nothing listens on, then the mock)."""
        path = self.tmp / "keygate.yaml"
        path.write_text(KEYGATE_CONFIG_YAML.format(closed=free_port(), mock=self.mock_base, model=FAILOVER_MODEL))
        return str(path)

    # ---------------------------------------------------------------------------------------------
    # Phase 1: latency distributions (aiohttp client, interleaved rounds)

    def phase_latency(self, runner: asyncio.Runner) -> None:
        targets = [self.targets[n] for n in NONSTREAM_TARGETS if self.targets[n].available]
        plan = self.p["lat_plan"]
        rounds = self.p["lat_rounds"]
        raw: dict = {
            t.name: {c: {"lat": [], "rounds_p50": [], "failed": 0, "n": 0, "wall": 0.0, "seen": {}} for c in plan}
            for t in targets
        }
        log(f"latency: {rounds} rounds x concurrency {list(plan)} x {[t.name for t in targets]}")
        for r in range(rounds):
            for c, (count, cap) in plan.items():
                for t in rotated(targets, r):
                    res = runner.run(load.latency_run(t.url, t.headers, t.body, c, count, cap, t.count_header))
                    cell = raw[t.name][c]
                    for value, n in res["header_counts"].items():
                        cell["seen"][value] = cell["seen"].get(value, 0) + n
                    cell["lat"].extend(res["latencies"])
                    cell["rounds_p50"].append(load.percentile(res["latencies"], 50))
                    cell["failed"] += res["failed"]
                    cell["n"] += len(res["latencies"])
                    cell["wall"] += res["wall_s"]
            log(f"latency: round {r + 1}/{rounds} done ({self.elapsed():.0f} s)")
        out: dict = {"concurrency": list(plan), "rounds": rounds, "targets": {}}
        for t in targets:
            out["targets"][t.name] = {}
            for c in plan:
                cell = raw[t.name][c]
                row = load.summarize_ms(cell["lat"])
                row["failed"] = cell["failed"]
                row["rps"] = cell["n"] / cell["wall"] if cell["wall"] else None
                row["rounds_p50_ms"] = [v * 1000 if v is not None else None for v in cell["rounds_p50"]]
                if t.count_header:
                    row[t.count_header] = dict(sorted(cell["seen"].items()))
                out["targets"][t.name][str(c)] = row
        direct = out["targets"].get("direct")
        for name, rows in out["targets"].items():
            for c, row in rows.items():
                if direct is None or name == "direct" or not row.get("n"):
                    continue
                d = direct[c]
                row["added_p50_ms"] = paired_added(row["rounds_p50_ms"], d["rounds_p50_ms"])
                row["added_p99_ms"] = row["p99"] - d["p99"] if d.get("n") else None
        keygate = out["targets"].get("keygate")
        for name in KEYGATE_VARIANTS:
            for c, row in out["targets"].get(name, {}).items():
                if keygate and keygate[c].get("n") and row.get("n"):
                    # Issue #16: its cost over pass-through, paired per round like "added".
                    row["over_keygate_p50_ms"] = paired_added(row["rounds_p50_ms"], keygate[c]["rounds_p50_ms"])
        failover = out["targets"].get("keygate_failover")
        if failover and "failover" in self.results:
            seen: dict = {}
            for row in failover.values():
                for value, n in row.get("x-keygate-attempts", {}).items():
                    seen[value] = seen.get(value, 0) + n
            self.results["failover"]["measured_attempts"] = dict(sorted(seen.items()))
        self.results["latency"] = out

    # Phase 2: max throughput with wrk (interleaved rounds)

    def run_wrk(self, t: Target, seconds: int, connections: int | None = None) -> dict:
        extra = "\n".join(f"{k}: {v}" for k, v in t.headers.items() if k not in ("Authorization", "Content-Type"))
        env = {
            **os.environ,
            "WRK_AUTH": t.headers.get("Authorization", ""),
            "WRK_BODY": t.body.decode(),
            "WRK_HEADERS": extra,
        }
        cmd = [
            "wrk",
            f"-t{self.p['wrk_threads']}",
            f"-c{connections or self.p['wrk_connections']}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "wrk_post.lua"),
            t.url,
        ]
        pid = t.proc.pid if t.proc else None
        cpu_before = cpu_seconds(pid) if pid else None
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 40)
        except subprocess.TimeoutExpired:
            return {"error": "wrk timed out"}
        cpu_spent = cpu_seconds(pid) - cpu_before if pid else None
        line = next((ln for ln in r.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
        if line is None:
            return {"error": (r.stderr or r.stdout).strip()[-300:]}
        data = json.loads(line[len("WRKJSON ") :])
        seconds_run = data["duration_us"] / 1e6
        bad = data["errors"]["status"] + data["errors"]["timeout"]
        data["rps"] = (data["requests"] - data["errors"]["status"]) / seconds_run
        data["error_count"] = bad + data["errors"]["connect"] + data["errors"]["read"] + data["errors"]["write"]
        if cpu_spent is not None and data["requests"]:
            # The server's own CPU (user + sys, its process tree) per request: steadier than req/s
            # when other work shares the machine.
            data["cpu_us_per_request"] = cpu_spent * 1e6 / data["requests"]
        return data

    def phase_throughput(self) -> None:
        if shutil.which("wrk") is None:
            self.results["throughput"] = {
                "available": False,
                "note": "wrk not installed (scripts/install_system_deps.sh)",
            }
            return
        targets = [self.targets[n] for n in NONSTREAM_TARGETS if self.targets[n].available]
        rounds, seconds = self.p["wrk_rounds"], self.p["wrk_seconds"]
        log(
            f"throughput: wrk -t{self.p['wrk_threads']} -c{self.p['wrk_connections']} -d{seconds}s, "
            f"{rounds} rounds x {[t.name for t in targets]}"
        )
        runs: dict = {t.name: [] for t in targets}
        for r in range(rounds):
            for t in paired_order(targets, r):
                runs[t.name].append(self.run_wrk(t, seconds))
            log(f"throughput: round {r + 1}/{rounds} done ({self.elapsed():.0f} s)")
        out = {
            "available": True,
            "threads": self.p["wrk_threads"],
            "connections": self.p["wrk_connections"],
            "seconds": seconds,
            "rounds": rounds,
            "targets": {},
        }
        for name, rs in runs.items():
            ok = [x for x in rs if "rps" in x]
            if not ok:
                out["targets"][name] = {"error": rs[0].get("error") if rs else "no run"}
                continue
            rps = [x["rps"] for x in ok]
            mid = sorted(ok, key=lambda x: x["rps"])[len(ok) // 2]
            out["targets"][name] = {
                "rps": statistics.median(rps),
                "rps_rounds": rps,
                "latency_p50_ms": mid["latency_us"]["p50"] / 1000,
                "latency_p99_ms": mid["latency_us"]["p99"] / 1000,
                "errors": sum(x["error_count"] for x in ok),
                "requests": sum(x["requests"] for x in ok),
            }
            cpu = [x["cpu_us_per_request"] for x in ok if "cpu_us_per_request" in x]
            if cpu:
                out["targets"][name]["cpu_us_per_request"] = statistics.median(cpu)
        keygate, raw = out["targets"].get("keygate", {}), out["targets"].get("raw", {})
        for name in KEYGATE_VARIANTS:
            row = out["targets"].get(name, {})
            if row.get("rps") and keygate.get("rps"):
                # Issue #16: translated / failover over pass-through, same process, same rounds.
                row["vs_keygate"] = row["rps"] / keygate["rps"]
                row["beyond_keygate_us"] = 1e6 / row["rps"] - 1e6 / keygate["rps"]
                if "cpu_us_per_request" in row and "cpu_us_per_request" in keygate:
                    row["cpu_over_keygate_us"] = row["cpu_us_per_request"] - keygate["cpu_us_per_request"]
        for other in ("raw", "litellm"):
            # Issue #16: "medians of paired rounds": each round's keygate/other ratio, then their median.
            ratios = paired_ratios(runs.get("keygate", []), runs.get(other, []))
            if ratios:
                out[f"keygate_vs_{other}"] = statistics.median(ratios)
                out[f"keygate_vs_{other}_rounds"] = ratios
        if keygate.get("rps") and raw.get("rps"):
            # Issue #16: what Keygate costs per request beyond the same server and client machinery.
            out["beyond_floor_us"] = 1e6 / keygate["rps"] - 1e6 / raw["rps"]
            if "cpu_us_per_request" in keygate and "cpu_us_per_request" in raw:
                out["beyond_floor_cpu_us"] = keygate["cpu_us_per_request"] - raw["cpu_us_per_request"]
        self.results["throughput"] = out
        failover = self.targets.get("keygate_failover")
        if failover is not None and failover.available and "failover" in self.results:
            # wrk counts no headers: after its rounds, a few requests say where the route stands.
            seen: dict = {}
            for _ in range(20):
                attempts = post_once(failover.url, failover.body, failover.headers)[2].get("x-keygate-attempts", "-")
                seen[attempts] = seen.get(attempts, 0) + 1
            self.results["failover"]["attempts_after_throughput"] = dict(sorted(seen.items()))

    def phase_stages(self) -> None:
        """Keygate's own CPU per request by stage (bench/stages.py, in-process, its own nginx mock)."""
        requests = 1000 if self.args.quick else 3000
        cmd = [
            self.keygate_py,
            str(BENCH / "stages.py"),
            "--requests",
            str(requests),
            "--json",
            str(self.tmp / "st.json"),
        ]
        log("stages: " + " ".join(cmd[1:]))
        try:
            r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            self.results["stages"] = {"available": False, "reason": "timed out"}
            return
        if r.returncode != 0 or not (self.tmp / "st.json").exists():
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            self.results["stages"] = {"available": False, "reason": " ".join(tail)[-300:]}
            return
        self.results["stages"] = {"available": True, **json.loads((self.tmp / "st.json").read_text())}

    # Phase 3: streaming

    def stream_request(self, chunks: int, delay_ms: float) -> tuple[bytes, dict]:
        # The shape travels in the body's metadata and in headers: a proxy may drop either.
        body = json.dumps(
            {
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
                "stream_options": {"include_usage": True},
                "metadata": {"bench_chunks": str(chunks), "bench_delay_ms": str(delay_ms)},
            }
        ).encode()
        return body, {"x-bench-chunks": str(chunks), "x-bench-delay-ms": str(delay_ms)}

    def phase_streaming(self, runner: asyncio.Runner) -> None:
        targets = [self.targets[n] for n in STREAM_TARGETS if self.targets[n].available]
        out: dict = {"targets": {t.name: {"label": t.label} for t in targets}}
        self.results["streaming"] = out
        if not targets or targets[0].name != "sse_direct":
            out["note"] = "SSE upstream not available"
            return

        # 3a. time to first byte: sequential short streams, interleaved rounds
        body, extra = self.stream_request(2, 0)
        ttfb: dict = {t.name: {"all": [], "rounds": [], "first_lag": [], "frames_ok": True} for t in targets}
        rounds = self.p["ttfb_rounds"]
        for r in range(rounds):
            for t in rotated(targets, r):
                res = runner.run(load.ttfb_run(t.url, {**t.headers, **extra}, body, self.p["ttfb_streams"], 10))
                good = [x for x in res if x["ok"]]
                values = [x["ttfb_s"] for x in good]
                ttfb[t.name]["all"].extend(values)
                ttfb[t.name]["rounds"].append(load.percentile(values, 50))
                ttfb[t.name]["first_lag"].extend(
                    (x["frames"][0][1] - x["frames"][0][2]) / 1e9 for x in good if x["frames"] and x["frames"][0][2]
                )
                ttfb[t.name]["failed"] = ttfb[t.name].get("failed", 0) + len(res) - len(good)
                if any(len(x["frames"]) != 2 + 3 for x in good):
                    ttfb[t.name]["frames_ok"] = False
        d = ttfb["sse_direct"]
        for t in targets:
            cell = ttfb[t.name]
            row = {
                "ttfb": load.summarize_ms(cell["all"]),
                "first_chunk_lag": load.summarize_ms(cell["first_lag"]),
                "failed": cell.get("failed", 0),
                "shape_passed_through": cell["frames_ok"],
                "rounds_p50_ms": [v * 1000 if v is not None else None for v in cell["rounds"]],
            }
            if t.name != "sse_direct":
                row["added_ttfb_p50_ms"] = paired_added(
                    row["rounds_p50_ms"], [v * 1000 if v is not None else None for v in d["rounds"]]
                )
                if cell["first_lag"] and d["first_lag"]:
                    row["added_first_chunk_lag_p50_ms"] = (
                        load.percentile(cell["first_lag"], 50) - load.percentile(d["first_lag"], 50)
                    ) * 1000
            out["targets"][t.name]["ttfb"] = row
        log(f"streaming: TTFB done ({self.elapsed():.0f} s)")

        # 3b. chunks delivered as they arrive: per-chunk lag and inter-chunk gap error
        chunks, delay = self.p["gap_chunks"], self.p["gap_delay_ms"]
        body, extra = self.stream_request(chunks, delay)
        lags: dict = {t.name: [] for t in targets}
        gap_err: dict = {t.name: [] for t in targets}
        shape: dict = {t.name: True for t in targets}
        for r in range(self.p["gap_rounds"]):
            for t in rotated(targets, r):
                res = runner.run(
                    load.concurrent_streams(
                        t.url, {**t.headers, **extra}, body, self.p["gap_streams"], chunks * delay / 1000 + 15
                    )
                )
                for x in res:
                    frames = [f for f in x["frames"] if f[2]]
                    if len(x["frames"]) != chunks + 3:
                        shape[t.name] = False
                    lags[t.name].extend((f[1] - f[2]) / 1e9 for f in frames)
                    # content frames only (1..chunks): each was sent `delay` ms after the previous
                    body_frames = frames[1 : chunks + 1]
                    for a, b in itertools.pairwise(body_frames):
                        gap_err[t.name].append(abs((b[0] - a[0]) - (b[2] - a[2]) / 1e9))
        for t in targets:
            out["targets"][t.name]["chunks"] = {
                "chunks": chunks,
                "delay_ms": delay,
                "streams": self.p["gap_streams"] * self.p["gap_rounds"],
                "lag": load.summarize_ms(lags[t.name]),
                "gap_error": load.summarize_ms(gap_err[t.name]),
                "shape_passed_through": shape[t.name],
            }
        log(f"streaming: chunk timing done ({self.elapsed():.0f} s)")

        # 3c. server CPU per stream and per chunk, the floor and Keygate in paired rounds
        self.stream_cpu(runner, targets, out)

        # 3d. many concurrent open streams in one process: memory per stream
        n = self.p["open_streams"]
        chunks, delay = self.p["open_chunks"], self.p["open_delay_ms"]
        body, extra = self.stream_request(chunks, delay)
        for t in targets:
            if t.name == "sse_direct":
                continue
            if self.remaining() < chunks * delay / 1000 + 10:
                self.note(f"open streams for {t.name} skipped: time budget")
                continue
            pid = t.proc.pid
            before = rss_kib(pid)
            res = runner.run(
                load.open_streams(
                    t.url,
                    {**t.headers, **extra},
                    body,
                    n,
                    sample=lambda pid=pid: {"rss_kib": rss_kib(pid), "upstream": self.sse_stats()},
                    first_timeout=20,
                    total_timeout=chunks * delay / 1000 + 30,
                )
            )
            res["rss_before_kib"] = before
            res["rss_during_kib"] = res["sample"]["rss_kib"]
            res["rss_after_kib"] = rss_kib(pid)
            res["upstream_open_during"] = (res["sample"]["upstream"] or {}).get("open")
            res["kib_per_stream"] = (res["rss_during_kib"] - before) / res["first_byte"] if res["first_byte"] else None
            out["targets"][t.name]["open_streams"] = res
            log(
                f"streaming: {n} open streams via {t.name}: {res['first_byte']} opened, "
                f"{res['completed']} completed, {res['kib_per_stream'] or 0:.1f} KiB/stream"
            )

        # 3e. client disconnects: does the proxy close its upstream request?
        body, extra = self.stream_request(200, 100)
        for t in targets:
            if t.name == "sse_direct":
                continue
            out["targets"][t.name]["disconnect"] = runner.run(self.disconnect_check(t, body, extra))

    def stream_cpu(self, runner: asyncio.Runner, targets: list, out: dict) -> None:
        """What a streamed answer costs the proxy's process in CPU: ``cpu_streams`` concurrent
        streams of ``cpu_chunks`` chunks ``cpu_delay_ms`` apart (each chunk its own read, as a
        model's tokens arrive), the floor and Keygate back to back in each round. Per stream and
        per chunk, and Keygate's beyond the floor's (median of the rounds' differences)."""
        proxies = [t for t in targets if t.name in ("sse_raw", "sse_keygate") and t.proc is not None]
        n, chunks, delay = self.p["cpu_streams"], self.p["cpu_chunks"], self.p["cpu_delay_ms"]
        body, extra = self.stream_request(chunks, delay)
        per_stream: dict = {t.name: [] for t in proxies}
        failed: dict = dict.fromkeys(per_stream, 0)
        for r in range(self.p["cpu_rounds"]):
            for t in paired_order(proxies, r, ("sse_raw", "sse_keygate")):
                # In ns: a round is a few hundred ms of CPU, and /proc/PID/stat's 10 ms ticks
                # would be ~30 µs a stream.
                before = cpu_ns(t.proc.pid)
                res = runner.run(load.concurrent_streams(t.url, {**t.headers, **extra}, body, n, 60))
                spent = (cpu_ns(t.proc.pid) - before) / 1e9
                good = [x for x in res if x["ok"] and len(x["frames"]) == chunks + 3]
                failed[t.name] += n - len(good)
                per_stream[t.name].append(spent * 1e6 / n)
        for t in proxies:
            values = per_stream[t.name]
            out["targets"][t.name]["cpu"] = {
                "streams": n,
                "chunks": chunks,
                "delay_ms": delay,
                "rounds": len(values),
                "failed": failed[t.name],
                "us_per_stream": statistics.median(values),
                "us_per_stream_rounds": values,
                # every frame the client reads: a role frame, the content, finish, usage, [DONE]
                "us_per_chunk": statistics.median(values) / (chunks + 4),
            }
        if len(proxies) == 2:
            diffs = [k - f for k, f in zip(per_stream["sse_keygate"], per_stream["sse_raw"], strict=True)]
            out["cpu_beyond_floor_us_per_stream"] = statistics.median(diffs)
            out["cpu_beyond_floor_us_per_stream_rounds"] = diffs
        log(f"streaming: CPU per stream done ({self.elapsed():.0f} s)")

    def sse_stats(self) -> dict | None:
        status, body = http_status(self.sse_base + "/stats", timeout=2)
        return json.loads(body) if status == 200 else None

    async def disconnect_check(self, t: Target, body: bytes, extra: dict) -> dict:
        import aiohttp

        n = self.p["disconnect_streams"]
        before = (self.sse_stats() or {}).get("open")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            events = [asyncio.Event() for _ in range(n)]
            tasks = [
                asyncio.create_task(load.stream_once(session, t.url, {**t.headers, **extra}, body, e)) for e in events
            ]
            await asyncio.wait([asyncio.create_task(e.wait()) for e in events], timeout=10)
            during = (self.sse_stats() or {}).get("open")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(1.0)
        after = (self.sse_stats() or {}).get("open")
        return {
            "streams": n,
            "upstream_open_before": before,
            "upstream_open_during": during,
            "upstream_open_1s_after_disconnect": after,
        }

    # Phase 4: auth figures (pluggable, bench/auth_bench.py)

    def phase_auth(self) -> None:
        missing = self.keygate_missing()
        if missing:
            self.results["auth"] = {"available": False, "reason": missing}
            return
        env = self.keygate_env(f"sqlite:///{self.tmp / 'auth.sqlite3'}", self.mock_base)
        cmd = [self.keygate_py, str(BENCH / "auth_bench.py"), "--json"] + (["--quick"] if self.args.quick else [])
        try:
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            self.results["auth"] = {"available": False, "reason": "auth_bench.py timed out (240 s)"}
            return
        line = next((ln for ln in reversed(r.stdout.splitlines()) if ln.startswith("{")), None)
        if line is None:
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-8:])
            self.results["auth"] = {"available": False, "reason": f"auth_bench.py exited {r.returncode}:\n{tail}"}
            return
        self.results["auth"] = json.loads(line)

    # Phase 5: scale-out against PostgreSQL + Redis

    def phase_scale_out(self, runner: asyncio.Runner) -> None:
        out: dict = {"available": False}
        self.results["scale_out"] = out
        services = ROOT / "scripts" / "services.sh"
        missing = self.keygate_missing()
        if "scale" in self.skip:
            out["reason"] = "skipped (--skip scale)"
            return
        if missing or not self.targets["keygate"].available:
            out["reason"] = missing or "Keygate target not available"
            return
        if not services.exists():
            out["reason"] = "scripts/services.sh not found: no PostgreSQL + Redis to scale out against"
            return
        if shutil.which("wrk") is None:
            out["reason"] = "wrk not installed"
            return
        was_running = subprocess.run(["bash", services, "status"], capture_output=True).returncode == 0
        r = subprocess.run(["bash", services, "start"], capture_output=True, text=True, timeout=240)
        if r.returncode != 0:
            out["reason"] = "scripts/services.sh start failed:\n" + "\n".join((r.stderr or r.stdout).splitlines()[-6:])
            return
        try:
            self._scale_out(runner, services, out)
        finally:
            if not was_running:
                subprocess.run(["bash", services, "stop"], capture_output=True, timeout=120)

    def _scale_out(self, runner: asyncio.Runner, services: Path, out: dict) -> None:
        r = subprocess.run(["bash", services, "env"], capture_output=True, text=True, timeout=30)
        found = dict(re.findall(r"^(?:export )?(DATABASE_URL|REDIS_URL)=(\S+)$", r.stdout, re.M))
        if "DATABASE_URL" not in found or "REDIS_URL" not in found:
            out["reason"] = "scripts/services.sh env printed no DATABASE_URL / REDIS_URL"
            return
        # A database and a Redis db of our own, emptied each run: never the tests' data.
        admin_url = found["DATABASE_URL"]
        db_url = admin_url.rsplit("/", 1)[0] + "/keygate_bench"
        redis_url = found["REDIS_URL"].rsplit("/", 1)[0] + "/15"
        reset = (
            "import sys, psycopg, redis\n"
            "with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
            "    c.execute('DROP DATABASE IF EXISTS keygate_bench WITH (FORCE)')\n"
            "    c.execute('CREATE DATABASE keygate_bench')\n"
            "redis.Redis.from_url(sys.argv[2]).flushdb()\n"
        )
        r = subprocess.run(
            [self.keygate_py, "-c", reset, admin_url, redis_url], capture_output=True, text=True, timeout=60
        )
        if r.returncode != 0:
            out["reason"] = "could not reset keygate_bench database / redis db 15:\n" + r.stderr.strip()[-400:]
            return
        env = self.keygate_env(db_url, self.mock_base, redis_url)
        key, why = self.prepare_keygate(env, "postgres")
        if not key:
            out["reason"] = why
            return
        servers = []
        for w in self.p["scale_workers"]:
            t = self.start_keygate(f"keygate_pg_w{w}", env, key, workers=w)
            servers.append((w, t))
        for _, t in servers:
            self.wait_ready(t, 90)
        ready = [(w, t) for w, t in servers if t.available]
        if not ready:
            out["reason"] = "no Keygate server started against PostgreSQL + Redis: " + servers[0][1].note
            return
        for _, t in ready:  # warm every worker's key cache and connection pools
            runner.run(load.latency_run(t.url, t.headers, CHAT_BODY, 32, 400, 5))
        runs: dict = {w: [] for w, _ in ready}
        log(f"scale-out: workers {[w for w, _ in ready]}, {self.p['scale_rounds']} rounds")
        for r_ in range(self.p["scale_rounds"]):
            for w, t in rotated(ready, r_):
                before = machine_cpu()
                result = self.run_wrk(t, self.p["scale_seconds"])
                result["machine_busy"] = busy_between(before, machine_cpu())
                runs[w].append(result)
        out.update(
            {
                "available": True,
                "database": "postgresql",
                "cache": "redis",
                "seconds": self.p["scale_seconds"],
                "rounds": self.p["scale_rounds"],
                "workers": {},
            }
        )
        for w, rs in runs.items():
            ok = [x for x in rs if "rps" in x]
            out["workers"][str(w)] = {
                "rps": statistics.median([x["rps"] for x in ok]) if ok else None,
                "rps_rounds": [x["rps"] for x in ok],
                "errors": sum(x["error_count"] for x in ok),
                "error": None if ok else (rs[0].get("error") if rs else "no run"),
                # The whole machine's CPU (all cores) while wrk ran: with 1 worker near 100 %,
                # wrk, nginx, PostgreSQL, Redis and Keygate already use every core.
                "machine_busy": statistics.median([x["machine_busy"] for x in ok]) if ok else None,
            }
        out["cores"] = os.cpu_count()
        if len(ready) >= 2:
            out["revocation"] = self._revocation(env, ready[0][1], ready[1][1])
        for w, t in servers:
            if not t.available:
                out["workers"][str(w)] = {"rps": None, "error": t.note}
            self.procs.stop(t.proc)

    def _revocation(self, env: dict, first: Target, second: Target) -> dict:
        """A key revoked by a separate process (the CLI) → time until *another* server refuses it.

        Both servers share PostgreSQL + Redis; the second server has the key warm in its cache.
        Polls every 2 ms for at most 5 s, measured from the moment the CLI's revoke committed.
        """
        import urllib.error
        import urllib.request

        key, why = self.prepare_keygate(env, "revocation")
        if not key:
            return {"error": why}

        def status(t: Target) -> int:
            request = urllib.request.Request(
                t.url, data=CHAT_BODY, headers={**JSON_HEADERS, "Authorization": f"Bearer {key}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        for _ in range(8):  # warm every worker of both servers
            if status(first) != 200 or status(second) != 200:
                return {"error": "the new key did not work before revocation"}
        r = subprocess.run(
            [self.keygate_py, "manage.py", "keys", "revoke", key[6:18]],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        revoked = time.monotonic()
        if r.returncode != 0:
            return {"error": "keys revoke failed: " + r.stderr.strip()[-300:]}
        while time.monotonic() - revoked < 5:
            if status(second) == 401:
                return {"ms": round((time.monotonic() - revoked) * 1000, 1)}
            time.sleep(0.002)
        return {"ms": None, "error": "still accepted after 5 s"}

    # ---------------------------------------------------------------------------------------------

    def machine(self) -> dict:
        def first(path: str, prefix: str) -> str | None:
            try:
                for line in open(path):
                    if line.startswith(prefix):
                        return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip('"\n')
            except OSError:
                pass
            return None

        def version(dist: str) -> str | None:
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                return None

        def tool(argv: list[str]) -> str | None:
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                return None
            text = (r.stdout + r.stderr).strip().splitlines()
            return text[0] if text else None

        litellm = None
        for info in LITELLM_VENV.glob("lib/python*/site-packages/litellm-*.dist-info"):
            litellm = info.name[len("litellm-") : -len(".dist-info")]
        mem = first("/proc/meminfo", "MemTotal")
        return {
            "cpu_model": first("/proc/cpuinfo", "model name"),
            "cores": os.cpu_count(),
            "memory": mem,
            "os": first("/etc/os-release", "PRETTY_NAME="),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "loadavg_start": self.loadavg_start,
            "loadavg_end": open("/proc/loadavg").read().split()[:3],
            "versions": {
                "uvicorn": version("uvicorn"),
                "uvloop": version("uvloop"),
                "httptools": version("httptools"),
                "aiohttp": version("aiohttp"),
                "django": version("Django"),
                "djangorestframework": version("djangorestframework"),
                "litellm": litellm,
                "nginx": tool(["nginx", "-v"]),
                "wrk": tool(["wrk", "-v"]),
            },
        }

    def run(self) -> None:
        self.loadavg_start = open("/proc/loadavg").read().split()[:3]
        log(f"mode {self.mode}, temp dir {self.tmp}")
        cores = os.cpu_count() or 1
        if float(self.loadavg_start[0]) > 0.5 * cores:
            self.note(
                f"machine busy at start (load average {self.loadavg_start[0]} on {cores} cores): absolute figures "
                "are noisier than usual; interleaved rounds keep same-run comparisons fair"
            )
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            self.setup()
            self.phase_latency(runner)
            self.phase_throughput()
            if self.targets["litellm"].proc is not None:  # done with it: give its memory back
                self.procs.stop(self.targets["litellm"].proc)
            if "stream" not in self.skip:
                self.phase_streaming(runner)
            if "auth" not in self.skip:
                self.phase_auth()
            if "stages" not in self.skip:
                self.phase_stages()
            # ~15 s to boot 7 workers + warm-up + the wrk rounds
            scale_s = 20 + self.p["scale_rounds"] * len(self.p["scale_workers"]) * self.p["scale_seconds"]
            if self.remaining() > scale_s:
                self.phase_scale_out(runner)
            else:
                self.results["scale_out"] = {"available": False, "reason": "skipped: time budget"}
        self.results["meta"] = {
            "mode": self.mode,
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(self.elapsed(), 1),
            "profile": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.p.items() if k != "lat_plan"}
            | {"lat_plan": {str(c): list(v) for c, v in self.p["lat_plan"].items()}},
            "machine": self.machine(),
        }
        self.write()

    def write(self) -> None:
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        self.results["figures"] = report.evaluate(self.results)
        (out / "latest.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (out / "latest.md").write_text(report.markdown(self.results))
        log(f"wrote {out / 'latest.json'} and latest.md")
        chart_py = LITELLM_VENV / "bin" / "python"
        python = str(chart_py) if chart_py.exists() else PY
        r = subprocess.run(
            [python, str(BENCH / "chart.py"), str(out / "latest.json"), str(out / "latest.png")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode == 0:
            log(f"wrote {out / 'latest.png'}")
        else:
            log(
                "chart not drawn (matplotlib lives in bench/.venv-litellm: run bench/litellm_setup.sh): "
                + (r.stderr.strip().splitlines() or [""])[-1]
            )
        print()
        print(report.summary(self.results), flush=True)

    def cleanup(self) -> None:
        self.procs.stop_all()
        if not self.args.keep_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp} (logs, databases)")


def _loop_factory():
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:
        return None


def _as_sigint(signum, frame):
    # Handled like Ctrl-C: asyncio.Runner cancels the running measurement cleanly, elsewhere
    # KeyboardInterrupt unwinds to main()'s `finally`, which stops every server.
    signal.raise_signal(signal.SIGINT)


def main() -> int:
    parser = argparse.ArgumentParser(description="Keygate benchmark: everything on 127.0.0.1, side by side.")
    parser.add_argument("--quick", action="store_true", help="shorter rounds, 200 open streams (< 2 minutes)")
    parser.add_argument("--skip", default="", help="comma list of: litellm, keygate, stream, auth, stages, scale")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (server logs, SQLite files)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    args = parser.parse_args()

    # 1,000 streams = 2,000+ sockets in the proxy and as many in this client.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    # Started in the background by a shell, SIGINT may arrive ignored: restore Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _as_sigint)
    signal.signal(signal.SIGHUP, _as_sigint)

    bench = Bench(args)
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted: stopping every server started")
        return 130
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
