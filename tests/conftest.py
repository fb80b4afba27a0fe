"""Shared fixtures: a small cast of users and helpers to make keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from keys import services
from keys.models import APIKey

# The live-server fixtures (one Keygate process and one fake upstream for the session).
pytest_plugins = ["tests.conftest_live"]


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", "alice@example.com", "alice-password-1")


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob", "bob@example.com", "bob-password-1")


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser("operator", "ops@example.com", "operator-password-1")


@pytest.fixture
def make_key(db: None) -> Callable[..., tuple[APIKey, str]]:
    def make(name: str = "test-key", model_patterns: str | list[str] = "*", **kwargs: Any) -> tuple[APIKey, str]:
        return services.key_create(name=name, model_patterns=model_patterns, **kwargs)

    return make


def database_text() -> str:
    """Every value of every table, as one string: for asserting that no secret was stored."""
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(chunks)


@pytest.fixture
def connections_kept_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Database connections kept for 60 s, as on PostgreSQL (``CONN_MAX_AGE``): for tests that a
    long-lived thread closes its own. Skipped on in-memory SQLite, which Django never closes
    (the PostgreSQL run of the suite checks these)."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("Django never closes an in-memory SQLite database (the PostgreSQL run checks this)")
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 60)


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language: a request served in another one (the test
    client runs it in this thread, and LocaleMiddleware leaves its language active) made the
    next test's messages Russian (tests/keys/test_dashboard.py then test_services.py: 8 failed)."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Counters kept in Django's cache (e.g. failed API authentications) start empty per test."""
    from django.core.cache import cache

    cache.clear()
