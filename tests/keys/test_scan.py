"""`keys scan`: Keygate keys found offline in files, trees and stdin; --revoke; SARIF."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from keys import crypto
from keys.constants import KeyAction

ROOT = Path(__file__).resolve().parents[2]


def _foreign() -> str:
    return crypto.generate_key("sk-other")[1]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[str]]:
    """A small repository with two keys of ours (one in a nested directory), look-alikes, a
    foreign key, a binary file and a .git directory that must be skipped."""
    keys = [crypto.generate_key("sk-kg")[1] for _ in range(3)]
    typo = keys[0][:-1] + ("X" if keys[0][-1] != "X" else "Y")  # one character off: never a key
    (tmp_path / "src" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "settings.py").write_text(f'DEBUG = True\n\nAPI_KEY = "{keys[0]}"\n')
    (tmp_path / "src" / "deep" / "notes.md").write_text(f"line one\n  curl -H 'Authorization: Bearer {keys[1]}'\n")
    (tmp_path / "clean.txt").write_text(
        f"sk-kg-{'A' * 50}\n{typo}\n{_foreign()}\nsk-kg-short\n"  # look-alikes and a foreign key
    )
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff\xfe" * 100)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "COMMIT_EDITMSG").write_text(keys[2])
    return tmp_path, keys


def _scan(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("keys", "scan", *args, stdout=out, stderr=err)
        status = 0
    except SystemExit as exit_:
        status = int(exit_.code)
    return status, out.getvalue(), err.getvalue()


def test_a_tree_is_scanned_recursively_with_file_line_column_and_masked_keys(tree) -> None:
    root, keys = tree
    status, out, err = _scan(str(root))
    settings_py, notes = root / "src" / "settings.py", root / "src" / "deep" / "notes.md"
    assert status == 1
    assert (
        out.splitlines()
        == [  # a directory's files, then its subdirectories
            f"{settings_py}:3:12: {keys[0][:18]}…{keys[0][-4:]}",
            f"{notes}:2:34: {keys[1][:18]}…{keys[1][-4:]}",
        ]
    )
    assert not any(key in out + err for key in keys)
    assert keys[2][:18] not in out  # .git is skipped


def test_a_clean_tree_exits_0_and_prints_nothing(tmp_path) -> None:
    (tmp_path / "a.txt").write_text(f"nothing here\nsk-kg-{'A' * 50}\n{_foreign()}\n")
    assert _scan(str(tmp_path)) == (0, "", "")


def test_scanning_touches_no_database(tree) -> None:
    # No django_db mark: pytest-django makes any database access in this test an error.
    assert _scan(str(tree[0]))[0] == 1


def test_stdin_is_scanned_with_a_dash(monkeypatch) -> None:
    key = crypto.generate_key("sk-kg")[1]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(f"x\ny {key}\n".encode())))
    status, out, _ = _scan("-")
    assert (status, out.strip()) == (1, f"<stdin>:2:3: {key[:18]}…{key[-4:]}")


def test_a_missing_file_is_reported_and_the_rest_still_scanned(tree) -> None:
    root, _ = tree
    status, out, err = _scan(str(root / "nope.txt"), str(root / "src" / "settings.py"))
    assert status == 1 and "settings.py:3:12" in out
    assert "cannot read" in err and "nope.txt" in err


@pytest.mark.django_db(transaction=True)
def test_revoke_revokes_the_live_keys_found_through_the_leak_path(tmp_path, make_key) -> None:
    live, live_raw = make_key(name="live")
    (tmp_path / "config.env").write_text(f"KEY={live_raw}\nOTHER={crypto.generate_key('sk-kg')[1]}\n")

    status, _, err = _scan(str(tmp_path), "--revoke")

    live.refresh_from_db()
    event = live.events.get(action=KeyAction.REVOKED)
    assert status == 1 and live.is_revoked
    assert (event.actor_label, event.details) == (
        "keys scan",
        {"reason": "leaked", "url": f"{tmp_path / 'config.env'}:1", "source": "keys scan"},
    )
    assert "revoked 1 live key(s)" in err
    assert _scan(str(tmp_path), "--revoke")[0] == 1  # a second run: already revoked, still found


def test_sarif_output_is_a_sarif_2_1_0_log_with_masked_keys(tree) -> None:
    root, keys = tree
    status, out, _ = _scan(str(root), "--format", "sarif")
    log = json.loads(out)
    (run,) = log["runs"]
    assert status == 1
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    assert run["tool"]["driver"]["rules"][0]["id"] == "keygate-key"
    locations = [
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"],
        )
        for r in run["results"]
    ]
    assert locations == [
        ((root / "src" / "settings.py").as_posix(), {"startLine": 3, "startColumn": 12}),
        ((root / "src" / "deep" / "notes.md").as_posix(), {"startLine": 2, "startColumn": 34}),
    ]
    assert not any(key in out for key in keys)


def test_as_a_pre_commit_hook_the_command_exits_1_on_a_key_and_0_without(tmp_path) -> None:
    """Run as a hook runs it: a subprocess, files on the command line, the exit status read."""
    env = {
        **os.environ,
        "KEYGATE_TESTING": "true",
        "KEYGATE_ENV_FILE": str(tmp_path / "none.env"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    dirty, clean = tmp_path / "dirty.py", tmp_path / "clean.py"
    dirty.write_text(f"KEY = '{crypto.generate_key('sk-kg')[1]}'\n")
    clean.write_text("print('hello')\n")

    def hook(*paths: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "manage.py", "keys", "scan", *map(str, paths)]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    found, nothing = hook(clean, dirty), hook(clean)
    assert (found.returncode, nothing.returncode) == (1, 0), found.stderr
    assert f"{dirty}:1:8: sk-kg-" in found.stdout
    assert not (tmp_path / "unused.sqlite3").exists()  # no database needed to scan


def test_python_m_keys_scan_needs_no_django_settings_or_database(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KEYGATE_", "DATABASE_"))}
    ours, theirs = crypto.generate_key("sk-kg")[1], crypto.generate_key("sk-acme")[1]
    (tmp_path / "a.env").write_text(f"A={ours}\nB={theirs}\n")

    default = subprocess.run(
        [sys.executable, "-m", "keys.scan", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    other = subprocess.run(
        [sys.executable, "-m", "keys.scan", "--prefix", "sk-acme", "--format", "sarif", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert default.returncode == 1, default.stderr
    assert default.stdout == f"{tmp_path / 'a.env'}:1:3: {ours[:18]}…{ours[-4:]}\n"
    assert other.returncode == 1
    assert json.loads(other.stdout)["runs"][0]["results"][0]["message"]["text"].startswith("Keygate key sk-acme-")


def _documented_hook() -> str:
    text = (ROOT / "SECURITY.md").read_text()
    start = text.index("```sh\n#!/bin/sh\n# Refuse a commit that adds a Keygate key.")
    return text[start + len("```sh\n") : text.index("```", start + 6)]


def test_the_pre_commit_hook_in_security_md_refuses_a_commit_that_adds_a_key(tmp_path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KEYGATE_", "GIT_"))},
        "KEYGATE": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)

    git("init", "-q")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(_documented_hook())
    hook.chmod(0o755)
    (repo / "app.py").write_text("print('hi')\n")
    git("add", "app.py")
    clean = git("commit", "-qm", "clean")
    (repo / "app.py").write_text(f"KEY = '{crypto.generate_key('sk-kg')[1]}'\n")
    git("add", "app.py")
    dirty = git("commit", "-qm", "dirty")
    (repo / "app.py").write_text("import os\nKEY = os.environ['KEY']\n")  # removing the key is fine
    git("add", "app.py")
    fixed = git("commit", "-qm", "fixed")

    assert clean.returncode == 0, clean.stderr
    assert dirty.returncode != 0 and "Keygate key in the staged changes" in dirty.stdout + dirty.stderr
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
