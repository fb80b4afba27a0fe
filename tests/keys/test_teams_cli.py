"""The `teams` management command (and `keys create --team`), run as a user runs it: a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def manage(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "KEYGATE_TESTING": "true",
        "KEYGATE_ENV_FILE": str(tmp_path / "none.env"),
        "DEBUG": "false",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            "User.objects.create_user('alice'); User.objects.create_user('bob')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)

    return run


def test_a_team_is_created_given_members_and_shown(manage) -> None:
    created = manage(
        "teams", "create", "search", "--models", "gpt-*", "--budget-tokens", "5000", "--budget-period", "day"
    )
    assert created.returncode == 0, created.stderr
    assert manage("teams", "add-member", "search", "alice", "--role", "admin").returncode == 0
    assert manage("teams", "add-member", "search", "bob", "--role", "viewer").returncode == 0
    assert manage("teams", "set-role", "search", "bob", "--role", "member").returncode == 0
    shown = json.loads(manage("teams", "show", "search").stdout)
    assert shown["models"] == ["gpt-*"]
    assert shown["limits"]["budget_tokens"] == 5000 and shown["limits"]["budget_period"] == "day"
    assert shown["members"] == [{"user": "alice", "role": "admin"}, {"user": "bob", "role": "member"}]
    assert [e["action"] for e in shown["events"]] == ["created", "member_added", "member_added", "role_changed"]
    assert all(e["by"] == "cli" for e in shown["events"])
    assert manage("teams", "remove-member", "search", "bob").returncode == 0
    listed = json.loads(manage("teams", "list", "--json").stdout)
    assert [(t["name"], len(t["members"])) for t in listed] == [("search", 1)]
    table = manage("teams", "list").stdout
    assert "search" in table and "5000 tokens per day" in table


def test_keys_create_with_a_team_stays_inside_its_models(manage) -> None:
    manage("teams", "create", "search", "--models", "gpt-*")
    made = manage("keys", "create", "--name", "k", "--models", "gpt-4o", "--team", "search")
    assert made.returncode == 0, made.stderr
    rows = json.loads(manage("keys", "list", "--json", "--team", "search").stdout)
    assert [(r["name"], r["team"]) for r in rows] == [("k", "search")]
    refused = manage("keys", "create", "--name", "k2", "--models", "claude-*", "--team", "search")
    assert refused.returncode != 0 and "outside team search" in refused.stderr and refused.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("teams", "create", "t", "--rpm", "fast"), "--rpm must be a positive whole number", id="bad-limit"
        ),
        pytest.param(("teams", "add-member", "nope", "alice"), "no team matches", id="unknown-team"),
        pytest.param(("teams", "add-member", "t", "carol"), "no user named", id="unknown-user"),
        pytest.param(("teams", "add-member", "t", "alice", "--role", "owner"), "invalid choice", id="unknown-role"),
        pytest.param(("teams", "create", "t"), "exists already", id="taken-name"),
        pytest.param(("keys", "create", "--name", "k", "--models", "*", "--team", "nope"), "no team", id="key-team"),
    ],
)
def test_bad_team_commands_are_one_clear_line(manage, args, message) -> None:
    manage("teams", "create", "t")
    result = manage(*args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
