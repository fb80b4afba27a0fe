"""Process bookkeeping for bench/run.py: start servers on loopback, wait for them, kill them all.

Every child runs in its own session (process group) with PR_SET_PDEATHSIG, so:
- stop_all() ends each whole group (uvicorn's worker processes included), and
- if run.py itself dies without cleaning up (SIGKILL), the kernel still sends SIGTERM to
  each direct child.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not glibc: children just lose the parent-death signal
    _libc = None


def _child_setup() -> None:
    os.setsid()
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """The servers one bench run started; stop_all() is safe to call more than once."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.items: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.Popen:
        log = self.logdir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                preexec_fn=_child_setup,
            )
        self.items.append((name, proc, log))
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logdir / f"{name}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen, grace: float = 5.0) -> None:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # The group may outlive its leader (uvicorn workers): always finish it off.
        _signal_group(proc, signal.SIGKILL)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        # Signal everything first, then wait: a run with 10 servers stops in ~one grace period.
        for _, proc, _ in self.items:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _, proc, _ in self.items:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, proc, _ in reversed(self.items):
            self.stop(proc, grace=0.1)
        self.items.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def http_status(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """(status, body) of one request; (0, error text) when the connection fails."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError) as error:
        return 0, str(error).encode()


def wait_until(
    check: Callable[[], bool], proc: subprocess.Popen | None, timeout: float, interval: float = 0.1, reraise: tuple = ()
) -> bool:
    """Poll `check` until it holds; False on timeout or when `proc` has exited.

    Exceptions from `check` count as "not yet", except those listed in `reraise`.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if check():
                return True
        except reraise:
            raise
        except Exception:
            pass
        time.sleep(interval)
    return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name (field 2) may contain spaces: split after ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS, KiB) of a process and its descendants."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def cpu_ns(pid: int) -> int:
    """CPU time in nanoseconds that the live threads of a process and its descendants have run
    (``/proc/PID/task/TID/schedstat``); where the kernel does not report that, ``cpu_seconds``'
    10 ms ticks, which are a third of a short round's figure. A thread that has exited is no
    longer counted: for rounds in which none does."""
    total, seen = 0, False
    for p in process_tree(pid):
        try:
            threads = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
                seen = True
            except (OSError, ValueError, IndexError):
                continue
    return total if seen else round(cpu_seconds(pid) * 1e9)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time (seconds) of a process and its descendants (from /proc)."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
