"""What the duplicate-key check (gateway.http.duplicate_key) adds to parsing a request body.

    .venv/bin/python bench/body_check.py

Prints µs per body for orjson.loads alone and for the check, on a small chat body, a 100 KB
conversation, and a body that takes the slow path (a nested key named like a top-level one).
"""

from __future__ import annotations

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

import django

django.setup()

import orjson  # noqa: E402

from gateway.http import duplicate_key  # noqa: E402

SMALL = orjson.dumps(
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there"}], "stream": True, "max_tokens": 64}
)
LARGE = orjson.dumps(
    {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": "You are helpful.",
        "messages": [{"role": "user" if i % 2 else "assistant", "content": "word " * 100} for i in range(200)],
        "stream": True,
    }
)
SLOW = orjson.dumps({"model": "x", "input": [{"type": "message", "content": "hi", "model": "nested"}] * 50})


def main() -> None:
    for name, body in (("small chat", SMALL), ("100 KB conversation", LARGE), ("slow path (nested 'model')", SLOW)):
        payload = orjson.loads(body)
        runs = 2000 if len(body) > 10_000 else 20000
        parse = min(timeit.repeat(lambda b=body: orjson.loads(b), number=runs, repeat=5)) / runs * 1e6
        check = min(timeit.repeat(lambda b=body, p=payload: duplicate_key(b, p), number=runs, repeat=5)) / runs * 1e6
        print(f"{name:28s} {len(body):>8,d} B   orjson.loads {parse:8.2f} µs   duplicate check {check:8.2f} µs")


if __name__ == "__main__":
    main()
