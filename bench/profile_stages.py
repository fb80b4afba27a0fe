"""A py-spy profile of a running Keygate, aggregated by stage (issue #16).

    py-spy record -p PID -d 10 -r 200 --threads --idle -f raw -o raw.txt   # while wrk runs
    .venv/bin/python bench/profile_stages.py raw.txt

Each sample of the event-loop thread (``MainThread``) goes to the deepest stage its stack is in
(parse, auth cache, limits, routing, forward, relay, usage, metrics, access log, the rest of
the gateway, the ASGI server, the event loop itself, idle); samples of the other threads (the
usage writer, key-state readers, argon2) are listed per thread: their Python work competes with
the loop for the GIL. ``py-spy`` is pinned in requirements-dev.txt.
"""

from __future__ import annotations

import collections
import sys

# (stage, markers): a frame containing a marker puts the sample in that stage; the deepest wins.
STAGES = (
    ("gateway (rest)", ("(gateway/asgi.py",)),
    ("parse", ("from_scope (gateway/", "match (gateway/views", "_prepare (gateway/asgi", "read_body (gateway/")),
    ("auth cache", ("_authorize (gateway/asgi",)),
    ("limits", ("admit (gateway/limits", "settle (gateway/limits")),
    ("routing", ("resolve (gateway/routing", ".plan (gateway/proxy", "(gateway/router.py")),
    ("forward", ("forward (gateway/proxy", "_open (gateway/proxy", "(gateway/providers/")),
    ("relay", ("(gateway/relay.py",)),
    ("usage", ("record (gateway/usage", "cost (gateway/routing")),
    ("metrics", ("_record (gateway/asgi", "(gateway/bookkeeping.py")),
    ("access log", ("(gateway/logfmt.py",)),
)
_ORDER = {name: i for i, (name, _) in enumerate(STAGES)}


def stage_of(frames: list[str]) -> str:
    found = ""
    for frame in frames:  # outermost first: a later match is deeper
        for name, markers in STAGES:
            if any(marker in frame for marker in markers):
                # a frame of gateway/asgi.py that is itself a named stage's frame keeps that stage
                if name == "gateway (rest)" and found:
                    continue
                found = name
                break
    if found:
        if found in ("metrics",) and any("(gateway/usage.py" in f for f in frames):
            return "usage"
        return found
    last = frames[-1] if frames else ""
    if "Runner.run (" in last or "run_until_complete (" in last:
        # py-spy sees no native frames: uvloop's C code, polling included (idle or not)
        return "uvloop (native, or idle)"
    if any("(uvicorn/" in f for f in frames):
        return "ASGI server (uvicorn)"
    return "event loop / other"


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "raw.txt"
    loop: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    for line in open(path):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        weight = int(count)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        body = frames[1:]
        if thread != "MainThread":
            is_idle = not body or any(
                marker in body[-1] for marker in ("wait (threading", "_worker (concurrent", "get (queue")
            )
            threads[f"{thread.rsplit('_', 1)[0]} ({'idle' if is_idle else 'busy'})"] += weight
            continue
        loop[stage_of(body)] += weight
    total = sum(loop.values())
    python = total - loop["uvloop (native, or idle)"]
    print(f"event-loop thread: {total} samples, {python} in Python code")
    for stage, n in sorted(loop.items(), key=lambda kv: (_ORDER.get(kv[0], 99), -kv[1])):
        print(f"  {stage:26s} {n:6d}  {n / max(1, total):6.1%}")
    print("other threads (samples):")
    for thread, n in threads.most_common():
        print(f"  {thread:32s} {n:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
