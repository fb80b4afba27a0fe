"""The usage report (keys.reports): the usage page, its CSV export and GET /api/v1/usage/ give
the same rows, scoped by who may see which keys."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from keys import services
from keys.models import UsageRecord
from tests.keys.test_teams_api import cast  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def traffic(cast):  # noqa: F811
    search = services.find_team("search")
    team_key, _ = services.key_create(name="=bob-search", model_patterns="gpt-4o", team=search, owner=cast["bob"])
    erins, _ = services.key_create(name="erin-own", model_patterns="*", owner=cast["erin"])
    now = timezone.now()
    for key, model, status, cost in (
        (team_key, "gpt-4o", 200, "0.5"),
        (team_key, "gpt-4o", 500, "0"),
        (erins, "claude-3", 200, "2"),
    ):
        UsageRecord.objects.create(
            key=key,
            created_at=now,
            endpoint="chat",
            model=model,
            status_code=status,
            input_tokens=10,
            output_tokens=5,
            cost_usd=Decimal(cost),
        )
    return cast


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_an_operator_exports_every_keys_usage_by_day_team_key_and_model(traffic) -> None:
    response = client(traffic["operator"]).get("/usage/export.csv?days=7")
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    rows = _csv(response)
    assert [(r["team"], r["model"], r["requests"], r["errors"], r["cost_usd"]) for r in rows] == [
        ("", "claude-3", "1", "0", "2.00000000"),
        ("search", "gpt-4o", "2", "1", "0.50000000"),
    ]
    assert rows[1]["key_name"] == "'=bob-search"  # a formula-looking cell is quoted as text


def test_a_team_member_reads_only_their_teams_and_own_usage(traffic) -> None:
    rows = _csv(client(traffic["carol"]).get("/usage/export.csv"))
    assert [r["team"] for r in rows] == ["search"]
    assert client(traffic["dave"]).get(f"/usage/export.csv?team={services.find_team('search').pk}").status_code == 404


def test_the_usage_page_shows_totals_error_rate_and_top_spenders(traffic) -> None:
    page = client(traffic["operator"]).get("/usage/?days=30").content.decode()
    assert "Top spenders" in page and "erin-own" in page and "33%" in page  # 1 error in 3 requests


def test_the_api_gives_the_same_rows_as_the_csv(traffic) -> None:
    api = client(traffic["operator"]).get("/api/v1/usage/?days=7").json()
    exported = _csv(client(traffic["operator"]).get("/usage/export.csv?days=7"))
    assert [r["requests"] for r in api["rows"]] == [int(r["requests"]) for r in exported]
    assert api["totals"]["requests"] == 3 and api["totals"]["errors"] == 1


def test_the_api_filters_usage_by_team(traffic) -> None:
    team_id = services.find_team("search").pk
    api = client(traffic["operator"]).get(f"/api/v1/usage/?team={team_id}").json()
    assert {r["team"] for r in api["rows"]} == {"search"}
    assert client(traffic["dave"]).get(f"/api/v1/usage/?team={team_id}").status_code == 404


def test_the_usage_page_and_a_team_page_chart_requests_and_tokens_per_day_by_model(traffic) -> None:
    import json

    for url in ("/usage/?days=7", f"/teams/{services.find_team('search').pk}/?days=7"):
        page = client(traffic["operator"]).get(url).content.decode()
        data = json.loads(page.split('<script id="usage-data" type="application/json">')[1].split("</script>")[0])
        assert len(data["days"]) == 7 and "gpt-4o" in data["models"]
        assert data["requests"]["gpt-4o"][-1] == 2 and 'data-series="tokens"' in page
