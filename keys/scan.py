"""``python manage.py keys scan PATH…`` — find Keygate keys in files, trees and stdin, offline.

Prefix, shape and CRC32 checksum (:func:`keys.crypto.find_keys`), so nothing but a real-looking
Keygate key of this installation's prefix is reported and no database is touched — unless
``--revoke`` is given, when the live keys found go through :func:`keys.leaks.revoke_leaked`
like every other leak. Output: ``path:line:column: <masked key>`` per finding (never the key),
or SARIF 2.1.0 (``--format sarif``) for code-scanning tools. Exit status 1 when anything was
found, 0 otherwise — what a pre-commit hook needs (SECURITY.md has the recipe). The same scan
runs without Django as ``python -m keys.scan PATH…`` (no settings, no database; no ``--revoke``).

Fast enough for a hook on a large tree: each file is read as bytes and skipped after one
substring search unless it holds the prefix (no decoding, no line splitting);
``bench/leak_bench.py`` measures MB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from keys import crypto

SKIP_DIRS = frozenset({".git", ".hg", ".svn"})
STDIN = "-"
RULE_ID = "keygate-key"
VIA = "keys scan"


@dataclass(frozen=True, slots=True)
class Hit:
    """One key found: where, and the key (kept in memory only, for ``--revoke``)."""

    path: str
    line: int
    column: int
    key: crypto.ParsedKey

    @property
    def masked(self) -> str:
        return crypto.mask(self.key.prefix, self.key.public_id, self.key.raw[-4:])


def add_arguments(parser: Any) -> None:
    """The ``scan`` sub-command's options."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, directories (recursively) or - for stdin")
    parser.add_argument("--revoke", action="store_true", help="revoke the live keys found (audited as leaked)")
    parser.add_argument("--format", choices=("text", "sarif"), default="text", help="text (default) or SARIF 2.1.0")


def files(paths: list[str]) -> Iterator[str]:
    """Every file named or under a named directory (VCS metadata skipped), in a stable order."""
    for given in paths:
        if given == STDIN or not os.path.isdir(given):
            yield given
            continue
        for root, dirs, names in os.walk(given):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                yield os.path.join(root, name)


def scan_bytes(data: bytes, path: str, prefix: str) -> Iterator[Hit]:
    """The keys in ``data``, with 1-based line and column."""
    line, counted_to = 1, 0
    for offset, key in crypto.find_keys(data, prefix):
        line += data.count(b"\n", counted_to, offset)
        counted_to = offset
        line_start = data.rfind(b"\n", 0, offset) + 1
        yield Hit(path=path, line=line, column=offset - line_start + 1, key=key)


def scan(paths: list[str], prefix: str, stdin: IO[bytes], errors: list[str]) -> list[Hit]:
    """Every key in ``paths``; unreadable paths are reported in ``errors`` and skipped."""
    hits: list[Hit] = []
    for path in files(paths):
        try:
            if path == STDIN:
                data = stdin.read()
            else:
                with open(path, "rb") as handle:
                    data = handle.read()
        except OSError as error:
            errors.append(f"{path}: {error.strerror or error}")
            continue
        hits.extend(scan_bytes(data, "<stdin>" if path == STDIN else path, prefix))
    return hits


def sarif(hits: list[Hit]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``hits`` (masked keys only; fingerprinted by public id)."""
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keygate-keys-scan",
                        "rules": [
                            {
                                "id": RULE_ID,
                                "name": "KeygateKey",
                                "shortDescription": {"text": "A Keygate API key"},
                                "fullDescription": {
                                    "text": "A Keygate key (prefix, shape and checksum match). Revoke it and "
                                    "replace it; never commit keys."
                                },
                                "defaultConfiguration": {"level": "error"},
                            }
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": RULE_ID,
                        "level": "error",
                        "message": {"text": f"Keygate key {hit.masked}"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": Path(hit.path).as_posix()},
                                    "region": {"startLine": hit.line, "startColumn": hit.column},
                                }
                            }
                        ],
                        "partialFingerprints": {"keygateKeyPublicId/v1": hit.key.public_id},
                    }
                    for hit in hits
                ],
            }
        ],
    }


def run(options: dict[str, Any], stdout: Any, stderr: Any) -> int:
    """The ``scan`` sub-command; returns the exit status (1 when a key was found).

    ``stdout``/``stderr`` take one line per ``write`` (Django's OutputWrapper ends each line).
    """
    errors: list[str] = []
    prefix = options.get("prefix") or settings.KEYGATE_KEY_PREFIX
    hits = scan(options["paths"], prefix, sys.stdin.buffer, errors)
    for error in errors:
        stderr.write(f"cannot read {error}")
    if options["format"] == "sarif":
        stdout.write(json.dumps(sarif(hits), indent=2))
    else:
        for hit in hits:
            stdout.write(f"{hit.path}:{hit.line}:{hit.column}: {hit.masked}")
    if options.get("revoke") and hits:
        from keys import leaks  # the database only when asked to revoke

        findings = [leaks.Finding(hit.key.raw, url=f"{hit.path}:{hit.line}", source="keys scan") for hit in hits]
        verdicts = leaks.revoke_leaked(findings, via=VIA)
        revoked = sum(v is leaks.Verdict.REVOKED for v in verdicts)
        already = sum(v is leaks.Verdict.ALREADY_REVOKED for v in verdicts)
        stderr.write(f"revoked {revoked} live key(s); {already} already revoked; {len(hits)} found")
    elif hits:
        stderr.write(f"{len(hits)} Keygate key(s) found: revoke them (keys scan --revoke) and replace them")
    return 1 if hits else 0


class _Lines:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        print(text, file=self.stream)


def main(argv: list[str] | None = None) -> int:
    """``python -m keys.scan PATH…``: the same scan without Django, a database or settings (for
    a pre-commit hook in any repository); the prefix from ``--prefix`` or ``KEYGATE_KEY_PREFIX``."""
    parser = argparse.ArgumentParser(prog="python -m keys.scan", description="Find Keygate keys in files.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files, directories (recursively) or - for stdin")
    parser.add_argument("--format", choices=("text", "sarif"), default="text", help="text (default) or SARIF 2.1.0")
    parser.add_argument("--prefix", default=os.environ.get("KEYGATE_KEY_PREFIX", "sk-kg"), type=crypto.validate_prefix)
    options = vars(parser.parse_args(argv))
    return run(options, _Lines(sys.stdout), _Lines(sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
