"""Two Keygate trees A/B in process, at concurrency: CPU per request, paired by round (issue #16).

    .venv/bin/python bench/ab_inproc.py /path/to/tree-a /path/to/tree-b [--rounds 8] [--requests 30000]
                                        [--concurrency 32]

Each round runs, in a fresh process per tree (A then B, B then A in the next round), the real
gateway ASGI app (``gateway.asgi.GatewayApp``, SQLite, its usage writer thread and its JSON
access log on) in front of one nginx mock (``mock_nginx.sh``), and drives ``--requests``
non-streamed ``POST /v1/chat/completions`` through it from ``--concurrency`` tasks. It prints the
loop thread's CPU and the whole process's CPU (the writer thread included) per request, and the
median of the per-round differences B − A.

Why, beside ``bench/ab.py``: wrk rounds on a shared 2-core machine drifted by ±10 % from one
round to the next, which hides a change of a few percent. CPU time of the server alone, with no
HTTP server, wrk or scheduling in between, moved by less. What it does not see: uvicorn and the
kernel's share (the same for both trees), and anything that changes only with a real socket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def run_one(tree: Path, mock_port: int, requests: int, concurrency: int) -> dict:
    """In this process: ``tree``'s gateway, ``requests`` requests from ``concurrency`` tasks."""
    os.chdir(tree)
    sys.path.insert(0, str(BENCH))
    import stages

    stages.ROOT = tree  # Django and the gateway are imported from the tree under test
    key = stages.setup_django(Path(tempfile.mkdtemp(prefix="keygate-abin-")), mock_port)
    import gateway

    assert Path(gateway.__file__).resolve().is_relative_to(tree), gateway.__file__
    import uvloop

    async def main() -> dict:
        from gateway.asgi import GatewayApp

        app = GatewayApp()
        await app.startup()
        scope = stages.make_scope("/v1/chat/completions", key)
        statuses: set[int] = set()

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.add(message["status"])

        async def receive() -> dict:
            return {"type": "http.request", "body": stages.BODY, "more_body": False}

        async def worker(count: int) -> None:
            for _ in range(count):
                await app(dict(scope), receive, send)

        async def drive(total: int) -> None:
            await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))

        await drive(2000)  # warm-up: key cache, pooled connections, metric children
        loop_started, process_started = time.thread_time_ns(), time.process_time_ns()
        await drive(requests)
        loop_ns, process_ns = time.thread_time_ns() - loop_started, time.process_time_ns() - process_started
        await app.shutdown()
        assert statuses == {200}, statuses
        done = requests // concurrency * concurrency
        return {"loop": loop_ns / 1000 / done, "process": process_ns / 1000 / done}

    return uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", nargs="*", type=Path, help="two Keygate source trees (imported by this venv's Python)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--one", nargs=2, metavar=("TREE", "MOCK_PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one tree, one measurement, JSON on stdout
        print(json.dumps(run_one(Path(args.one[0]).resolve(), int(args.one[1]), args.requests, args.concurrency)))
        return
    if len(args.trees) != 2:
        parser.error("give two trees")
    sys.path.insert(0, str(BENCH))
    import stages

    trees = [tree.resolve() for tree in args.trees]
    results: dict[Path, list[dict]] = {tree: [] for tree in trees}
    with stages.nginx_mock(Path(tempfile.mkdtemp(prefix="keygate-abin-"))) as port:
        for round_number in range(args.rounds):
            for tree in trees if round_number % 2 == 0 else trees[::-1]:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", str(tree), str(port), "--requests", str(args.requests),
                     "--concurrency", str(args.concurrency)],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if out.returncode:
                    raise SystemExit(f"{tree} failed:\n{out.stderr[-3000:]}")
                results[tree].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(
                f"round {round_number + 1}: "
                + "   ".join(
                    f"{tree.name} loop {results[tree][-1]['loop']:6.1f} process {results[tree][-1]['process']:6.1f} µs"
                    for tree in trees
                ),
                flush=True,
            )
    a, b = (results[tree] for tree in trees)
    for tree in trees:
        runs = results[tree]
        print(
            f"median {tree.name}: loop {statistics.median(r['loop'] for r in runs):.1f} µs, "
            f"process {statistics.median(r['process'] for r in runs):.1f} µs per request"
        )
    loop = statistics.median(y["loop"] - x["loop"] for x, y in zip(a, b, strict=True))
    process = statistics.median(y["process"] - x["process"] for x, y in zip(a, b, strict=True))
    lower = sum(y["process"] < x["process"] for x, y in zip(a, b, strict=True))
    print(
        f"{trees[1].name} − {trees[0].name}, median of {args.rounds} paired rounds: loop {loop:+.1f} µs, "
        f"process {process:+.1f} µs per request (lower in {lower} of {args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
