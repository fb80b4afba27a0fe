"""keys 0004_teams: existing keys migrate unchanged (personal), and no team is created."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("keys", "0003_paused")]


@pytest.mark.django_db(transaction=True)
def test_existing_keys_become_personal_keys_and_no_team_is_created() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old.get_model("keys", "APIKey").objects.create(
        public_id="AbCdEfGhIjKl", prefix="sk-kg", key_hash="x", last4="wxyz", name="legacy", model_patterns=["*"]
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    latest = executor.loader.graph.leaf_nodes()  # back to the latest schema, for the tests after this one
    executor.migrate(latest)
    new = executor.loader.project_state(latest).apps
    key = new.get_model("keys", "APIKey").objects.get(public_id="AbCdEfGhIjKl")
    assert key.team_id is None and key.name == "legacy" and key.model_patterns == ["*"]
    assert new.get_model("keys", "Team").objects.count() == 0
