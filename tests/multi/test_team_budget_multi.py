"""A team's budget holds across processes: 3 keys of one team firing concurrently through two
Keygate servers × two workers, one PostgreSQL, one Redis (docs: README "Teams")."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.multi.test_multi_process import CHAT, _post

pytestmark = [pytest.mark.multi, pytest.mark.live]


async def _fire(urls: list[str], keys: list[str], count: int) -> list[tuple[int, dict, dict]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(i: int) -> tuple[int, dict, dict]:
            url, key = urls[i % len(urls)], keys[i % len(keys)]
            async with session.post(
                f"{url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"}
            ) as response:
                return response.status, await response.json(content_type=None), dict(response.headers)

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_three_keys_of_one_team_stay_within_the_teams_budget_across_processes(two_servers) -> None:
    budget = 500
    first = two_servers[0]
    first.shell(
        f"from keys import services;services.team_create(name='racers', budget_tokens={budget}, budget_period='total')"
    )
    keys = first.make_keys(*({"name": f"racer{i}", "model_patterns": "*", "team": "racers"} for i in range(3)))
    results = asyncio.run(_fire([s.url for s in two_servers], keys, count=60))
    ok = [body for status, body, _ in results if status == 200]
    refused = [(body, headers) for status, body, headers in results if status == 429]
    used = sum(body["usage"]["total_tokens"] for body in ok)
    print(f"team budget={budget}: {len(ok)} admitted using {used} tokens, {len(refused)} refused")
    assert ok and refused and len(ok) + len(refused) == 60
    # Every request reserved len(body)/4 + max_tokens, at least what it used: the documented
    # overrun bound is Σ(actual − estimate) over requests in flight, here zero.
    assert used <= budget
    assert all(body["error"]["code"] == "team_budget_exceeded" for body, _ in refused)
    assert all(body["error"]["type"] == "insufficient_quota" for body, _ in refused)
    assert all(headers.get("x-keygate-limit-scope") == "team" for _, headers in refused)
    spent = json.loads(
        first.shell(
            "import json; from django.db.models import Sum; from keys.models import UsageRecord as U;"
            "from tests.support.wait import wait_until;"
            "rows = lambda: U.objects.filter(key__team__name='racers').count() >= 60 or None;"
            "wait_until(rows, timeout=15);"
            "t = U.objects.filter(key__team__name='racers', status_code=200).aggregate("
            "i=Sum('input_tokens'), o=Sum('output_tokens'));"
            "print(json.dumps((t['i'] or 0) + (t['o'] or 0)))"
        )
        .strip()
        .splitlines()[-1]
    )
    assert spent == used


def test_a_keys_own_budget_inside_a_team_names_the_key(two_servers) -> None:
    first = two_servers[0]
    first.shell(
        "from keys import services; services.team_create(name='roomy', budget_tokens=100000, budget_period='total')"
    )
    (key,) = first.make_keys(
        {"name": "tight", "model_patterns": "*", "team": "roomy", "budget_tokens": 100, "budget_period": "total"}
    )

    async def burst():
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(*(_post(session, two_servers[i % 2].url, key, CHAT) for i in range(20)))

    refused = [body for status, body in asyncio.run(burst()) if status == 429]
    assert refused and all(body["error"]["code"] == "key_budget_exceeded" for body in refused)
