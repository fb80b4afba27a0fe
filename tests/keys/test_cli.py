"""The `keys` management command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "KEYGATE_TESTING": "true",
        "KEYGATE_ENV_FILE": str(tmp_path / "none.env"),
        "DEBUG": "false",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "keys", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )

    return run


def test_create_prints_only_the_key_on_stdout(cli) -> None:
    result = cli("create", "--name", "analytics-script", "--models", "gpt-4o,claude-*", "--expires-in", "90d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    key = result.stdout.strip()
    assert key.startswith("sk-kg-") and len(key) == len("sk-kg-") + 50
    assert "analytics-script" in result.stderr and key not in result.stderr


def test_list_show_update_rotate_and_revoke_round_trip(cli) -> None:
    key = cli("create", "--name", "svc", "--models", "*").stdout.strip()
    public_id = key[6:18]
    rows = json.loads(cli("list", "--json").stdout)
    assert [r["public_id"] for r in rows] == [public_id]
    assert key not in cli("list").stdout and public_id in cli("list").stdout

    shown = json.loads(cli("show", rows[0]["masked_key"]).stdout)
    assert shown["public_id"] == public_id and [e["action"] for e in shown["events"]] == ["created"]

    assert cli("update", public_id, "--models", "gpt-4o", "--expires-in", "30d").returncode == 0
    assert json.loads(cli("show", public_id).stdout)["models"] == ["gpt-4o"]

    rotated = cli("rotate", public_id, "--grace", "1h")
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert new_key.startswith("sk-kg-") and new_key != key and rotated.stdout.count("\n") == 1

    assert cli("revoke", new_key[6:18]).returncode == 0
    everything = json.loads(cli("list", "--json", "--all").stdout)
    assert {r["public_id"]: r["status"] for r in everything}[new_key[6:18]] == "revoked"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["show", "nope"], "no key matches", id="unknown-key"),
        pytest.param(["create", "--name", "x", "--models", "bad pattern"], "invalid model pattern", id="bad-pattern"),
        pytest.param(
            ["create", "--name", "x", "--models", "*", "--expires-at", "2001-01-01"], "past", id="past-expiry"
        ),
        pytest.param(["create", "--name", "x"], "--models is required", id="missing-models"),
        pytest.param(["create", "--name", "x", "--models", "*", "--owner", "ghost"], "no user", id="unknown-owner"),
        pytest.param(["rotate", "nope"], "no key matches", id="rotate-unknown"),
    ],
)
def test_errors_are_one_line_on_stderr_with_a_non_zero_exit(cli, args, message) -> None:
    result = cli(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr


def test_revoking_twice_and_rotating_a_revoked_key_fail(cli) -> None:
    key = cli("create", "--name", "svc", "--models", "*").stdout.strip()
    assert cli("revoke", key[6:18]).returncode == 0
    twice = cli("revoke", key[6:18])
    assert twice.returncode != 0 and "already revoked" in twice.stderr
    rotate = cli("rotate", key[6:18])
    assert rotate.returncode != 0 and "revoked" in rotate.stderr and rotate.stdout == ""


def test_limits_are_set_on_create_changed_and_removed_on_update(cli) -> None:
    key = cli(
        "create",
        "--name",
        "batch",
        "--models",
        "gpt-4o-mini",
        "--rpm",
        "60",
        "--tpm",
        "100000",
        "--max-parallel",
        "4",
        "--budget-tokens",
        "2000000",
        "--budget-usd",
        "25",
        "--budget-period",
        "month",
        "--allowed-ips",
        "10.0.0.0/8,2001:db8::/32",
    ).stdout.strip()
    public_id = key[6:18]
    assert cli("update", public_id, "--rpm", "120", "--budget-usd", "none").returncode == 0
    limits = json.loads(cli("show", public_id).stdout)["limits"]
    assert limits == {
        "rpm": 120,
        "tpm": 100000,
        "max_parallel": 4,
        "budget_tokens": 2000000,
        "budget_usd": None,
        "budget_period": "month",
        "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--rpm", "lots"], "--rpm must be a positive whole number", id="rpm-not-a-number"),
        pytest.param(["--rpm", "0"], "rpm_limit must be a positive", id="rpm-zero"),
        pytest.param(["--budget-period", "year"], "budget_period must be one of", id="bad-period"),
        pytest.param(["--allowed-ips", "10.0.0.300/8"], "invalid IP network", id="bad-network"),
        pytest.param(["--budget-usd", "-3"], "budget_usd must be a positive", id="negative-budget"),
    ],
)
def test_bad_limits_are_one_clear_line(cli, args, message) -> None:
    result = cli("create", "--name", "x", "--models", "*", *args)
    assert result.returncode != 0 and result.stdout == ""
    assert message in result.stderr and result.stderr.strip().count("\n") == 0


def test_pause_and_resume_change_the_status_and_refuse_the_wrong_state(cli) -> None:
    raw = cli("create", "--name", "nightly", "--models", "*").stdout.strip()
    public_id = raw[len("sk-kg-") : len("sk-kg-") + 12]
    paused = cli("pause", public_id)
    assert paused.returncode == 0 and "Paused" in paused.stderr and "status=paused" in paused.stderr
    assert json.loads(cli("show", public_id).stdout)["status"] == "paused"
    again = cli("pause", public_id)
    assert again.returncode != 0 and "already paused" in again.stderr
    resumed = cli("resume", public_id)
    assert resumed.returncode == 0 and "status=active" in resumed.stderr
    events = [e["action"] for e in json.loads(cli("show", public_id).stdout)["events"]]
    assert events == ["created", "paused", "resumed"]
