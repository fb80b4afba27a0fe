"""Two Keygate trees side by side, in the same run: pass-through throughput and latency A/B.

    .venv/bin/python bench/ab.py /path/to/tree-a /path/to/tree-b [--rounds 5] [--seconds 3]

Starts one nginx mock (bench/mock_nginx.conf) and one Keygate per tree (SQLite, one worker, the
same settings as bench/run.py), then alternates
``wrk -t1 -c32`` rounds A, B, A, B … so both see the same machine load; prints each round and
the medians. On a busy shared machine the absolute numbers drift; the A/B ratio per round is
the figure. Everything started is killed on exit.

``--servers A,B`` picks the server of each tree: ``uvicorn`` (default: ``uvicorn
config.asgi:application`` with uvloop + httptools), ``serve`` (``python -m config.serve``, what
``make run`` serves) or ``granian`` (``granian --interface asgi``, uvloop, HTTP/1 only; granian is
not a dependency: ``pip install granian==2.8.7`` into the venv first). The same tree twice with
two servers compares the servers.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, headers: dict[str, str], body: bytes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (granian serves from a child)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    pending.extend(int(child) for child in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def wrk(url: str, auth: str, seconds: float, connections: int, pid: int | None = None) -> dict:
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "wrk_post.lua"),
            url,
        ],
        env={**os.environ, "WRK_AUTH": auth},
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    result = json.loads(line[len("WRKJSON ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    if pid:  # the server's own CPU per request (user + sys), steadier than req/s on a shared machine
        result["cpu_us"] = (cpu_seconds(pid) - before) * 1e6 / max(1, result["requests"])
    return result


def server_command(server: str, python: str, port: int) -> list[str]:
    """How one tree's Keygate is served (``--servers``)."""
    if server == "serve":
        return [python, "-m", "config.serve"]  # HOST, PORT and WORKERS come from the environment
    if server == "granian":
        return [
            python, "-m", "granian", "--interface", "asgi", "--loop", "uvloop", "--http", "1", "--no-ws",
            "--workers", "1", "--host", "127.0.0.1", "--port", str(port), "config.asgi:application",
        ]  # fmt: skip
    if server == "uvicorn":
        return [
            python, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        ]  # fmt: skip
    raise SystemExit(f"unknown server {server!r}: uvicorn, serve or granian")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs=2, type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--access-log", default="WARNING", help="KEYGATE_ACCESS_LOG (INFO: the JSON access log on)")
    parser.add_argument("--servers", default="uvicorn,uvicorn", help="the server of each tree: uvicorn, serve, granian")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="keygate-ab-"))
    procs: list[subprocess.Popen] = []
    try:
        mock_port = free_port()
        procs.append(
            subprocess.Popen(
                ["bash", str(BENCH / "mock_nginx.sh"), str(mock_port), str(tmp / "nginx")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        targets = []
        for index, tree in enumerate(args.trees):
            tree = tree.resolve()
            env = {
                "PATH": os.environ["PATH"],
                "HOME": os.environ.get("HOME", "/tmp"),
                "DEBUG": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "KEYGATE_ENV_FILE": str(tmp / "no.env"),
                "SECRET_KEY": secrets.token_urlsafe(40),
                "KEYGATE_PEPPER": secrets.token_urlsafe(40),
                "DATABASE_URL": f"sqlite:///{tmp}/db{index}.sqlite3",
                "OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}/v1",
                "OPENAI_API_KEY": "mock-upstream-key",
                "KEYGATE_ACCESS_LOG": args.access_log,
                "KEYGATE_UPSTREAM_MODELS_REFRESH": "0",
            }
            python = str(tree / ".venv" / "bin" / "python")
            subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=tree, env=env, check=True)
            key = (
                subprocess.run(
                    [python, "manage.py", "keys", "create", "--name", "ab", "--models", "*"],
                    cwd=tree,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            port = free_port()
            server = args.servers.split(",")[index]
            procs.append(
                subprocess.Popen(
                    server_command(server, python, port),
                    cwd=tree,
                    env={**env, "HOST": "127.0.0.1", "PORT": str(port), "WORKERS": "1"},
                    stdout=(tmp / f"keygate{index}.log").open("w"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            auth = f"Bearer {key}"
            body = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
            wait_http(url, {"Authorization": auth, "Content-Type": "application/json"}, body)
            targets.append((f"{tree.name}:{server}", url, auth, procs[-1].pid))
        for _name, url, auth, pid in targets:  # warm-up
            wrk(url, auth, 1, args.connections, pid)
        results: dict[str, list[dict]] = {name: [] for name, _, _, _ in targets}
        for round_number in range(1, args.rounds + 1):
            line = []
            for name, url, auth, pid in targets if round_number % 2 else list(reversed(targets)):
                result = wrk(url, auth, args.seconds, args.connections, pid)
                results[name].append(result)
                line.append(
                    f"{name} {result['rps']:8,.0f} req/s p50 {result['latency_us']['p50'] / 1000:6.2f} ms"
                    f" cpu {result['cpu_us']:5.0f} µs/req"
                )
            print(f"round {round_number}: " + "   ".join(sorted(line)), flush=True)
        print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        for name, runs in results.items():
            rps = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["latency_us"]["p50"] for r in runs) / 1000
            p99 = statistics.median(r["latency_us"]["p99"] for r in runs) / 1000
            cpu = statistics.median(r["cpu_us"] for r in runs)
            errors = sum(sum(r["errors"].values()) for r in runs)
            print(
                f"median {name:12s} {rps:8,.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
                f"   cpu {cpu:5.0f} µs/req   errors {errors}"
            )
        (a_name, *_), (b_name, *_) = targets
        a, b = (statistics.median(r["rps"] for r in results[name]) for name in (a_name, b_name))
        ca, cb = (statistics.median(r["cpu_us"] for r in results[name]) for name in (a_name, b_name))
        print(
            f"throughput {b_name} / {a_name} = {b / a:.1%}   server CPU per request {b_name} − {a_name} = {cb - ca:+.0f} µs"
        )
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
