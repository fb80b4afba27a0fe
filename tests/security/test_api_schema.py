"""Schemathesis against the management API's own OpenAPI schema (``/api/v1/schema/``), served in
process through Django's WSGI app on the test database.

- with a management key, valid and invalid inputs alike: no 5xx on any operation;
- without a credential, with a malformed or an ordinary (model-calling) key: every operation
  refuses (401/403), never a 2xx and never a 5xx.

Bounded for CI: 25 generated cases per operation with a management key, 10 for each refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from keys import services

schema = schemathesis.pytest.from_fixture("api_schema")
schema_fuzzing_only = schemathesis.pytest.from_fixture("api_schema_fuzzing_only")
PUBLIC_ID = re.compile(r"[0-9A-Za-z]{12}")

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
REFUSALS = settings(BOUNDED, max_examples=10)


@pytest.fixture
def keep_the_test_connection(db: None) -> Iterator[None]:
    """Calls through the WSGI app must not close the test's database connection (and with it the
    test's transaction) at the end of each request — what Django's own test client prevents too."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(keep_the_test_connection: None) -> schemathesis.BaseSchema:
    """The schema's own examples, then random valid and invalid cases. (The coverage phase's ~1,000
    boundary cases take about 20 s here: run them with ``schemathesis run`` when changing the API.)"""
    loaded = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    loaded.config.phases.update(phases=["examples", "fuzzing"])
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return loaded


@pytest.fixture
def api_schema_fuzzing_only(keep_the_test_connection: None) -> schemathesis.BaseSchema:
    """Random valid cases only: authentication is decided before any input is read."""
    loaded = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    loaded.config.phases.update(phases=["fuzzing"])
    return loaded


@pytest.fixture
def management_key(alice) -> str:
    services.key_create(name="alice-app", model_patterns="*", owner=alice)  # something to list and act on
    return services.key_create(name="alice-ci", model_patterns=[], owner=alice, is_management=True)[1]


@pytest.fixture
def ordinary_key(alice) -> str:
    return services.key_create(name="alice-app", model_patterns="*", owner=alice)[1]


@schema.parametrize()
@BOUNDED
def test_no_operation_answers_a_management_key_with_a_server_error(
    case: schemathesis.Case, management_key: str
) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {management_key}"}, checks=[not_a_server_error])


CREDENTIALS: dict[str, Callable[[str], dict[str, str]]] = {
    "none": lambda key: {},
    "malformed-key": lambda key: {"Authorization": "Bearer sk-kg-not-a-key"},
    "sql-injection": lambda key: {"Authorization": "Bearer ' OR '1'='1"},
    "other-scheme": lambda key: {"Authorization": f"Basic {key}"},
    "ordinary-key": lambda key: {"Authorization": f"Bearer {key}"},
}


@schema_fuzzing_only.parametrize()
@REFUSALS
def test_every_operation_refuses_a_caller_without_a_management_key(case: schemathesis.Case, ordinary_key: str) -> None:
    for credential, headers in CREDENTIALS.items():
        response = case.call(headers=headers(ordinary_key))

        where = f"{credential}: {case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code == 404:
            # Only a path that names no key at all may be "not found" before authentication.
            assert not PUBLIC_ID.fullmatch(str((case.path_parameters or {}).get("id", ""))), where
        else:
            # 429: past KEYGATE_AUTH_FAILURES_PER_MINUTE failures this address is refused outright.
            assert response.status_code in (401, 403, 429), where
