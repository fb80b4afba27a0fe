"""The notification worker as it runs in production: `manage.py notify run`, a separate process,
against a Keygate server's database, sending to a real SMTP server (EMAIL_URL) and a real webhook
receiver on loopback. Nothing is sent until the worker runs; a worker killed and restarted sends
nothing twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify.models import Kind
from tests.notify.support import SMTPServer, WebhookReceiver
from tests.support.live import ROOT, KeygateServer
from tests.support.wait import wait_until

pytestmark = [pytest.mark.live, pytest.mark.timeout(180)]

SETUP = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from keys import services
from keys.models import APIKey
from notify.models import WebhookEndpoint
alice = get_user_model().objects.create_user("alice", "alice@example.com")
endpoint = WebhookEndpoint.objects.create(url="{url}")
now = timezone.now()
key, raw = services.key_create(name="nightly", model_patterns="*", owner=alice, expires_at=now + timedelta(days=6))
APIKey.objects.filter(pk=key.pk).update(created_at=now - timedelta(days=60))
other, _ = services.key_create(name="old", model_patterns="*", owner=alice)
print(json.dumps({{"secret": endpoint.secret, "key": key.public_id, "raw": raw, "other": other.public_id}}))
"""


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[KeygateServer, SMTPServer, WebhookReceiver]]:
    with SMTPServer() as smtp, WebhookReceiver() as receiver:
        keygate = KeygateServer(
            tmp_path,
            env={
                "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
                "KEYGATE_WEBHOOK_ALLOW_PRIVATE": "true",
                "KEYGATE_PUBLIC_URL": "https://keys.example.com",
            },
        )
        with keygate:
            yield keygate, smtp, receiver


def _worker(keygate: KeygateServer, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "manage.py", "notify", "run", "--interval", "0.2", "--scan-every", "0.5"]
    return subprocess.Popen(command, cwd=ROOT, env=keygate.env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def test_the_worker_sends_each_notice_once_across_a_crash_and_a_restart(servers, tmp_path: Path) -> None:
    keygate, smtp, receiver = servers
    made = json.loads(keygate.shell(SETUP.format(url=receiver.url)).strip().splitlines()[-1])
    receiver.secret = made["secret"]
    keygate.manage("keys", "revoke", made["other"])  # via the CLI, while no worker runs
    assert smtp.messages == [] and receiver.verified == []  # nothing is sent on the request path

    log = tmp_path / "worker.log"
    worker = _worker(keygate, log)
    try:
        wait_until(lambda: len(receiver.verified) >= 4, timeout=30, what="webhooks: 2 created, expiring, revoked")
        wait_until(lambda: len(smtp.messages) >= 4, timeout=30, what="emails: 2 created, expiring, revoked")
    finally:
        worker.send_signal(signal.SIGKILL)  # a crash: no clean shutdown
        worker.wait(timeout=10)
    kinds = sorted(payload["type"] for _headers, payload in receiver.verified)
    assert kinds == sorted([Kind.KEY_CREATED, Kind.KEY_CREATED, Kind.KEY_EXPIRING, Kind.KEY_REVOKED])
    assert receiver.refused == 0
    [expiring] = [payload for _h, payload in receiver.verified if payload["type"] == Kind.KEY_EXPIRING]
    assert expiring["data"]["key"]["id"] == made["key"] and expiring["data"]["days"] == 7
    assert [m["Subject"] for m in smtp.messages].count('[Keygate] Your key "nightly" expires in 7 days.') == 1

    restarted = _worker(keygate, log)
    try:
        wait_until(lambda: "worker started" in log.read_text(), timeout=30, what="the worker's second start")
        keygate.manage("keys", "create", "--name", "after-restart", "--owner", "alice", "--models", "*")
        wait_until(lambda: len(receiver.verified) >= 5, timeout=30, what="the next event's webhook")
        wait_until(lambda: len(smtp.messages) >= 5, timeout=30, what="the next event's email")
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=15) == 0
    ids = [headers["webhook-id"] for headers, _payload in receiver.verified]
    assert len(ids) == len(set(ids)) == 5  # nothing sent twice across the restart (scans ran every 0.5 s)
    assert len(smtp.messages) == 5
    assert "notify: worker stopped" in log.read_text()
    assert made["raw"] not in log.read_text() + keygate.logs()
