"""Leak-response figures (issue #15): GitHub partner batches of 1,000 tokens, and `keys scan` MB/s.

    .venv/bin/python bench/leak_bench.py [--live N] [--scan-mb M] [--json]    # from the project root

Against a throw-away SQLite database and production argon2id (m = 19 MiB, t = 2), in process
(Django's test client, the real view, a signature made with a test ECDSA key whose public key is
served from loopback like GitHub's list):

- batch_garbage_s      1,000 tokens: half another product's, half our shape with bad checksums
- batch_unknown_s      1,000 checksum-valid tokens of our prefix whose public ids do not exist
- batch_mixed_s        1,000 tokens of which 10 are live keys (revoked) and 990 garbage/unknown
- batch_live_s         --live N tokens, every one a live key (N argon2id verifies, in threads);
                       batch_live_answered = how many were verified within the view's budget
                       (the rest are revoked in the background: batch_live_all_revoked_s)
- scan_mb_per_s        `keys scan` (keys.scan.scan) over a generated tree of --scan-mb MiB in
                       ~1,000 files with a few keys, warm page cache
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup(workdir: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "KEYGATE_ENV_FILE": str(workdir / "no.env"),
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "LOG_LEVEL": "ERROR",
            "ALLOWED_HOSTS": "testserver",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def _batch(tokens: list[str]) -> bytes:
    return json.dumps(
        [
            {"token": t, "type": "keygate_api_key", "url": "https://github.com/o/r/blob/1/f", "source": "content"}
            for t in tokens
        ]
    ).encode()


def _post(client, github, tokens: list[str]) -> tuple[float, list[str]]:
    body = _batch(tokens)
    headers = github.signers[0].headers(body)
    started = time.perf_counter()
    response = client.post("/security/secret-scanning/github", data=body, content_type="application/json", **headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content[:200]
    return elapsed, [item["label"] for item in response.json()]


def _scan_tree(root: Path, megabytes: int, keys: list[str]) -> int:
    line = b"def handler(event, context):  # some ordinary source code, nothing secret in it at all\n"
    per_file = megabytes * 1024 * 1024 // 1000
    chunk = line * (per_file // len(line))
    total = 0
    for i in range(1000):
        directory = root / f"pkg{i % 20}" / f"mod{i % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        data = chunk + (f'KEY = "{keys[i % len(keys)]}"\n'.encode() if i % 250 == 0 else b"")
        (directory / f"file{i}.py").write_bytes(data)
        total += len(data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--live", type=int, default=200, help="live keys in the all-live batch")
    parser.add_argument("--scan-mb", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keygate-leak-bench-") as tmp:
        workdir = Path(tmp)
        _setup(workdir)
        from django.conf import settings
        from django.test import Client

        from keys import crypto, scan, services
        from keys.models import APIKey
        from keys.views import security
        from tests.support.github import FakeGitHub

        results: dict[str, object] = {"argon2": settings.KEYGATE_ARGON2, "cpus": os.cpu_count()}
        with FakeGitHub() as github:
            github.add_signer("bench-key")
            settings.KEYGATE_GITHUB_SCANNING_KEYS_URL = github.keys_url
            client = Client()
            _post(client, github, ["warm-up"])

            garbage = [crypto.generate_key("sk-other")[1] for _ in range(500)] + ["sk-kg-" + "A" * 50] * 500
            unknown = [crypto.generate_key("sk-kg")[1] for _ in range(1000)]
            results["batch_garbage_s"], _ = _post(client, github, garbage)
            results["batch_unknown_s"], _ = _post(client, github, unknown)

            live = [services.key_create(name=f"mixed{i}", model_patterns="*")[1] for i in range(10)]
            mixed = live + garbage[:495] + unknown[:495]
            results["batch_mixed_s"], labels = _post(client, github, mixed)
            assert labels.count("true_positive") == 10

            made = time.perf_counter()
            all_live = [services.key_create(name=f"live{i}", model_patterns="*")[1] for i in range(args.live)]
            results["create_live_keys_s"] = time.perf_counter() - made
            results["batch_live_n"] = args.live
            results["batch_live_s"], labels = _post(client, github, all_live)
            assert set(labels) <= {"true_positive"}
            results["batch_live_answered"] = len(labels)  # the rest finish in the background
            while security.pending_reports():
                time.sleep(0.05)
            results["batch_live_all_revoked_s"] = time.perf_counter() - made - results["create_live_keys_s"]
            assert not APIKey.objects.filter(revoked_at__isnull=True).exists()

        tree = workdir / "tree"
        size = _scan_tree(tree, args.scan_mb, [crypto.generate_key("sk-kg")[1] for _ in range(4)])
        scan.scan([str(tree)], "sk-kg", sys.stdin.buffer, [])  # warm the page cache
        started = time.perf_counter()
        hits = scan.scan([str(tree)], "sk-kg", sys.stdin.buffer, [])
        elapsed = time.perf_counter() - started
        results.update(scan_bytes=size, scan_files=1000, scan_hits=len(hits), scan_s=elapsed)
        results["scan_mb_per_s"] = size / elapsed / 1024 / 1024

    if args.json:
        print(json.dumps(results))
    else:
        for name, value in results.items():
            print(f"{name:24} {value:.3f}" if isinstance(value, float) else f"{name:24} {value}")


if __name__ == "__main__":
    main()
