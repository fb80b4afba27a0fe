"""Leaked keys end themselves on a live server: a signed GitHub batch, or a public report, and
the key is refused by every gateway process within a second."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keys import secret_scanning
from tests.conftest_live import LiveKeygate, start_server
from tests.support.github import FakeGitHub

pytestmark = pytest.mark.live

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
BOUND = 1.5  # the target is 1 s (DESIGN §3); the rest is room for a loaded CI machine


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_signer("live-key-id")
        yield fake


@pytest.fixture(scope="module")
def leaky(
    tmp_path_factory: pytest.TempPathFactory, migrated_database: Path, github: FakeGitHub
) -> Iterator[LiveKeygate]:
    env = {"KEYGATE_GITHUB_SCANNING_KEYS_URL": github.keys_url, "KEYGATE_LEAK_REPORTS_PER_MINUTE": "100"}
    server = start_server(tmp_path_factory.mktemp("keygate-leaks"), migrated_database, env=env, workers=2)
    try:
        names = ("github", "report", "bystander")
        raws = server.make_keys(*({"name": name, "model_patterns": ["*"]} for name in names))
        yield LiveKeygate(server=server, keys=dict(zip(names, raws, strict=True)))
    finally:
        server.stop()


def _refused_after(live: LiveKeygate, key: str, leak: callable) -> tuple[float, list[int]]:
    """Call the gateway with ``key`` until it is refused; ``leak()`` reports it meanwhile.

    Returns how long after the report's answer a request *sent* then was still accepted (0 if
    none was; send times, so a slow answer on a loaded machine does not count against the bound),
    and the statuses seen.
    """
    statuses: list[tuple[float, int]] = []  # (sent at, status)
    stop = threading.Event()

    def keep_calling() -> None:
        with httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {key}"}, timeout=10) as client:
            while not stop.is_set():
                sent = time.time()
                status = client.post("/v1/chat/completions", json=CHAT).status_code
                statuses.append((sent, status))
                if status == 401:
                    return
                time.sleep(0.01)

    caller = threading.Thread(target=keep_calling, daemon=True)
    caller.start()
    try:
        deadline = time.monotonic() + 20
        while len(statuses) < 4 and time.monotonic() < deadline:  # cached as valid in both workers
            time.sleep(0.01)
        leak()
        answered = time.time()
        caller.join(timeout=BOUND + 15)
    finally:
        stop.set()
    seen = [status for _, status in statuses]
    assert 401 in seen, f"the leaked key was still accepted; statuses {seen}"
    accepted_after = max((sent - answered for sent, status in statuses if status == 200), default=0.0)
    return max(accepted_after, 0.0), seen


def test_a_key_in_a_signed_github_batch_is_refused_everywhere_within_a_second(leaky, github) -> None:
    key = leaky.keys["github"]
    body = json.dumps(
        [{"token": key, "type": "keygate", "url": "https://github.com/o/r/blob/1/x", "source": "content"}]
    )
    answers: list[httpx.Response] = []

    def leak() -> None:
        headers = {
            "Content-Type": "application/json",
            "Github-Public-Key-Identifier": "live-key-id",
            "Github-Public-Key-Signature": github.signers[0].sign(body.encode()),
        }
        answers.append(httpx.post(leaky.url + "/security/secret-scanning/github", content=body, headers=headers))

    delay, statuses = _refused_after(leaky, key, leak)

    print(f"\nGitHub batch → a request sent {delay * 1000:.0f} ms after Keygate answered was the last accepted")
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json() == [
        {"token_hash": secret_scanning.token_hash(key), "token_type": "keygate", "label": "true_positive"}
    ]
    assert set(statuses) == {200, 401}, statuses
    assert delay <= BOUND
    assert leaky.post("/v1/chat/completions", key="bystander", json=CHAT).status_code == 200
    assert key not in leaky.server.logs()


def test_a_publicly_reported_key_is_refused_within_a_second_of_the_202(leaky) -> None:
    key = leaky.keys["report"]
    answers: list[httpx.Response] = []

    def leak() -> None:
        answers.append(httpx.post(leaky.url + "/security/report-leak", json={"keys": [key]}))

    delay, _ = _refused_after(leaky, key, leak)

    print(f"\nreport-leak → a request sent {delay * 1000:.0f} ms after the 202 was the last accepted")
    assert (answers[0].status_code, answers[0].content) == (202, b"")
    assert delay <= BOUND
    assert key not in leaky.server.logs()
